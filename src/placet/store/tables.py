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
    # Runners: labels {key: [values]} set by an admin (capsule targeting), and who recorded
    # the public key ("admin": registered, never replaced by the runner; "self": the runner).
    Column("labels", JSON),
    Column("key_source", String(16)),
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
    # When an open proposal must be decided by (approval expiry), and when it escalates.
    Column("deadline", String(32)),
    Column("escalate_at", String(32)),
    # A rollback filed by the control plane: {"id", "digest"} of the proposal it undoes.
    Column("rollback_of", JSON),
    UniqueConstraint("agent_id", "idempotency_key", name="uq_proposals_agent_idempotency"),
    Index("ix_proposals_state_id", "state", "id"),
    Index("ix_proposals_agent", "agent_id"),
    Index("ix_proposals_deadline", "deadline"),
    Index("ix_proposals_escalate_at", "escalate_at"),
)

leases = Table(
    "leases",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("proposal_id", String(26), nullable=False, index=True),
    Column("runner_id", String(26), nullable=False),
    Column("fencing_token", BigInteger, nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("capsule_digest", String(64), nullable=False),
    Column("runner_public_key", String(64), nullable=False),
    Index("ix_leases_status_expires", "status", "expires_at"),
    # The next fencing token is max(fencing_token) + 1, read under the write lock on every
    # lease: an index makes that one seek instead of a scan of every lease ever granted.
    Index("ix_leases_fencing_token", "fencing_token"),
)

# Each runner report accepted, by lease and sequence: a resent report is answered, not redone.
lease_reports = Table(
    "lease_reports",
    metadata,
    Column("lease_id", String(26), primary_key=True),
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("stage", String(32), nullable=False),
    Column("envelope_sha256", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", String(32), nullable=False),
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

# Groups and teams; a principal's memberships are its ``teams`` column.
groups = Table(
    "groups",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),  # team | group
    Column("title", String(500)),
    Column("parent", String(200)),
    Column("source", String(500), nullable=False),  # manual | graph:<version digest>
    Column("created_at", String(32), nullable=False),
)

# Every pushed policy bundle, kept forever (history); its Rego sources as text.
policy_bundles = Table(
    "policy_bundles",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("files", JSON, nullable=False),
    Column("mode", String(16), nullable=False),  # enforce | shadow
    Column("author", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
)

# Which bundle is enforcing and which (if any) is shadowing: one row per mode.
policy_heads = Table(
    "policy_heads",
    metadata,
    Column("mode", String(16), primary_key=True),
    Column("bundle_id", String(26)),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

# Every change of a head: push, rollback, shadow cleared.
policy_changes = Table(
    "policy_changes",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("bundle_id", String(26)),
    Column("author", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
)

# What a shadow bundle would have decided, beside the enforcing decision.
shadow_decisions = Table(
    "shadow_decisions",
    metadata,
    Column("proposal_id", String(26), primary_key=True),
    Column("bundle_id", String(26), primary_key=True),
    Column("bundle_digest", String(64), nullable=False),
    Column("outcome", String(32)),
    Column("enforced_outcome", String(32)),
    Column("decision", JSON),
    Column("differs", Integer, nullable=False),
    Column("error", Text),
    Column("created_at", String(32), nullable=False),
)

notification_channels = Table(
    "notification_channels",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),  # webhook | slack | email
    Column("config", JSON, nullable=False),
    Column("events", JSON, nullable=False),
    Column("enabled", Integer, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
)

# The outbox: one row per (event, channel); delivered by upkeep, retried with backoff.
notifications = Table(
    "notifications",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("channel", String(200), nullable=False),
    Column("event", String(64), nullable=False),
    Column("proposal_id", String(26)),
    Column("dedup_key", String(300), nullable=False, unique=True),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", String(32), nullable=False),
    Column("last_error", Text),
    Column("created_at", String(32), nullable=False),
    Column("sent_at", String(32)),
    Index("ix_notifications_status_next", "status", "next_attempt_at"),
)
