"""Replay protection for signed requests (Slack's and, later, billing web-hooks'): each signature once."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, insert
from sqlalchemy.exc import IntegrityError

from billing_core.db.engine import Database
from billing_core.db.models import SeenRequest

#: Signed requests older than this are refused on their timestamp anyway; keep keys that long.
LIFETIME = timedelta(minutes=10)


def claim(db: Database, key: str, *, now: datetime) -> bool:
    """True the first time `key` is seen; False for a replay. Prunes expired keys now and then.

    One Core statement, not an ORM unit of work: this runs before every Slack ack, and a session's flush
    machinery cost more CPU than the insert itself (acks of a burst queue behind each other's CPU)."""
    try:
        with db.engine.begin() as conn:
            conn.execute(insert(SEEN), {"key": key[:200], "seen_at": now})
    except IntegrityError:
        return False
    if random.random() < 0.02:
        with db.engine.begin() as conn:
            conn.execute(delete(SEEN).where(SEEN.c.seen_at < now - LIFETIME))
    return True


SEEN: Table = SeenRequest.__table__  # type: ignore[assignment]
