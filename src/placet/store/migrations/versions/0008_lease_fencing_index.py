"""leases: index the fencing token (the next token is max + 1, read on every lease)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_leases_fencing_token", "leases", ["fencing_token"])


def downgrade() -> None:
    op.drop_index("ix_leases_fencing_token", table_name="leases")
