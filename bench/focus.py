"""Benchmark of the FOCUS import: parse + idempotent ingestion throughput and memory, SQLite and PostgreSQL.

Generates a FOCUS 1.2 CSV of N rows the way a cloud exports one — 1,000 resources in 5 sub-accounts ×
8 services × 4 regions, one usage row per resource and hour, with tags and SKU price details — into a
temporary directory, then:

1. reads it without a database (`focus_files.focus_batches` alone: the reader's own ceiling), and
2. imports it with `billing_core.imports.import_focus` (the same path as `billing-bot import focus`:
   batches of 50 k rows, one transaction each, rollups included, each written while a child process reads
   the next; on PostgreSQL a batch's rows go in while the one before commits) into SQLite and, when
   reachable, PostgreSQL (bench.core's URL, the local server; in a scratch schema dropped afterwards).

Memory: the proportional set (PSS: resident pages, a page shared by the two processes counted once) of the
importer and its reader process together, sampled after every batch; "RSS first batch" vs "RSS peak" shows
whether it stays flat as the file goes by (it must not grow with the file).

    python -m bench.focus [--rows 1000000] [--rows 5000000] [--only sqlite|postgresql] [--parquet]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bench.core import NOW, PG_URL, postgres_db, sqlite_db
from billing_core.db.engine import Database
from billing_core.db.migrate import upgrade
from billing_core.db.models import Account
from billing_core.focus_files import Batch, focus_batches
from billing_core.imports import import_focus
from billing_core.sources.focus import FocusOptions

RESOURCES, SUB_ACCOUNTS = 1_000, 5
SERVICES = (("Amazon Elastic Compute Cloud", "Compute", "Hrs", "0.0416"), ("Amazon Simple Storage Service",
            "Storage", "GB-Mo", "0.0230"), ("Amazon Relational Database Service", "Databases", "Hrs", "0.1710"),
            ("AWS Lambda", "Compute", "Requests", "0.0000002"), ("Amazon CloudFront", "Networking", "GB", "0.0850"),
            ("Amazon Bedrock", "AI and Machine Learning", "Tokens", "0.000003"),
            ("Amazon DynamoDB", "Databases", "WriteRequestUnits", "0.00000125"),
            ("Amazon Elastic Kubernetes Service", "Compute", "Hrs", "0.1000"))
REGIONS = (("us-east-1", "US East (N. Virginia)"), ("us-west-2", "US West (Oregon)"),
           ("eu-central-1", "Europe (Frankfurt)"), ("ap-southeast-1", "Asia Pacific (Singapore)"))
HEADER = ["BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
          "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
          "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
          "EffectiveCost", "ListCost", "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit",
          "ProviderName", "ServiceProviderName", "RegionId", "RegionName", "ResourceId", "ResourceName",
          "ServiceCategory", "ServiceName", "SkuId", "SkuPriceDetails", "SkuPriceId", "SubAccountId",
          "SubAccountName", "Tags"]
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Figures:
    database: str
    rows: int
    file_mb: float
    seconds: float
    rss_first_mb: float
    rss_peak_mb: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def generate(path: Path, rows: int) -> tuple[Decimal, float]:
    """Write the FOCUS file; returns its BilledCost total and the seconds it took."""
    started = time.perf_counter()
    total = Decimal(0)
    hours = [(START + timedelta(hours=h)) for h in range(rows // RESOURCES + 1)]
    stamps = [(h.strftime("%Y-%m-%dT%H:%M:%SZ"), (h + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               h.strftime("%Y-%m-01T00:00:00Z")) for h in hours]
    resources = []
    for r in range(RESOURCES):
        service, category, unit, list_price = SERVICES[r % len(SERVICES)]
        region_id, region_name = REGIONS[r % len(REGIONS)]
        sub = r % SUB_ACCOUNTS
        resources.append((service, category, unit, Decimal(list_price), region_id, region_name, f"arn:aws:r-{r:05d}",
                          f"resource-{r:05d}", f"{100000000000 + sub}", f"team-{sub}",
                          json.dumps({"team": f"team-{sub}", "env": "prod" if r % 3 else "staging"}),
                          json.dumps({"OperatingSystem": "Linux"}) if category == "Compute" else ""))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(rows):
            start, end, period = stamps[i // RESOURCES]
            (service, category, unit, price, region_id, region_name, resource_id, resource_name, sub_id, sub_name,
             tags, sku_details) = resources[i % RESOURCES]
            quantity = Decimal(1 + (i * 7919) % 997) / 10
            cost = (quantity * price).quantize(Decimal("0.0000001"))
            total += cost
            writer.writerow((cost, "123456789012", "Acme Corp", "USD", "", period, "Usage", "",
                             f"{service} {unit}", "Usage-Based", end, start, quantity, unit, cost, cost, cost, price,
                             "Standard", quantity, unit, "AWS", "AWS", region_id, region_name, resource_id,
                             resource_name, category, service, f"SKU{i % RESOURCES % 97:03d}", sku_details,
                             f"SKU{i % RESOURCES % 97:03d}-OD", sub_id, sub_name, tags))
    return total, time.perf_counter() - started


def to_parquet(path: Path) -> Path:
    """The CSV written as a Parquet export would hold it: amounts as decimals, instants as timestamps."""
    typed = {name: pa.decimal128(18, 7) for name in ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost")}
    typed |= dict.fromkeys(("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart"), pa.timestamp("s", "UTC"))
    types = {name: typed.get(name, pa.string()) for name in HEADER}
    target = path.with_suffix(".parquet")
    reader = pa_csv.open_csv(path, convert_options=pa_csv.ConvertOptions(column_types=types))
    with pq.ParquetWriter(target, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    return target


def rss_mb() -> float:
    """Memory of this process and its children (the import's reader process), in MB: the sum of their proportional
    sets (Linux /proc), so that pages a forked child still shares with its parent count once, not twice."""
    kilobytes = 0
    for pid in (os.getpid(), *_children()):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                kilobytes += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except OSError:  # the child ended meanwhile
            continue
    return kilobytes / 1e3


def _children() -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():  # the field after the state is the parent's pid
            found.append(int(stat.parent.name))
    return found


def parse_only(path: Path) -> tuple[float, int]:
    """The file read into batches of usage tables, as the import reads it, with no database behind."""
    started = time.perf_counter()
    count = 0
    with path.open("rb") as raw:
        for item in focus_batches(raw, FocusOptions(account_id=1, currency="USD"), lambda *_: (None, None),
                                  batch_rows=20_000):
            if isinstance(item, Batch):
                count += item.table.num_rows
            else:
                assert not item.rejections, item.rejections
    return time.perf_counter() - started, count


def run(db: Database, label: str, path: Path, rows: int, reimport: bool) -> Figures:
    upgrade(db)
    with db.unit_of_work() as s:
        s.add(Account(name="bench-focus", currency="USD", timezone="America/New_York", created_at=NOW))
    samples: list[float] = []
    sample: Callable[[str, int, int, int], None] = lambda *_: samples.append(rss_mb())  # noqa: E731
    started = time.perf_counter()
    [report] = import_focus(db, "bench-focus", [path], now=NOW, progress=sample)
    took = time.perf_counter() - started
    assert report.rejected == 0 and report.result.inserted == rows, report
    print(f"{label}: {rows:,} rows in {took:.1f} s = {rows / took:,.0f} rows/s", flush=True)
    if reimport:
        again = time.perf_counter()
        [second] = import_focus(db, "bench-focus", [path], now=NOW)
        print(f"{label}: re-import of the same file, all unchanged: {second.result.unchanged == rows}, "
              f"{rows / (time.perf_counter() - again):,.0f} rows/s", flush=True)
    return Figures(label, rows, path.stat().st_size / 1e6, took, samples[0], max(samples))


def postgres_reachable(url: str) -> bool:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except OperationalError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="rows to generate (repeatable; default 1 M)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--no-reimport", action="store_true", help="skip timing the idempotent second import")
    parser.add_argument("--parquet", action="store_true",
                        help="also import the file written as Parquet (typed columns), into SQLite")
    args = parser.parse_args()
    figures = []
    for rows in args.rows or [1_000_000]:
        with tempfile.TemporaryDirectory(prefix="bench-focus-") as tmp:
            path = Path(tmp) / f"focus-{rows}.csv"
            billed, generated = generate(path, rows)
            print(f"generated {rows:,} rows ({path.stat().st_size / 1e6:,.0f} MB, BilledCost {billed:,}) "
                  f"in {generated:.1f} s", flush=True)
            seconds, count = parse_only(path)
            print(f"parse only: {count:,} rows in {seconds:.1f} s = {count / seconds:,.0f} rows/s", flush=True)
            if args.only != "postgresql":
                db = sqlite_db(rows)
                figures.append(run(db, "SQLite", path, rows, not args.no_reimport))
                db.dispose()
            if args.only != "sqlite" and postgres_reachable(PG_URL):
                db, drop = postgres_db()
                try:
                    figures.append(run(db, "PostgreSQL", path, rows, not args.no_reimport))
                finally:
                    db.dispose()
                    drop()
            if args.parquet:
                parquet = to_parquet(path)
                db = sqlite_db(rows)
                figures.append(run(db, "SQLite, Parquet", parquet, rows, not args.no_reimport))
                db.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print()
    print("| database | FOCUS rows | file | import rows/s (parse + ingest) | RSS after first batch | RSS peak |")
    print("|---|---:|---:|---:|---:|---:|")
    for f in figures:
        print(f"| {f.database} | {f.rows:,} | {f.file_mb:,.0f} MB | {f.rows_per_s:,.0f} | {f.rss_first_mb:,.0f} MB "
              f"| {f.rss_peak_mb:,.0f} MB |")
    print(f"\nprocess peak RSS (getrusage): {peak:,.0f} MB; largest reader process: "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3:,.0f} MB")


if __name__ == "__main__":
    main()
