"""Alembic environment: the URL and connection come from `billing_core.db.migrate`, never from an ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from billing_core.db.engine import make_engine
from billing_core.db.schema import Base

config = context.config
target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    # render_as_batch lets ALTERs work on SQLite, which cannot alter most constraints in place.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run_with(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
