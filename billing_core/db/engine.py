"""Engines, sessions and the unit of work.

One `Database` per process; one session per handler call or job run, opened by `unit_of_work()`,
committed when the block ends cleanly and rolled back on any exception — nothing half-written.
SQLite is the embedded default (a file under ./var/); PostgreSQL is the production target.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_SQLITE_PATH = Path("var") / "billing.db"


def database_url(explicit: str | None = None) -> str:
    """The URL to use: explicit, else `DATABASE_URL`, else the embedded SQLite file."""
    url = explicit or os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"
    # Hosting platforms hand out postgres:// URLs; we talk psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A web process answers Slack's bursts with up to ~40 threads (server, Bolt listeners, after-ack work) that
    # each hold a connection briefly; a pool smaller than that makes acks queue behind slow work.
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while the worker writes; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # A 64 MiB page cache (default 2 MiB, allocated only as pages are read): bulk ingestion touches the
    # usage indexes all over, and re-reading their pages from the OS cost a tenth of its time (bench.core).
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


class Database:
    """An engine and its session factory; `unit_of_work()` is the only way services get a session."""

    def __init__(self, url: str | None = None, **engine_kwargs: Any) -> None:
        self.url = database_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
