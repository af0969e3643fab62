"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, insert, inspect, select, text

from billing_core.db.engine import Database
from billing_core.db.ingest import ingest_usage
from billing_core.db.migrate import alembic_config, current_revision, head_revision, upgrade
from billing_core.db.models import UsageDimensionSet, UsageRecord
from billing_core.db.schema import Base
from billing_core.imports import _has_usage, import_focus
from billing_core.records import UsageIn
from tests import factories

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """slack_sdk's OAuth stores create their own `slack_*` tables in the same database (bot/app.py)."""
    return not (type_ == "table" and reflected and compare_to is None and (name or "").startswith("slack_"))


def test_migrations_match_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False, "include_object": ours})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_one_head_after_the_merge(db: Database) -> None:
    assert current_revision(db) == head_revision(db) and "+" not in (head_revision(db) or "")


def test_stored_dimensions_move_to_dimension_sets_and_back(db: Database) -> None:
    """Migration 0009 keeps every record's dimensions: equal sets (in any key order) share one stored set."""
    _downgrade(db, "0008")
    try:
        with db.engine.begin() as connection:
            for i, dims in enumerate(['{"region": "eu", "model": "x"}', '{"model": "x", "region": "eu"}', "{}"]):
                connection.execute(text(
                    "INSERT INTO usage_records (account_id, meter, quantity, unit, cost, currency, period_start, "
                    "period_end, dimensions, source, external_id) "
                    "VALUES (1, 'm', 0, 'u', 0, 'USD', :t, :t, :d, 's', :e)"),
                    {"t": "2026-01-01 00:00:00.000000", "d": dims, "e": f"e{i}"})
        upgrade(db)
        with db.unit_of_work() as s:
            records = s.scalars(select(UsageRecord).order_by(UsageRecord.external_id)).unique().all()
            assert [r.dimensions for r in records] == [{"model": "x", "region": "eu"}] * 2 + [{}]
            assert records[0].dimension_set_id == records[1].dimension_set_id != 0 == records[2].dimension_set_id
            assert s.scalar(select(func.count()).select_from(UsageDimensionSet)) == 1
            account = factories.account(s)  # a record ingested now finds the migrated set: the same digest
            ingest_usage(s, [UsageIn(account_id=account.id, meter="m", quantity=Decimal(0), unit="u", cost=Decimal(1),
                                     currency="USD", period_start=T0, period_end=T0, source="s", external_id="new",
                                     dimensions={"region": "eu", "model": "x"})])
            assert s.scalar(select(func.count()).select_from(UsageDimensionSet)) == 1
        with db.unit_of_work() as s:
            s.execute(delete(UsageRecord).where(UsageRecord.external_id == "new"))
        _downgrade(db, "0008")
        with db.engine.connect() as connection:
            stored = connection.execute(text("SELECT CAST(dimensions AS TEXT) FROM usage_records "
                                             "ORDER BY external_id")).scalars()
            assert [json.loads(t) for t in stored] == [{"model": "x", "region": "eu"}] * 2 + [{}]
    finally:
        upgrade(db)


def test_stored_focus_ids_take_the_importers_new_shape_and_back(db: Database, tmp_path: Path) -> None:
    """Migration 0010 gives stored FOCUS rows the ids the importer makes now (hour of the charge start before the
    digest): a file imported before the upgrade re-imports unchanged after it, repeats (`:2`) included."""
    sample = Path(__file__).parent / "data" / "focus" / "saas_examples__spend_agreements__saas_spend_agreements_b2.csv"
    with sample.open(encoding="utf-8-sig", newline="") as f:
        header, *rows = [r for r in csv.reader(f) if r]
    ancient = list(rows[1])  # a charge in a year before 1000: its hour is still 10 digits, as SQL writes it
    ancient[header.index("ChargePeriodStart")], ancient[header.index("ChargePeriodEnd")] = (
        "0999-06-01T10:00:00Z", "0999-06-01T11:00:00Z")
    rows.append(ancient)
    path = tmp_path / "export.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows, rows[0]])  # the first row twice: its repeat is numbered
    with db.unit_of_work() as s:
        factories.account(s, "acme")
    [first] = import_focus(db, "acme", [path], now=T0)
    assert first.result.inserted == len(rows) + 1
    new_ids = _focus_ids(db)
    assert all(re.fullmatch(r"\d+:\d{10}:[0-9a-f]{32}(:2)?", i) for i in new_ids) and any(i.endswith(":2")
                                                                                        for i in new_ids)
    assert any(":0999060110:" in i for i in new_ids)
    try:
        _downgrade(db, "0009")
        old_ids = _focus_ids(db)
        assert all(re.fullmatch(r"\d+:[0-9a-f]{32}(:2)?", i) for i in old_ids)
        assert sorted(o.split(":", 1)[1] for o in old_ids) == sorted(n.split(":", 2)[2] for n in new_ids)
    finally:
        upgrade(db)
    assert _focus_ids(db) == new_ids
    [again] = import_focus(db, "acme", [path], now=T0)
    assert (again.result.inserted, again.result.updated, again.result.unchanged) == (0, 0, len(rows) + 1)


def _focus_ids(db: Database) -> list[str]:
    with db.engine.connect() as connection:
        return list(connection.execute(text("SELECT external_id FROM usage_records WHERE source = 'focus' "
                                            "ORDER BY id")).scalars())


def _downgrade(db: Database, revision: str) -> None:
    config = alembic_config(db)
    with db.engine.begin() as connection:  # the test database's own connection (PostgreSQL: its schema)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_usage_ids_compare_as_bytes_and_the_unused_index_goes_and_comes_back(db: Database) -> None:
    """Migration 0011: PostgreSQL compares usage ids byte by byte (an id range is then an index range, how an
    import asks whether an account has rows); the (account, start) index goes, and both come back on downgrade."""
    try:
        _downgrade(db, "0010")
        assert "ix_usage_records_account_start" in _usage_indexes(db)
        assert _id_collation(db) in ("default", None)
    finally:
        upgrade(db)
    assert "ix_usage_records_account_start" not in _usage_indexes(db)
    assert _id_collation(db) == ("C" if db.dialect == "postgresql" else None)
    with db.unit_of_work() as s:  # ids between '1:' and '1;' are account 1's ('10:…' sorts before '1:')
        s.execute(insert(UsageRecord), [_usage_row(10, "10:2026010100:ab"), _usage_row(1, "11:2026010100:cd")])
    assert not _has_usage(db, 1, "focus")
    with db.unit_of_work() as s:
        s.execute(insert(UsageRecord), [_usage_row(1, "1:2026010100:ef")])
    assert _has_usage(db, 1, "focus") and not _has_usage(db, 1, "stripe")


def _usage_indexes(db: Database) -> set[str]:
    with db.engine.connect() as connection:
        return {i["name"] or "" for i in inspect(connection).get_indexes("usage_records")}


def _id_collation(db: Database) -> str | None:
    if db.dialect != "postgresql":
        return None
    with db.engine.connect() as connection:
        return connection.execute(text(
            "SELECT collation_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'usage_records' AND column_name = 'external_id'")).scalar() or "default"


def _usage_row(account_id: int, external_id: str) -> dict[str, object]:
    return {"account_id": account_id, "meter": "m", "quantity": Decimal(1), "unit": "u", "cost": Decimal(1),
            "currency": "USD", "period_start": T0, "period_end": T0, "source": "focus", "external_id": external_id}
