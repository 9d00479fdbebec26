"""SQLAlchemy Core tables; every change to them comes with an Alembic migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

principals = Table(
    "principals",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("owner", String(200)),
    Column("teams", JSON, nullable=False),
    Column("roles", JSON, nullable=False),
    Column("public_key", String(64)),
    Column("kinds", JSON),
    Column("created_at", String(32), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("principal_id", String(26), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
)

proposals = Table(
    "proposals",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("agent_id", String(26), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("snapshot", JSON, nullable=False),
    Column("idempotency_key", String(200)),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    UniqueConstraint("agent_id", "idempotency_key", name="uq_proposals_agent_idempotency"),
    Index("ix_proposals_state", "state"),
    Index("ix_proposals_agent", "agent_id"),
)

leases = Table(
    "leases",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("proposal_id", String(26), nullable=False, unique=True),
    Column("runner_id", String(26), nullable=False),
    Column("fencing_token", BigInteger, nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("capsule_digest", String(64), nullable=False),
    Column("runner_public_key", String(64), nullable=False),
    Index("ix_leases_status_expires", "status", "expires_at"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("proposal_id", String(26), nullable=False, index=True),
    Column("stage", String(32), nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("created_at", String(32), nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False, unique=True),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)

graph_sources = Table(
    "graph_sources",
    metadata,
    Column("name", String(500), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("facts", JSON, nullable=False),
    Column("files", JSON, nullable=False),
    Column("imported_at", String(32), nullable=False),
    Column("imported_by", String(200)),
)

graph_versions = Table(
    "graph_versions",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("sources", JSON, nullable=False),
    Column("document", JSON, nullable=False),
    Column("node_count", Integer, nullable=False),
    Column("edge_count", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
)
