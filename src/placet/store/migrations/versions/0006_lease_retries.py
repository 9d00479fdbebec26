"""lease retries: a proposal may hold several leases (an idempotent action retried after
its runner was lost), so leases.proposal_id is indexed instead of unique

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_constraint("uq_leases_proposal_id", type_="unique")
        batch.create_index("ix_leases_proposal_id", ["proposal_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_index("ix_leases_proposal_id")
        batch.create_unique_constraint("uq_leases_proposal_id", ["proposal_id"])
