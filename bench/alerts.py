"""Benchmark of alerts: the set-based budget sweep, and delivery throughput against the fake Slack.

1. Budget sweep: A accounts × 5 budgets (all usage, a resource, a deployment, a provider, a dimension) with a
   month of daily rollups each; times `Alerts.budget_sweep` (every budget's spend in its local period; median
   of 5 warm runs), the sweep with the threshold rule applied to every budget, and the worker's whole
   evaluation (`Alerts.evaluate`: every rule for every account — overdue, budgets, forecast, anomaly,
   digest — storing the alerts with their outbox rows), first when everything is new, then the run after,
   when nothing is.
2. Delivery: N alerts over C channels to the local fake Slack with its per-channel limit of 1 message/s;
   reports messages per second and the 429s Slack had to send (goal: none — we pace ourselves).

    python -m bench.alerts [--accounts 2000] [--alerts 30 --channels 3] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, insert, text

from billing_core.alerts import rules
from billing_core.alerts.service import Alerts
from billing_core.db.alert_models import Alert, AlertDelivery
from billing_core.db.engine import Database
from billing_core.db.migrate import upgrade
from billing_core.db.models import Account, Budget, ChannelLink, Deployment, Provider, UsageDaily, UsageDailyDimension
from billing_core.money import to_micros
from billing_core.service import Billing
from bot.jobs.delivery import Deliverer, delivery_client
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.fake_state import Channel

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
DAYS = 21


def _seed_budgets(db: Database, accounts: int) -> int:
    with db.unit_of_work() as s:
        s.add(Provider(id=1, name="Helios"))
        s.flush()
        s.execute(insert(Account), [{"id": i, "name": f"acct-{i}", "currency": "USD", "timezone": tz,
                                     "created_at": NOW, "credit_balance": Decimal(0), "status": "active"}
                                    for i, tz in ((i, ("UTC", "America/New_York", "Asia/Tokyo")[i % 3])
                                                  for i in range(1, accounts + 1))])
        s.execute(insert(Deployment), [{"id": i, "account_id": i, "provider_id": 1, "name": "api", "created_at": NOW,
                                        "status": "active"} for i in range(1, accounts + 1)])
        start = date(2026, 11, 1)
        daily = [{"account_id": i, "day": start + timedelta(days=d), "deployment_id": i, "provider_id": 1,
                  "meter": m, "unit": "h", "quantity": to_micros(Decimal(1)), "cost": to_micros(Decimal(40 + i % 7)),
                  "records": 1} for i in range(1, accounts + 1) for d in range(DAYS) for m in ("cpu", "gpu")]
        s.execute(insert(UsageDaily.__table__), daily)
        s.execute(insert(UsageDailyDimension.__table__), [
            {"account_id": i, "day": start + timedelta(days=d), "dim_key": "model", "dim_value": "gpt-4o",
             "meter": "gpu", "unit": "h", "quantity": to_micros(Decimal(1)), "cost": to_micros(Decimal(40)),
             "records": 1} for i in range(1, accounts + 1) for d in range(DAYS)])
        scopes = (("all", None, None, 1000), ("resource", None, "gpu", 900), ("deployment", None, "api", 2000),
                  ("provider", None, "Helios", 5000), ("dimension", "model", "gpt-4o", 700))
        s.execute(insert(Budget), [{"account_id": i, "name": kind, "scope_kind": kind, "scope_key": key,
                                    "scope_value": value, "amount": Decimal(amount), "period": "month",
                                    "thresholds": "50,80,100", "created_at": NOW}
                                   for i in range(1, accounts + 1) for kind, key, value, amount in scopes])
    return accounts * 5


def bench_evaluate(db: Database) -> tuple[float, float, int]:
    """Seconds of the first full evaluation (alerts created), of the next one (nothing new), and alerts made."""
    alerts = Alerts(db)
    started = time.perf_counter()
    first = alerts.evaluate(NOW)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    again = alerts.evaluate(NOW)
    again_s = time.perf_counter() - started
    assert first.created > 0 and again.created == 0, (first, again)
    return first_s, again_s, first.created


def bench_sweep(db: Database, accounts: int) -> tuple[int, float, float]:
    budgets = _seed_budgets(db, accounts)
    alerts = Alerts(db)
    alerts.budget_sweep(NOW)  # warm
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        statuses = alerts.budget_sweep(NOW)
        runs.append(time.perf_counter() - started)
    assert sum(len(v) for v in statuses.values()) == budgets
    started = time.perf_counter()
    crossed = [c for items in alerts.budget_sweep(NOW).values() for b in items
               if (c := rules.budget_candidate(b)) is not None]
    total = time.perf_counter() - started
    assert crossed, "the bench data crosses thresholds"
    return budgets, statistics.median(runs), total


def bench_delivery(db: Database, alerts_n: int, channels: int) -> tuple[float, int]:
    with db.unit_of_work() as s:
        s.add(Account(id=900_001, name="deliver", currency="USD", timezone="UTC", created_at=NOW))
        s.flush()
        for i in range(alerts_n):
            alert = Alert(rule="budget", subject=f"bench:{i}", period="2026-11-01", threshold="80",
                          account_id=900_001, status="open", created_at=NOW, channel=f"C_{i % channels}", is_test=False,
                          payload={"budget": f"b{i}", "scope": "all usage", "amount": "1000", "spent": "850",
                                   "used_pct": "85.0", "threshold": 80, "period": "November 2026", "skipped": []})
            s.add(alert)
            s.flush()
            s.add(AlertDelivery(alert_id=alert.id, purpose="alert", channel=alert.channel or "", state="pending",
                                attempts=0, next_attempt_at=NOW, ambiguous=False, created_at=NOW))
        s.add(ChannelLink(workspace="T", channel="C_0", account_id=900_001, linked_by="bench", linked_at=NOW))
    with FakeSlack(rate_limit_per_channel=1.0) as fake:
        for c in range(channels):
            fake.add_channel(Channel(f"C_{c}", f"bench-{c}", ["U_BOT"]))
        sender = Deliverer(Alerts(db), Billing(db), delivery_client("xoxb-bench", fake.url),
                           clock=lambda: datetime.now(UTC), with_charts=False)
        started = time.perf_counter()
        tally = sender.drain(timeout_s=600)
        elapsed = time.perf_counter() - started
        throttled = sum(1 for c in fake.calls("chat.postMessage") if c.status == 429)
    assert tally.sent == alerts_n, tally
    return alerts_n / elapsed, throttled


def _pg() -> tuple[Database, str]:
    schema = f"bench_alerts_{uuid.uuid4().hex[:8]}"
    with create_engine(PG_URL).begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return Database(PG_URL, connect_args={"options": f"-csearch_path={schema}"}), schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--alerts", type=int, default=30)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    print(f"| database | budgets | sweep (median) | sweep + threshold rule | full evaluation of {args.accounts:,} "
          "accounts: first / next | delivery msg/s "
          f"({args.alerts} alerts, {args.channels} channels, fake limit 1/s/channel) | 429s received |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in ("sqlite", "postgresql"):
        if args.only and args.only != kind:
            continue
        schema = None
        if kind == "sqlite":
            db = Database(f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}")
        else:
            db, schema = _pg()
        try:
            upgrade(db)
            budgets, sweep_s, total_s = bench_sweep(db, args.accounts)
            first_s, again_s, created = bench_evaluate(db)
            rate, throttled = bench_delivery(db, args.alerts, args.channels)
            print(f"| {kind} | {budgets:,} | {sweep_s * 1000:.0f} ms | {total_s * 1000:.0f} ms | "
                  f"{first_s:.1f} s ({created:,} alerts) / {again_s:.1f} s | {rate:.2f} | {throttled} |")
        finally:
            db.dispose()
            if schema:
                with create_engine(PG_URL).begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
