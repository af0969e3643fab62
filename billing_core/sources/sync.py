"""Provider API sync: every configured provider endpoint at once, each one's failure its own.

`sync_all(db, now)` is the plain entry point for the scheduler and `billing-bot sync`. It fetches
all endpoints concurrently over one `httpx.AsyncClient` (at most `SyncOptions.concurrency` requests
in flight, a per-request timeout and retries from `RetryPolicy`, and a per-provider deadline), so a
slow or offline provider costs its own deadline and never the others' time. It returns one
`ProviderSyncStatus` per endpoint: ok, partial (some resources stored, others failed) or failed,
with the reason, the rows stored and the duration.

Incremental: each endpoint keeps high-water marks (`billing_core.db.sync_models`). A run asks for
usage from `usage_until` to the last full hour, invoices issued since `invoices_since` plus every
still-open invoice (so payments and voids of older invoices are seen), and payments updated since
`payments_since`. Each resource is stored through the idempotent ingestion in ONE unit of work
together with its mark, so a failure stores nothing of that resource and the next run asks again;
re-fetching what is already stored changes nothing. `full=True` ignores the marks (backfill).

This module is the service layer of `sources`: the HTTP side stays in `provider_api`, the SQL side in
`billing_core.db`; database work runs in worker threads so the event loop keeps fetching meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar

import httpx
from sqlalchemy.orm import Session

from billing_core.db.engine import Database
from billing_core.db.ingest import ingest_usage, upsert_invoice, upsert_payment
from billing_core.db.sync_models import (
    EndpointConfig,
    advance_marks,
    endpoint_configs,
    known_invoices,
    record_outcome,
    stored_invoice_status,
)
from billing_core.errors import BillingError
from billing_core.records import InvoiceIn, PaymentIn, UsageIn
from billing_core.results import InvoiceStatus
from billing_core.sources.provider_api import (
    Json,
    ProviderClient,
    ProviderError,
    RetryPolicy,
    Target,
    invoice_record,
    payment_record,
    updated_at,
    usage_record,
)

OK, PARTIAL, FAILED = "ok", "partial", "failed"
DOWN_KINDS = {"unreachable", "timeout", "auth"}  # after these, asking the same host for more is pointless
T = TypeVar("T")


@dataclass(frozen=True)
class SyncOptions:
    """How hard to try: overall request concurrency, per-request policy, per-provider deadline (s)."""

    concurrency: int = 16
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    deadline: float = 300.0
    backfill_days: int = 35  # how far back the first sync of an endpoint (or a full one) asks for usage
    full: bool = False
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    transport: httpx.AsyncBaseTransport | None = None  # tests and benches may inject one


@dataclass(frozen=True)
class ProviderSyncStatus:
    """How one endpoint's sync ended. `changed` counts inserted + updated records; `rows` all stored."""

    provider: str
    account: str
    status: str  # ok | partial | failed
    rows: int
    changed: int
    duration_s: float
    requests: int
    reason: str | None
    resources: tuple[tuple[str, str], ...]  # (usage|invoices|payments, "ok" or why not)
    unreachable_since: datetime | None

    @property
    def ok(self) -> bool:
        return self.status == OK


def sync_all(db: Database, now: datetime, *, provider: str | None = None,
             options: SyncOptions | None = None) -> list[ProviderSyncStatus]:
    """Sync every enabled endpoint (or those of `provider`) now; never raises for a provider's failure."""
    return asyncio.run(sync_providers(db, now, provider=provider, options=options or SyncOptions()))


async def sync_providers(db: Database, now: datetime, *, provider: str | None,
                         options: SyncOptions) -> list[ProviderSyncStatus]:
    with db.unit_of_work() as s:
        configs = endpoint_configs(s, provider)
    if not configs:
        return []
    limiter = asyncio.Semaphore(options.concurrency)
    # SQLite has one writer at a time: queue our writes instead of spinning on its busy timeout.
    writes = asyncio.Semaphore(1 if db.dialect == "sqlite" else 4)
    limits = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency)
    async with httpx.AsyncClient(limits=limits, transport=options.transport) as http:
        runs = [_EndpointRun(db, c, now, options, ProviderClient(
            http, c.base_url, options.env.get(c.token_env) if c.token_env else None, policy=options.policy,
            limiter=limiter), writes) for c in configs]
        return list(await asyncio.gather(*(run.run() for run in runs)))


