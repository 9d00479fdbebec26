"""authority: deadlines, groups, policy bundles and heads, shadow decisions, notifications

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proposals") as batch:
        batch.add_column(sa.Column("deadline", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("escalate_at", sa.String(length=32), nullable=True))
        batch.create_index("ix_proposals_deadline", ["deadline"])
        batch.create_index("ix_proposals_escalate_at", ["escalate_at"])
    # Humans registered before roles existed keep what they could do: approve.
    principals = sa.table("principals", sa.column("kind", sa.String), sa.column("roles", sa.JSON))
    op.execute(
        principals.update()
        .where(principals.c.kind == "human", sa.cast(principals.c.roles, sa.String) == "[]")
        .values(roles=["approver"])
    )
    op.create_table(
        "groups",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("parent", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_groups")),
    )
    op.create_table(
        "policy_bundles",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_bundles")),
    )
    op.create_table(
        "policy_heads",
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("bundle_id", sa.String(length=26), nullable=True),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("mode", name=op.f("pk_policy_heads")),
    )
    op.create_table(
        "policy_changes",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("bundle_id", sa.String(length=26), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_changes")),
    )
    op.create_table(
        "shadow_decisions",
        sa.Column("proposal_id", sa.String(length=26), nullable=False),
        sa.Column("bundle_id", sa.String(length=26), nullable=False),
        sa.Column("bundle_digest", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("enforced_outcome", sa.String(length=32), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("differs", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id", "bundle_id", name=op.f("pk_shadow_decisions")),
    )
    op.create_table(
        "notification_channels",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notification_channels")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("proposal_id", sa.String(length=26), nullable=True),
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.String(length=32), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("sent_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_notifications_dedup_key")),
    )
    op.create_index("ix_notifications_status_next", "notifications", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_status_next", table_name="notifications")
    for table in (
        "notifications",
        "notification_channels",
        "shadow_decisions",
        "policy_changes",
        "policy_heads",
        "policy_bundles",
        "groups",
    ):
        op.drop_table(table)
    with op.batch_alter_table("proposals") as batch:
        batch.drop_index("ix_proposals_escalate_at")
        batch.drop_index("ix_proposals_deadline")
        batch.drop_column("escalate_at")
        batch.drop_column("deadline")
