"""What the ledger knows about its provider feeds: which ones are down, and since when.

A pure result type, so views can say "provider X unreachable since …, figures may be incomplete"
without knowing where the fact came from (`billing_core.db.sync_models.outages` reads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ProviderOutage:
    """A provider whose last sync failed (or only partly succeeded) for an account."""

    provider: str
    since: datetime  # the first failed run after the last successful one
    last_error: str | None
    last_success_at: datetime | None
    consecutive_failures: int
    status: str = "failed"  # "failed" or "partial"
