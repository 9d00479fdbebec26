"""Alembic environment: runs placet's migrations on the connection it is handed."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from placet.store.tables import metadata

config = context.config


def run() -> None:
    """Migrate using a connection passed in attributes, or one made from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
