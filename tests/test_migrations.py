"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from billing_core.db.engine import Database
from billing_core.db.migrate import current_revision, head_revision
from billing_core.db.schema import Base


def test_migrations_match_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_one_head_after_the_merge(db: Database) -> None:
    assert current_revision(db) == head_revision(db) and "+" not in (head_revision(db) or "")
