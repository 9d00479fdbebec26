"""proposals: index (state, id), so leasing reads the oldest authorized ones in order

Without it, every lease request sorts all authorized proposals by id; with a backlog that
sort is most of a lease's cost. The (state) index is its prefix and is dropped.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_proposals_state_id", "proposals", ["state", "id"])
    op.drop_index("ix_proposals_state", table_name="proposals")


def downgrade() -> None:
    op.create_index("ix_proposals_state", "proposals", ["state"])
    op.drop_index("ix_proposals_state_id", table_name="proposals")
