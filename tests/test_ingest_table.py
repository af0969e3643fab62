"""Column-wise writing (`ingest_table.write_rows`, then its rollups, as the FOCUS import writes a batch) keeps
the ledger exactly as writing the same records one by one (`ingest.ingest_usage`) does: every rollup row, unit
included, on both databases."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
from sqlalchemy import select

from billing_core.db.engine import Database
from billing_core.db.ingest import ingest_usage
from billing_core.db.ingest_table import write_rows
from billing_core.db.models import UsageDaily, UsageDailyDimension, UsageHourly
from billing_core.money import to_micros
from billing_core.records import UsageIn
from billing_core.usage_table import USAGE_TABLE
from tests import factories

T0 = datetime(2026, 3, 7, tzinfo=UTC)  # a daylight-saving change in New York falls inside the records' span
DIMENSIONS = ({}, {"region": "eu"}, {"region": "us", "team": "a"}, {"team": "b", "env": "prod"}, {"region": "eu"})


def test_rollups_of_a_table_written_column_wise_equal_those_of_its_records_one_by_one(db: Database) -> None:
    with db.unit_of_work() as s:
        columns, one_by_one = factories.account(s, "columns", tz="America/New_York"), factories.account(
            s, "one-by-one", tz="America/New_York")
        provider = factories.provider(s)
        deployments = {a.id: factories.deployment(s, a, "prod", provider).id for a in (columns, one_by_one)}
        accounts, provider_id = (columns.id, one_by_one.id), provider.id
    records = _records(random.Random(11), 4_000)
    tables = [[_for(r, account, deployments[account], provider_id) for r in records] for account in accounts]
    with db.unit_of_work() as s:
        written = write_rows(s, "test", _table(tables[0]), fresh=True)
        written.rollups.apply(s)
        ingest_usage(s, tables[1])
    assert written.result.inserted == len(records)
    for model in (UsageHourly, UsageDaily, UsageDailyDimension):
        assert (_rollup(db, model, accounts[0], deployments[accounts[0]])
                == _rollup(db, model, accounts[1], deployments[accounts[1]]) != []), model.__name__


def _records(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Records over some 60 hours (local midnights and a clock change crossed), in buckets whose rows differ in
    unit (the last row's unit is the bucket's), with and without a deployment, provider and dimensions."""
    records = []
    for i in range(count):
        start = T0 + timedelta(minutes=17 * rng.randrange(220))
        records.append({
            "external_id": f"r{i}", "meter": rng.choice(("compute", "storage", "network")),
            "unit": rng.choice(("Hrs", "GB", "GB-Mo")), "quantity": Decimal(rng.randrange(10**8)).scaleb(-6),
            "cost": Decimal(rng.randrange(-10**6, 10**9)).scaleb(-6), "start": start,
            "end": start + timedelta(hours=1), "dimensions": rng.choice(DIMENSIONS), "placed": rng.random() < 0.7,
        })
    return records


def _for(record: dict[str, Any], account: int, deployment: int, provider: int) -> UsageIn:
    return UsageIn(account_id=account, meter=record["meter"], quantity=record["quantity"], unit=record["unit"],
                   cost=record["cost"], currency="USD", period_start=record["start"], period_end=record["end"],
                   source="test", external_id=f"{account}:{record['external_id']}",
                   deployment_id=deployment if record["placed"] else None,
                   provider_id=provider if record["placed"] else None,
                   dimensions=dict(record["dimensions"]))


def _table(records: list[UsageIn]) -> pa.Table:
    """The records as the FOCUS reader hands them to the writer (`usage_table.USAGE_TABLE`)."""
    return pa.Table.from_pydict({
        "external_id": [r.external_id for r in records], "account_id": [r.account_id for r in records],
        "deployment_id": [r.deployment_id for r in records], "provider_id": [r.provider_id for r in records],
        "meter": [r.meter for r in records], "unit": [r.unit for r in records],
        "quantity": [to_micros(r.quantity) for r in records], "cost": [to_micros(r.cost) for r in records],
        "currency": [r.currency for r in records], "period_start": [r.period_start for r in records],
        "period_end": [r.period_end for r in records],
        "dimensions": [json.dumps(r.dimensions) for r in records], "attributes": ["{}" for _r in records],
    }, schema=USAGE_TABLE)


def _rollup(db: Database, model: Any, account: int, deployment: int) -> list[tuple[Any, ...]]:
    """An account's rollup rows, sorted, without the account, its deployment numbered -1 in every account."""
    with db.unit_of_work() as s:
        rows = s.scalars(select(model).where(model.account_id == account)).all()
        columns = [c.key for c in model.__table__.columns if c.key != "account_id"]
        return sorted(tuple(-1 if c == "deployment_id" and getattr(row, c) == deployment else getattr(row, c)
                            for c in columns) for row in rows)
