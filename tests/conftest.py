"""Test fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is used when reachable (TEST_POSTGRES_URL, default the local server's `test` database) in a
schema of its own per test session, so parallel runs never collide. When it is not reachable the
PostgreSQL half is skipped with a message saying so, unless BILLING_REQUIRE_POSTGRES=1 (CI), where that
is a failure. Each test gets an empty, migrated database.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from billing_core.db.engine import Database
from billing_core.db.migrate import upgrade
from billing_core.db.schema import Base

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("BILLING_REQUIRE_POSTGRES") == "1"

for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)  # slack_sdk and httpx would route 127.0.0.1 through a proxy
for _var in [v for v in os.environ if v.startswith("SLACK_")] + ["DATABASE_URL"]:
    os.environ.pop(_var, None)


def _postgres_error() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except OperationalError as exc:
        return str(exc).splitlines()[0]


_PG_ERROR = _postgres_error()


def pytest_report_header() -> str:
    if _PG_ERROR is None:
        return f"databases: SQLite and PostgreSQL ({PG_URL.split('@')[-1]})"
    return f"databases: SQLite only — PostgreSQL NOT reachable at {PG_URL.split('@')[-1]}: {_PG_ERROR}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    with migrated_pg_schema("bb_test") as schema:
        yield schema


@contextmanager
def migrated_pg_schema(prefix: str) -> Iterator[str]:
    """A new, migrated PostgreSQL schema for this run, dropped afterwards (or the skip/fail that says why not)."""
    if _PG_ERROR is not None:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (BILLING_REQUIRE_POSTGRES=1) but not reachable: {_PG_ERROR}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL.split('@')[-1]}: these tests ran on SQLite only")
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = _pg_database(schema)
    upgrade(db)
    db.dispose()
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _pg_database(schema: str) -> Database:
    return Database(PG_URL, connect_args={"options": f"-csearch_path={schema}"})


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "billing.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database = Database(f"sqlite:///{path}")
        yield database
        database.dispose()
        return
    schema = request.getfixturevalue("pg_schema")
    database = _pg_database(schema)
    _truncate(database)
    yield database
    database.dispose()


@pytest.fixture
def db_url(db: Database, request: pytest.FixtureRequest) -> str:
    """A `DATABASE_URL` for a command-line run against `db` (PostgreSQL's test schema as a connection option)."""
    if db.dialect == "sqlite":
        return db.url
    return f"{PG_URL}?options=-csearch_path%3D{request.getfixturevalue('pg_schema')}"


def _truncate(database: Database) -> None:
    with database.engine.begin() as conn:
        # slack_sdk's installation and OAuth state stores keep tables of their own, created on first use.
        slack = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                  "AND tablename LIKE 'slack\\_%'")).scalars().all()
        tables = ", ".join(f'"{name}"' for name in [*(t.name for t in Base.metadata.sorted_tables), *slack])
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


# The real Bolt app against the fake Slack, on the seeded demo ledger (tests/slack_harness.py).
from tests.slack_harness import bot, renderer, seeded_db, seeded_pg_schema, seeded_sqlite  # noqa: E402, F401
