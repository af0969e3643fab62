"""Replay protection for signed requests (Slack's and, later, billing web-hooks'): each signature once."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from billing_core.db.engine import Database
from billing_core.db.models import SeenRequest

#: Signed requests older than this are refused on their timestamp anyway; keep keys that long.
LIFETIME = timedelta(minutes=10)


def claim(db: Database, key: str, *, now: datetime) -> bool:
    """True the first time `key` is seen; False for a replay. Prunes expired keys now and then."""
    try:
        with db.unit_of_work() as s:
            s.add(SeenRequest(key=key[:200], seen_at=now))
    except IntegrityError:
        return False
    if random.random() < 0.02:
        with db.unit_of_work() as s:
            s.execute(delete(SeenRequest).where(SeenRequest.seen_at < now - LIFETIME))
    return True
