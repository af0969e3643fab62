"""Bench: sync 20 local providers at once, 3 of them broken; total wall time vs the slowest healthy one vs the sum.

    .venv/bin/python -m bench.sync [--providers 20] [--hours 168] [--page-size 50]

Each provider is a real HTTP server on 127.0.0.1 (`tests.fake_provider`) answering every request after a
fixed latency drawn from 50–400 ms (seeded, so runs compare), with a week of hourly usage over several
pages, two invoices and a payment. Three are broken: one never answers in time (timeout), one answers 500
to everything, one refuses connections. The sync uses the production defaults except the request
timeout (1 s, 2 attempts), so the timing-out provider gives up in about 2 s.

Reported: the concurrent run's wall time; each healthy provider synced alone (the slowest of them is the
floor of any run); the sum of those (what a sequential sync would cost); the broken ones' give-up times.
Goal: concurrent ≈ max(slowest healthy, slowest give-up), far below the sum.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from billing_core.db.engine import Database
from billing_core.db.migrate import upgrade
from billing_core.db.models import Account
from billing_core.db.sync_models import add_endpoint
from billing_core.sources.provider_api import RetryPolicy
from billing_core.sources.sync import ProviderSyncStatus, SyncOptions, sync_all
from tests.fake_provider import Behaviour, FakeProvider, hourly_usage, invoice, payment, refused_url

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
POLICY = RetryPolicy(timeout=1.0, attempts=2, backoff=0.1, max_backoff=0.5)


def build(stack: ExitStack, n: int, hours: int, page_size: int) -> dict[str, str]:
    rng = random.Random(42)
    urls: dict[str, str] = {}
    for i in range(n - 3):
        fake = stack.enter_context(FakeProvider(Behaviour(delay=rng.uniform(0.05, 0.4), page_size=page_size)))
        prefix = f"p{i:02d}"
        fake.usage = hourly_usage(prefix, datetime(2026, 11, 16, tzinfo=UTC), hours)
        fake.invoices = [invoice(f"{prefix}-1", issued=date(2026, 11, 1)),
                         invoice(f"{prefix}-2", issued=date(2026, 10, 1), amount="80.00")]
        fake.payments = [payment(f"{prefix}-pay", f"{prefix}-2", "80.00", updated=datetime(2026, 10, 5, tzinfo=UTC))]
        urls[f"healthy-{i:02d} ({fake.behaviour.delay * 1000:.0f} ms)"] = fake.url
    urls["broken-timeout"] = stack.enter_context(FakeProvider(Behaviour(delay=30))).url
    urls["broken-500"] = stack.enter_context(FakeProvider(Behaviour(always_fail=True))).url
    urls["broken-refused"] = refused_url()
    return urls


def database(directory: Path, urls: dict[str, str]) -> Database:
    db = Database(f"sqlite:///{directory / 'bench-sync.db'}")
    upgrade(db)
    with db.unit_of_work() as s:
        account = Account(name="bench", currency="USD", timezone="UTC", created_at=NOW)
        s.add(account)
        s.flush()
        for name, url in urls.items():
            add_endpoint(s, provider=name, base_url=url, token_env=None, account=account, now=NOW)
    return db


def timed(db: Database, options: SyncOptions, provider: str | None = None) -> tuple[float, list[ProviderSyncStatus]]:
    started = time.perf_counter()
    statuses = sync_all(db, NOW, provider=provider, options=options)
    return time.perf_counter() - started, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=20)
    parser.add_argument("--hours", type=int, default=168, help="hourly usage rows per provider")
    parser.add_argument("--page-size", type=int, default=50)
    args = parser.parse_args()
    options = SyncOptions(policy=POLICY, env={})
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        urls = build(stack, args.providers, args.hours, args.page_size)
        db = database(Path(tmp), urls)
        total, statuses = timed(db, options)
        print(f"{'provider':<24} {'status':<8} {'rows':>6} {'requests':>8} {'time':>7}  detail")
        for s in statuses:
            print(f"{s.provider:<24} {s.status:<8} {s.rows:>6} {s.requests:>8} {s.duration_s:>6.2f}s  {s.reason or ''}")
        alone = {name: timed(db, replace(options, full=True), name)[0] for name in urls}
        healthy = {k: v for k, v in alone.items() if k.startswith("healthy")}
        broken = {k: v for k, v in alone.items() if k.startswith("broken")}
        rows = sum(s.rows for s in statuses)
        print()
        print(f"concurrent sync of {len(urls)} providers ({len(broken)} broken): {total:.2f} s wall, {rows:,} rows")
        slowest, give_up = max(healthy, key=healthy.__getitem__), max(broken, key=broken.__getitem__)
        print(f"slowest healthy provider alone:  {healthy[slowest]:.2f} s ({slowest})")
        print(f"slowest broken one gives up in:  {broken[give_up]:.2f} s ({give_up})")
        print(f"sum of healthy providers alone:  {sum(healthy.values()):.2f} s (a sequential sync)")
        print(f"sum of all providers alone:      {sum(alone.values()):.2f} s")
        ok = sum(s.ok for s in statuses)
        print(f"ok {ok}, failed {sum(s.status == 'failed' for s in statuses)}, partial "
              f"{sum(s.status == 'partial' for s in statuses)}")
        db.dispose()


if __name__ == "__main__":
    main()
