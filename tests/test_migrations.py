"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from billing_core.db.engine import Database
from billing_core.db.migrate import current_revision, head_revision
from billing_core.db.schema import Base


def ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """slack_sdk's OAuth stores create their own `slack_*` tables in the same database (bot/app.py)."""
    return not (type_ == "table" and reflected and compare_to is None and (name or "").startswith("slack_"))


def test_migrations_match_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False, "include_object": ours})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_one_head_after_the_merge(db: Database) -> None:
    assert current_revision(db) == head_revision(db) and "+" not in (head_revision(db) or "")
