"""Benchmark of the billing core on SQLite and PostgreSQL in one run.

Generates N usage rows for one busy account the way metering agents report them: 35 deployments ×
5 meters × 2 instances, one record every 5 minutes (4,200 rows an hour; 10 M rows ≈ 99 days), ending
now. They go through the real idempotent ingestion (rollups included, one transaction per 500 k rows);
then the questions the bot asks are timed (median of 7 warm runs): the last-30-days summary by
deployment, the 30-day trend, an invoice list page — and the same 30-day summary as a plain GROUP BY
over the raw rows. Prints a Markdown table (the README's performance section).

    python -m bench.core --rows 1000000 [--rows 10000000] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, select, text

from billing_core.db.engine import Database
from billing_core.db.ingest import ingest_usage, upsert_invoice
from billing_core.db.migrate import upgrade
from billing_core.db.models import Account, Deployment, Provider, UsageRecord
from billing_core.periods import Granularity, Period, last_days
from billing_core.records import InvoiceIn, LineIn, UsageIn
from billing_core.results import InvoiceQuery, InvoiceStatus
from billing_core.service import Billing

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEPLOYMENTS, METERS, INSTANCES, SAMPLES_PER_HOUR = 35, ("cpu", "memory", "storage", "bandwidth", "gpu"), 2, 12
ROWS_PER_HOUR = DEPLOYMENTS * len(METERS) * INSTANCES * SAMPLES_PER_HOUR
TRANSACTION_ROWS = 500_000
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


@dataclass
class Figures:
    database: str
    rows: int
    ingest_rows_per_s: float
    month_summary_ms: float
    trend_ms: float
    invoice_page_ms: float
    raw_group_by_ms: float

    @property
    def speedup(self) -> float:
        return self.raw_group_by_ms / self.month_summary_ms


def setup_accounts(db: Database, accounts: int) -> list[tuple[int, list[int], int]]:
    with db.unit_of_work() as s:
        provider = Provider(name="bench-provider")
        s.add(provider)
        s.flush()
        made = []
        for a in range(accounts):
            acct = Account(name=f"bench-{a}", currency="USD", timezone="America/New_York", created_at=NOW)
            s.add(acct)
            s.flush()
            deps = [Deployment(account_id=acct.id, provider_id=provider.id, name=f"dep-{d}", created_at=NOW)
                    for d in range(DEPLOYMENTS)]
            s.add_all(deps)
            s.flush()
            made.append((acct.id, [d.id for d in deps], provider.id))
            for i in range(60):  # five years of monthly invoices
                issue = date(2021, 12, 1) + timedelta(days=30 * i)
                upsert_invoice(s, InvoiceIn(
                    account_id=acct.id, source="bench", external_id=f"{a}-{i}", status=InvoiceStatus.PENDING,
                    issue_date=issue, due_date=issue + timedelta(days=30), period_start=issue, period_end=issue,
                    currency="USD", lines=(LineIn("usage", Decimal(1), "unit", Decimal("99.5"), Decimal("99.5")),),
                ), now=NOW)
    return made


def rows_for(account: tuple[int, list[int], int], total: int) -> Iterator[UsageIn]:
    """`total` records ending at NOW, newest hour last; deterministic costs with sub-cent precision."""
    account_id, deps, provider_id = account
    hours = -(-total // ROWS_PER_HOUR)
    start = NOW - timedelta(hours=hours)
    step = timedelta(minutes=60 // SAMPLES_PER_HOUR)
    n = 0
    for h in range(hours):
        for s in range(SAMPLES_PER_HOUR):
            begin = start + timedelta(hours=h) + s * step
            for d, dep in enumerate(deps):
                for m, meter in enumerate(METERS):
                    for i in range(INSTANCES):
                        if n >= total:
                            return
                        n += 1
                        cost = Decimal((h * 7 + s * 3 + d * 13 + m * 31 + i) % 1000) / 100000
                        yield UsageIn(
                            account_id=account_id, meter=meter, quantity=Decimal(1), unit="u", cost=cost,
                            currency="USD", period_start=begin, period_end=begin + step, source="bench",
                            external_id=f"{dep}:{meter}:{i}:{h}:{s}", deployment_id=dep, provider_id=provider_id)


def chunks(rows: Iterator[UsageIn], size: int) -> Iterator[Iterator[UsageIn]]:
    from itertools import chain, islice

    for first in rows:
        yield chain([first], islice(rows, size - 1))


def timed(fn: Callable[[], object], repeat: int = 7) -> float:
    fn()  # warm
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def run(db: Database, label: str, rows: int) -> Figures:
    upgrade(db)
    (account,) = setup_accounts(db, 1)
    started = time.perf_counter()
    done = 0
    for chunk in chunks(rows_for(account, rows), TRANSACTION_ROWS):
        with db.unit_of_work() as s:
            done += ingest_usage(s, chunk).inserted
        print(f"  {label}: {done:,} rows ingested, {time.perf_counter() - started:.0f} s", flush=True)
    ingest_rate = rows / (time.perf_counter() - started)
    settle(db)
    billing = Billing(db)
    window = last_days(NOW.date(), 30)
    summary = timed(lambda: billing.usage("bench-0", window, group_by="deployment", granularity=Granularity.DAY))
    trend = timed(lambda: billing.trend("bench-0", now=NOW))
    page = timed(lambda: billing.invoices("bench-0", InvoiceQuery(limit=20), now=NOW))
    raw = timed(lambda: raw_summary_by_deployment(db, account[0], window), repeat=3)
    return Figures(label, rows, ingest_rate, summary, trend, page, raw)


def raw_summary_by_deployment(db: Database, account_id: int, period: Period) -> list[object]:
    """The same question without rollups: cost per deployment per local day, straight from usage_records."""
    start, end = period.utc_bounds(ZoneInfo("America/New_York"))
    if db.dialect == "postgresql":
        day = func.date(func.timezone("America/New_York", UsageRecord.period_start))
    else:  # SQLite has no time zones: its UTC day is the same amount of work
        day = func.date(UsageRecord.period_start)
    with db.unit_of_work() as s:
        stmt = (select(day, UsageRecord.deployment_id, func.sum(UsageRecord.quantity), func.sum(UsageRecord.cost))
                .where(UsageRecord.account_id == account_id, UsageRecord.period_start >= start,
                       UsageRecord.period_start < end)
                .group_by(day, UsageRecord.deployment_id))
        return list(s.execute(stmt))


def settle(db: Database) -> None:
    """What autovacuum/ANALYZE do in steady state: clear dead rollup versions, refresh statistics."""
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def sqlite_db(rows: int) -> Database:
    path = Path("var") / f"bench-{rows}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Database(f"sqlite:///{path}")


def postgres_db() -> tuple[Database, Callable[[], None]]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

    return Database(PG_URL, connect_args={"options": f"-csearch_path={schema}"}), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, action="append", help="rows to generate (repeatable)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema for a closer look")
    args = parser.parse_args()
    figures = []
    for rows in args.rows or [1_000_000]:
        if args.only != "postgresql":
            db = sqlite_db(rows)
            figures.append(run(db, "SQLite", rows))
            db.dispose()
        if args.only != "sqlite":
            db, drop = postgres_db()
            try:
                figures.append(run(db, "PostgreSQL", rows))
            finally:
                db.dispose()
                if args.keep:
                    print(f"kept: {db.url} {db.engine.dialect.name} search_path in connect_args")
                else:
                    drop()
    print()
    print("| database | usage rows | ingest rows/s | 30-day summary by deployment | 30-day trend | invoice page "
          "| raw GROUP BY (same 30 days) | rollup speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for f in figures:
        print(f"| {f.database} | {f.rows:,} | {f.ingest_rows_per_s:,.0f} | {f.month_summary_ms:.1f} ms | "
              f"{f.trend_ms:.1f} ms | {f.invoice_page_ms:.1f} ms | {f.raw_group_by_ms:,.0f} ms | {f.speedup:,.0f}× |")


if __name__ == "__main__":
    main()
