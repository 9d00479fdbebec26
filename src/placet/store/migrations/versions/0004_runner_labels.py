"""runner identity: labels for capsule targeting, and who recorded a runner's key

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("principals") as batch:
        batch.add_column(sa.Column("labels", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("key_source", sa.String(length=16), nullable=True))
    # Keys runners recorded themselves before admins could register them stay replaceable.
    principals = sa.table(
        "principals", sa.column("public_key", sa.String), sa.column("key_source", sa.String)
    )
    op.execute(
        principals.update().where(principals.c.public_key.isnot(None)).values(key_source="self")
    )


def downgrade() -> None:
    with op.batch_alter_table("principals") as batch:
        batch.drop_column("key_source")
        batch.drop_column("labels")
