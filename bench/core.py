"""Benchmark of the billing core on SQLite and PostgreSQL in one run.

Generates N usage rows (20 accounts' worth per 10 M: 35 deployments × 5 meters × 120 days hourly each),
ingests them through the real idempotent ingestion (rollups included), then times the questions the bot
asks: month summary by deployment, 30-day trend and an invoice list page, and the same month summary
as a plain GROUP BY over the raw rows. Prints a Markdown table (README's performance section).

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

from sqlalchemy import create_engine, func, select, text

from billing_core.db.engine import Database
from billing_core.db.ingest import ingest_usage, upsert_invoice
from billing_core.db.migrate import upgrade
from billing_core.db.models import Account, Deployment, Provider, UsageRecord
from billing_core.periods import Granularity, month_period
from billing_core.records import InvoiceIn, LineIn, UsageIn
from billing_core.results import InvoiceQuery, InvoiceStatus
from billing_core.service import Billing

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEPLOYMENTS, METERS, DAYS = 35, ("cpu", "memory", "storage", "bandwidth", "gpu"), 120
ROWS_PER_ACCOUNT = DEPLOYMENTS * len(METERS) * DAYS * 24
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
START = datetime(2026, 7, 25, tzinfo=UTC)


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


def rows_for(account: tuple[int, list[int], int], limit: int) -> Iterator[UsageIn]:
    account_id, deps, provider_id = account
    n = 0
    for h in range(DAYS * 24):
        start = START + timedelta(hours=h)
        for d, dep in enumerate(deps):
            for m, meter in enumerate(METERS):
                if n >= limit:
                    return
                n += 1
                cost = Decimal((h * 7 + d * 13 + m * 31) % 1000) / 1000
                yield UsageIn(account_id=account_id, meter=meter, quantity=Decimal(1), unit="u", cost=cost,
                              currency="USD", period_start=start, period_end=start + timedelta(hours=1),
                              source="bench", external_id=f"{account_id}:{dep}:{meter}:{h}",
                              deployment_id=dep, provider_id=provider_id)


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
    accounts = setup_accounts(db, max(1, -(-rows // ROWS_PER_ACCOUNT)))
    remaining, started = rows, time.perf_counter()
    for account in accounts:
        take = min(remaining, ROWS_PER_ACCOUNT)
        with db.unit_of_work() as s:
            ingest_usage(s, rows_for(account, take))
        remaining -= take
        print(f"  {label}: {rows - remaining:,} rows ingested, {time.perf_counter() - started:.0f} s", flush=True)
    ingest_rate = rows / (time.perf_counter() - started)
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    billing = Billing(db)
    target = "bench-0"
    month = month_period(date(2026, 10, 1))
    summary = timed(lambda: billing.usage(target, month, group_by="deployment", granularity=Granularity.DAY))
    trend = timed(lambda: billing.trend(target, now=NOW))
    page = timed(lambda: billing.invoices(target, InvoiceQuery(limit=20), now=NOW))
    raw = timed(lambda: raw_month_by_deployment(db, accounts[0][0], month), repeat=3)
    return Figures(label, rows, ingest_rate, summary, trend, page, raw)


def raw_month_by_deployment(db: Database, account_id: int, month: object) -> list[object]:
    from zoneinfo import ZoneInfo

    start, end = month.utc_bounds(ZoneInfo("America/New_York"))  # type: ignore[attr-defined]
    with db.unit_of_work() as s:
        stmt = (select(UsageRecord.deployment_id, func.sum(UsageRecord.cost))
                .where(UsageRecord.account_id == account_id, UsageRecord.period_start >= start,
                       UsageRecord.period_start < end)
                .group_by(UsageRecord.deployment_id))
        return list(s.execute(stmt))


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
                drop()
    print()
    print("| database | usage rows | ingest rows/s | month summary by deployment | 30-day trend | invoice page "
          "| raw GROUP BY (same month) | rollup speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for f in figures:
        print(f"| {f.database} | {f.rows:,} | {f.ingest_rows_per_s:,.0f} | {f.month_summary_ms:.1f} ms | "
              f"{f.trend_ms:.1f} ms | {f.invoice_page_ms:.1f} ms | {f.raw_group_by_ms:,.0f} ms | {f.speedup:,.0f}× |")


if __name__ == "__main__":
    main()
