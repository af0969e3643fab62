"""Persistence of the ledger: SQLAlchemy 2 models, Alembic migrations, ingestion, queries and the audit log.

Importing this package registers the flush hook that keeps every invoice consistent
(`billing_core.db.invariants`), so no writer can forget it. Repositories never commit; the unit of
work in `engine.Database` does.
"""

from billing_core.db import invariants as _invariants  # noqa: F401
