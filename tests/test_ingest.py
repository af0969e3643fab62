"""Idempotent ingestion: same batch twice changes nothing; late and corrected usage moves the rollups."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from billing_core.db.engine import Database
from billing_core.db.ingest import ingest_usage, upsert_invoice, upsert_payment
from billing_core.db.models import Invoice, UsageDaily, UsageDailyDimension, UsageHourly, UsageRecord
from billing_core.records import PaymentIn
from billing_core.results import IngestResult, InvoiceStatus, PaymentMethod, PaymentStatus
from tests import factories as f

H = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _rollup_totals(db: Database) -> tuple[Decimal, Decimal, Decimal, int]:
    with db.unit_of_work() as s:
        hourly = s.scalar(select(func.sum(UsageHourly.cost)))
        daily = s.scalar(select(func.sum(UsageDaily.cost)))
        raw = s.scalar(select(func.sum(UsageRecord.cost)))
        rows = s.scalar(select(func.count()).select_from(UsageRecord))
    return Decimal(hourly or 0), Decimal(daily or 0), Decimal(raw or 0), int(rows or 0)


def test_reingesting_the_same_batch_changes_nothing(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s)
        batch = [f.usage(acct, H + timedelta(hours=i), "1.250000", dims={"model": "gpt-4o"}) for i in range(30)]
        first = ingest_usage(s, batch)
    before = _rollup_totals(db)
    with db.unit_of_work() as s:
        second = ingest_usage(s, batch)
    assert first == IngestResult(inserted=30)
    assert second == IngestResult(unchanged=30)
    assert _rollup_totals(db) == before == (Decimal("37.5"), Decimal("37.5"), Decimal("37.5"), 30)


def test_late_usage_for_a_past_day_updates_that_day(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s, tz="Europe/Berlin")
        ingest_usage(s, [f.usage(acct, H, "10", ext="u1"), f.usage(acct, H + timedelta(days=1), "5", ext="u2")])
    with db.unit_of_work() as s:
        result = ingest_usage(s, [f.usage(acct, H, "12.5", ext="u1")])  # the provider restated yesterday
    assert result == IngestResult(updated=1)
    with db.unit_of_work() as s:
        days = dict(s.execute(select(UsageDaily.day, UsageDaily.cost)).all())
    assert days == {date(2026, 11, 20): Decimal("12.5"), date(2026, 11, 21): Decimal("5")}
    assert _rollup_totals(db)[:3] == (Decimal("17.5"),) * 3


def test_a_corrected_record_moves_between_buckets_and_leaves_no_empty_bucket(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s)
        ingest_usage(s, [f.usage(acct, H, "3", ext="u1", dims={"model": "a"})])
    with db.unit_of_work() as s:
        ingest_usage(s, [f.usage(acct, H + timedelta(hours=30), "3", ext="u1", dims={"model": "b"})])
    with db.unit_of_work() as s:
        hours = s.execute(select(UsageHourly.hour, UsageHourly.cost, UsageHourly.records)).all()
        dims = s.execute(select(UsageDailyDimension.dim_value, UsageDailyDimension.day)).all()
    assert [(h.hour, h.cost, h.records) for h in hours] == [(H + timedelta(hours=30), Decimal(3), 1)]
    assert [(d.dim_value, d.day) for d in dims] == [("b", date(2026, 11, 21))]


def test_daily_rollup_uses_the_accounts_local_day(db: Database) -> None:
    late_evening_ny = datetime(2026, 11, 21, 3, 30, tzinfo=UTC)  # 22:30 on Nov 20 in New York
    with db.unit_of_work() as s:
        acct = f.account(s, tz="America/New_York")
        ingest_usage(s, [f.usage(acct, late_evening_ny, "7")])
    with db.unit_of_work() as s:
        assert s.scalar(select(UsageDaily.day)) == date(2026, 11, 20)


def test_a_bad_record_rolls_back_the_whole_batch(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s)
    bad = f.usage(acct, H, "1", ext="bad")
    bad = type(bad)(**{**bad.__dict__, "period_end": H - timedelta(hours=1)})
    try:
        with db.unit_of_work() as s:
            ingest_usage(s, [f.usage(acct, H, "1", ext="good"), bad])
    except Exception as exc:
        assert "ends before it starts" in str(exc)
    assert _rollup_totals(db)[3] == 0


def test_invoice_and_payment_upserts_are_idempotent_and_settle_the_invoice(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s)
        data = f.invoice(acct, "ext-1", total_lines=("60.00", "40.00"), tax="8.00")
        inv, outcome = upsert_invoice(s, data, now=f.T0)
        assert (outcome, inv.number, inv.total, inv.amount_due) == ("inserted", "INV-0001", Decimal("108.00"),
                                                                      Decimal("108.00"))
        assert upsert_invoice(s, data, now=f.T0)[1] == "unchanged"
        pay = PaymentIn(account_id=acct.id, source="test", external_id="p1", amount=Decimal("108.00"),
                        currency="USD", status=PaymentStatus.CONFIRMED, method=PaymentMethod.CARD, paid_at=f.T0,
                        invoice_number="INV-0001")
        upsert_payment(s, pay, now=f.T0)
        assert upsert_payment(s, pay, now=f.T0)[1] == "unchanged"
    with db.unit_of_work() as s:
        stored = s.scalar(select(Invoice))
        assert stored is not None
        assert (stored.status, stored.amount_paid, stored.amount_due) == ("paid", Decimal("108.00"), Decimal(0))
        assert stored.paid_at == f.T0
        assert stored.payments[0].receipt_number == "RCT-00001"


def test_invoice_numbers_are_never_reused(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s)
        first, _ = upsert_invoice(s, f.invoice(acct, "a"), now=f.T0)
        s.delete(first)
    with db.unit_of_work() as s:
        second, _ = upsert_invoice(s, f.invoice(acct, "b"), now=f.T0)
        assert second.number == "INV-0002"
        assert second.status == InvoiceStatus.PENDING


def test_usage_naming_another_accounts_deployment_or_an_unknown_provider_is_refused(db: Database) -> None:
    with db.unit_of_work() as s:
        mine, theirs = f.account(s, "mine"), f.account(s, "theirs")
        their_dep = f.deployment(s, theirs, "their-api")
    import pytest

    from billing_core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="not one of account"), db.unit_of_work() as s:
        ingest_usage(s, [f.usage(mine, H, "1", deployment_id=their_dep.id)])
    with pytest.raises(InvalidInput, match="no provider"), db.unit_of_work() as s:
        ingest_usage(s, [f.usage(mine, H, "1", provider_id=999)])
    assert _rollup_totals(db)[3] == 0


def test_attributes_are_kept_on_the_record_never_rolled_up_and_a_changed_one_updates_it(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s)
        batch = [replace(f.usage(acct, H, "2", ext=f"u{i}", dims={"model": "gpt-4o"}),
                         attributes={"list_cost": f"{i}.50", "resource_id": f"arn:r-{i}"}) for i in range(3)]
        first = ingest_usage(s, batch)
    with db.unit_of_work() as s:
        again = ingest_usage(s, batch)
        restated = ingest_usage(s, [replace(batch[0], attributes={"list_cost": "9.99", "resource_id": "arn:r-0"})])
    assert (first, again, restated) == (IngestResult(inserted=3), IngestResult(unchanged=3), IngestResult(updated=1))
    with db.unit_of_work() as s:
        stored = {r.external_id: r.attributes for r in s.scalars(select(UsageRecord))}
        dim_keys = set(s.scalars(select(UsageDailyDimension.dim_key)))
    assert stored["u0"] == {"list_cost": "9.99", "resource_id": "arn:r-0"} and stored["u2"]["list_cost"] == "2.50"
    assert dim_keys == {"model"}
    assert _rollup_totals(db) == (Decimal(6), Decimal(6), Decimal(6), 3)  # the update moved no cost


def test_a_record_restated_in_a_later_chunk_of_the_same_stream_updates_what_the_first_chunk_wrote(db: Database) -> None:
    """Chunks are written by a pipeline (the next one is validated while the database takes this one): a
    later chunk must still see the rows an earlier chunk of the same call inserted."""
    with db.unit_of_work() as s:
        acct = f.account(s)
        stream = [f.usage(acct, H + timedelta(hours=i), "1", ext=f"u{i}") for i in range(7)]
        stream += [f.usage(acct, H, "4", ext="u0"), f.usage(acct, H + timedelta(hours=1), "1", ext="u1")]
        result = ingest_usage(s, stream, batch_size=3)
    assert result == IngestResult(inserted=7, updated=1, unchanged=1)
    with db.unit_of_work() as s:
        hours = dict(s.execute(select(UsageHourly.hour, UsageHourly.cost)).all())
    assert [cost for hour, cost in hours.items() if hour.replace(tzinfo=UTC) == H] == [Decimal(4)]
    assert _rollup_totals(db) == (Decimal(10), Decimal(10), Decimal(10), 7)


def test_a_bad_record_in_a_later_chunk_rolls_back_the_chunks_already_written(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s)
    good = [f.usage(acct, H + timedelta(hours=i), "1", ext=f"u{i}") for i in range(8)]
    bad = replace(f.usage(acct, H, "1", ext="bad"), period_end=H - timedelta(hours=1))
    try:
        with db.unit_of_work() as s:
            ingest_usage(s, [*good, bad, *good], batch_size=3)
    except Exception as exc:
        assert "ends before it starts" in str(exc)
    else:
        raise AssertionError("the bad record was accepted")
    assert _rollup_totals(db) == (Decimal(0), Decimal(0), Decimal(0), 0)


@pytest.mark.postgres
def test_a_correction_moves_the_right_hour_whatever_the_database_session_s_time_zone(pg_schema: str) -> None:
    """PostgreSQL hands stored instants back in the session's time zone; a half-hour zone must not shift the
    hour the old figures are taken out of (a server configured for India, say)."""
    from tests.conftest import PG_URL, _truncate

    india = Database(PG_URL, connect_args={"options": f"-csearch_path={pg_schema} -ctimezone=Asia/Kolkata"})
    try:
        _truncate(india)
        with india.unit_of_work() as s:
            acct = f.account(s)
            ingest_usage(s, [f.usage(acct, H, "3", ext="u1")])
        with india.unit_of_work() as s:
            assert ingest_usage(s, [f.usage(acct, H, "5", ext="u1")]) == IngestResult(updated=1)
        with india.unit_of_work() as s:
            hours = [(h.astimezone(UTC), c) for h, c in s.execute(select(UsageHourly.hour, UsageHourly.cost))]
        assert hours == [(H, Decimal("5"))]
    finally:
        india.dispose()
