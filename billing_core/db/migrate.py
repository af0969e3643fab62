"""Alembic migrations, driven from code (`billing-bot db upgrade`, the Procfile's `release`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from billing_core.db.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "heads") -> None:
    """Bring the schema to `revision`; one transaction, so a failed migration leaves nothing half-done.

    "heads", not "head": features developed side by side may each add a revision on the same parent
    until a merge revision joins them, and an upgrade must apply all of them meanwhile.
    """
    config = alembic_config(db)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(db: Database) -> str | None:
    """The applied revision(s), joined by "+" while branches are unmerged; None for an empty database."""
    with db.engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return "+".join(sorted(heads)) or None


def head_revision(db: Database) -> str | None:
    heads = ScriptDirectory.from_config(alembic_config(db)).get_heads()
    return "+".join(sorted(heads)) or None


def is_up_to_date(db: Database) -> bool:
    return current_revision(db) == head_revision(db)