class _EndpointRun:
    """One endpoint's sync: usage, invoices, payments in turn, each stored (or not) on its own."""

    def __init__(self, db: Database, config: EndpointConfig, now: datetime, options: SyncOptions,
                 client: ProviderClient, writes: asyncio.Semaphore) -> None:
        self.db, self.c, self.now, self.options, self.client, self.writes = db, config, now, options, client, writes
        self.target = Target(config.account_id, config.provider_id, config.source, dict(config.deployments))
        self.done: dict[str, str] = {}
        self.rows = self.changed = 0

    async def run(self) -> ProviderSyncStatus:
        started = time.monotonic()
        reason: str | None = None
        if self.c.token_env and not self.options.env.get(self.c.token_env):
            reason = f"the environment variable {self.c.token_env} (its API token) is not set"
        else:
            try:
                await asyncio.wait_for(self._steps(), timeout=self.options.deadline)
            except TimeoutError:
                reason = f"gave up after {self.options.deadline:g} s (deadline)"
        failures = [why for why in self.done.values() if why != OK]
        reason = reason or (failures[0] if failures else None)
        stored = any(why == OK for why in self.done.values())
        status = OK if reason is None else PARTIAL if stored else FAILED
        since = await self._write(lambda s: record_outcome(s, self.c.id, ok=status == OK, status=status,
                                                           error=reason, at=self.now))
        return ProviderSyncStatus(
            provider=self.c.provider, account=self.c.account, status=status, rows=self.rows, changed=self.changed,
            duration_s=time.monotonic() - started, requests=self.client.requests, reason=reason,
            resources=tuple(self.done.items()), unreachable_since=since)

    async def _steps(self) -> None:
        for name, step in (("usage", self._usage), ("invoices", self._invoices), ("payments", self._payments)):
            try:
                await step()
                self.done[name] = OK
            except ProviderError as exc:
                self.done[name] = f"{name}: {exc.message}"
                if exc.kind in DOWN_KINDS:
                    return
            except BillingError as exc:  # the ledger refused a record: nothing of this resource was stored
                self.done[name] = f"{name}: rejected by the ledger: {exc.message}"

    # --- usage ---

    async def _usage(self) -> None:
        end = self.now.replace(minute=0, second=0, microsecond=0)  # the current hour is still being metered
        start = self.c.usage_until if self.c.usage_until and not self.options.full else \
            end - timedelta(days=self.options.backfill_days)
        if start >= end:
            return
        items = await self.client.usage(start=start, end=end, granularity="hour")
        records = [usage_record(i, self.target) for i in items]
        self._count(await self._write(lambda s: self._store_usage(s, records, end)))

    def _store_usage(self, s: Session, records: list[UsageIn], end: datetime) -> tuple[int, int]:
        result = ingest_usage(s, records)
        advance_marks(s, self.c.id, usage_until=end)
        return len(records), result.inserted + result.updated

    # --- invoices ---

    async def _invoices(self) -> None:
        since = None if self.options.full else self.c.invoices_since
        items = await self.client.invoices(start=since)
        if since is not None:  # older invoices still open may have been paid or voided meanwhile
            items = _unique([*items, *await self.client.invoices(status="open")])
        records = [invoice_record(i, self.target) for i in items]
        newest = max((r.issue_date for r in records), default=None)
        self._count(await self._write(lambda s: self._store_invoices(s, records, newest)))

    def _store_invoices(self, s: Session, records: Sequence[InvoiceIn], newest: date | None) -> tuple[int, int]:
        changed = sum(upsert_provider_invoice(s, r, self.now) for r in records)
        advance_marks(s, self.c.id, invoices_since=newest)
        return len(records), changed

    # --- payments ---

    async def _payments(self) -> None:
        items = await self.client.payments(updated_since=None if self.options.full else self.c.payments_since)
        records = [payment_record(i, self.target) for i in items]
        newest = max((updated_at(i) for i in items), default=None)
        wanted = {r.invoice_external[1] for r in records if r.invoice_external}
        known = await self._write(lambda s: known_invoices(s, self.c.source, wanted))
        # A payment of an invoice we have not seen (issued before our first sync): fetch that invoice first.
        missing = [invoice_record(await self.client.invoice(i), self.target) for i in sorted(wanted - known)]
        self._count(await self._write(lambda s: self._store_payments(s, missing, records, newest)))

    def _store_payments(self, s: Session, invoices: Sequence[InvoiceIn], records: Sequence[PaymentIn],
                        newest: datetime | None) -> tuple[int, int]:
        changed = sum(upsert_provider_invoice(s, r, self.now) for r in invoices)
        changed += sum(upsert_payment(s, r, now=self.now)[1] != "unchanged" for r in records)
        advance_marks(s, self.c.id, payments_since=newest)
        return len(invoices) + len(records), changed

    # --- plumbing ---

    def _count(self, counts: tuple[int, int]) -> None:
        self.rows += counts[0]
        self.changed += counts[1]

    async def _write(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one unit of work on a worker thread, so other providers keep fetching."""
        def unit() -> T:
            with self.db.unit_of_work() as s:
                return work(s)

        async with self.writes:
            return await asyncio.to_thread(unit)


def _unique(items: list[Json]) -> list[Json]:
    seen: dict[str, Json] = {}
    for item in items:
        seen.setdefault(str(item.get("id")), item)
    return list(seen.values())


SETTLED = (InvoiceStatus.PAID.value, InvoiceStatus.CANCELLED.value)
EARLIER = (InvoiceStatus.DRAFT, InvoiceStatus.PENDING)


def upsert_provider_invoice(s: Session, record: InvoiceIn, now: datetime) -> bool:
    """Upsert one provider invoice; True when it changed. A paid or voided invoice ignores an earlier state
    (draft, open: a late web-hook or a provider that has not seen our payment yet), amounts included."""
    if record.status in EARLIER and stored_invoice_status(s, record.source, record.external_id) in SETTLED:
        return False
    return upsert_invoice(s, record, now=now)[1] != "unchanged"
