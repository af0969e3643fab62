"""Stripe-shaped JSON import: exact amounts from minor units (JPY too), statuses mapped, payments
attached to their invoices, and a second import that changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from billing_core.db.engine import Database
from billing_core.db.models import AuditEntry, Invoice, Payment
from billing_core.imports import import_stripe
from billing_core.results import InvoiceStatus, PaymentQuery, PaymentStatus
from billing_core.service import Billing
from billing_core.sources.stripe import parse_file
from tests import factories

DATA = Path(__file__).parent / "data" / "stripe"
NOW = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)
ALL = [DATA / n for n in ("invoices_list.json", "charges.json", "payment_intent.json", "events.json")]


def _accounts(db: Database) -> None:
    with db.unit_of_work() as s:
        factories.account(s, "acme", currency="USD", tz="America/New_York")
        factories.account(s, "tokyo", currency="JPY", tz="Asia/Tokyo")


def _counts(db: Database) -> tuple[int, int]:
    with db.unit_of_work() as s:
        return (s.scalar(select(func.count()).select_from(Invoice)) or 0,
                s.scalar(select(func.count()).select_from(Payment)) or 0)


def test_invoice_amounts_are_exact_from_minor_units(db: Database) -> None:
    _accounts(db)
    [report] = import_stripe(db, "acme", [DATA / "invoices_list.json"], now=NOW)
    assert report.invoices.inserted == 5 and report.rejections == []
    paid = Billing(db).invoice("acme", "ACME-0001", now=NOW)
    # subtotal $100.00, 10 % promotion, 8 % sales tax on the rest, $5.00 of customer balance used
    assert (paid.subtotal, paid.discount, paid.tax, paid.credits_applied) == (
        Decimal("100.00"), Decimal("10.00"), Decimal("7.20"), Decimal("5.00"))
    assert (paid.summary.total, paid.summary.amount_paid, paid.summary.amount_due) == (
        Decimal("92.20"), Decimal("92.20"), Decimal(0))
    assert [(li.description, li.quantity, li.unit_price, li.total) for li in paid.lines] == [
        ("4 × GPU node (Oct 2025)", Decimal(4), Decimal("20.00"), Decimal("80.00")),
        ("1,000 GB egress × $0.02", Decimal(1000), Decimal("0.02"), Decimal("20.00")),
    ]
    assert paid.summary.payment_url == "https://invoice.stripe.com/i/acct_1Helios/test_in_1PaidA"
    assert (paid.summary.period_start.isoformat(), paid.summary.period_end.isoformat()) == ("2025-10-01",
                                                                                             "2025-10-31")


def test_statuses_are_mapped(db: Database) -> None:
    _accounts(db)
    import_stripe(db, "acme", [DATA / "invoices_list.json"], now=NOW)
    billing = Billing(db)
    with db.unit_of_work() as s:
        stored = {i.external_id: (i.number, i.status) for i in s.scalars(select(Invoice))}
    assert stored == {
        "in_1PaidA": ("ACME-0001", "paid"),
        "in_1OpenB": ("ACME-0002", "pending"),
        "in_1DraftC": ("INV-0001", "draft"),  # a draft has no Stripe number yet: the ledger numbers it
        "in_1VoidD": ("ACME-0003", "cancelled"),
        "in_1UncollE": ("ACME-0004", "pending"),  # still owed; overdue is derived from the due date
    }
    uncollectible = billing.invoice("acme", "ACME-0004", now=NOW)
    assert uncollectible.summary.status is InvoiceStatus.OVERDUE
    assert uncollectible.tax == 0 and uncollectible.summary.total == Decimal("42.00")  # VAT inside the price
    assert billing.invoice("acme", "ACME-0002", now=NOW).summary.status is InvoiceStatus.PENDING  # due 15 Dec


def test_yen_has_no_decimals(db: Database) -> None:
    _accounts(db)
    [report] = import_stripe(db, "tokyo", [DATA / "jpy.json"], now=NOW)
    assert report.rejections == []
    detail = Billing(db).invoice("tokyo", "TOKYO-0001", now=NOW)
    assert (detail.subtotal, detail.tax, detail.summary.total) == (Decimal(12345), Decimal(1234), Decimal(13579))
    assert detail.summary.status is InvoiceStatus.PAID and detail.summary.amount_due == 0
    assert [li.unit_price for li in detail.lines] == [Decimal(2500), Decimal(1)]
    [payment] = detail.payments
    assert (payment.amount, payment.currency, payment.status) == (Decimal(13579), "JPY", PaymentStatus.CONFIRMED)


def test_a_payment_settles_its_invoice(db: Database) -> None:
    _accounts(db)
    import_stripe(db, "acme", [DATA / "invoices_list.json"], now=NOW)
    billing = Billing(db)
    before = billing.invoice("acme", "ACME-0002", now=NOW).summary
    assert (before.status, before.amount_due) == (InvoiceStatus.PENDING, Decimal("250.00"))
    [report] = import_stripe(db, "acme", [DATA / "charges.json"], now=NOW)
    assert report.rejections == []
    after = billing.invoice("acme", "ACME-0002", now=NOW)
    assert (after.summary.status, after.summary.amount_due, after.summary.amount_paid) == (
        InvoiceStatus.PAID, Decimal(0), Decimal("250.00"))
    assert sorted((p.status, p.amount, p.method.value) for p in after.payments) == [
        (PaymentStatus.CONFIRMED, Decimal("250.00"), "bank"), (PaymentStatus.FAILED, Decimal("250.00"), "card")]
    payments = {p.amount: p for p in billing.payments("acme", PaymentQuery(limit=50)).items}
    assert payments[Decimal("30.00")].invoice_number is None  # $50 charge, $20 refunded, pays no invoice
    # The charge of the paid invoice is the payment the invoice already recorded (same payment intent).
    assert len(billing.invoice("acme", "ACME-0001", now=NOW).payments) == 1
    # The payment intent of ACME-0002 is the same payment as its charge: nothing new.
    invoices, count = _counts(db)
    import_stripe(db, "acme", [DATA / "payment_intent.json"], now=NOW)
    assert _counts(db) == (invoices, count)


def test_webhook_events_apply_the_newest_snapshot(db: Database) -> None:
    _accounts(db)
    [report] = import_stripe(db, "acme", [DATA / "events.json"], now=NOW)
    assert report.skipped == 1 and report.rejections == []  # the customer.updated event
    billing = Billing(db)
    paid = billing.invoice("acme", "ACME-0005", now=NOW)  # paid event first in the file, but newest
    assert (paid.summary.status, paid.summary.total, paid.summary.amount_due) == (
        InvoiceStatus.PAID, Decimal("15.00"), Decimal(0))
    with db.unit_of_work() as s:
        deleted = s.scalar(select(Invoice.status).where(Invoice.external_id == "in_1DelG"))
    assert deleted == "cancelled"


def test_reimporting_everything_changes_nothing(db: Database) -> None:
    _accounts(db)
    first = import_stripe(db, "acme", ALL, now=NOW)
    counts = _counts(db)
    again = import_stripe(db, "acme", ALL, now=NOW)
    assert _counts(db) == counts == (7, 5)
    assert sum(r.invoices.inserted + r.invoices.updated + r.payments.inserted + r.payments.updated
               for r in again) == 0
    assert sum(r.invoices.unchanged for r in again) == sum(r.invoices.inserted for r in first) == 7
    with db.unit_of_work() as s:
        logged = s.scalars(select(AuditEntry.after).where(AuditEntry.action == "import.stripe")).all()
    assert len(logged) == 2 * len(ALL) and {"file", "invoices", "payments", "rejected"} <= set(logged[0] or {})


def test_bad_objects_are_rejected_and_the_others_land(db: Database, tmp_path: Path) -> None:
    _accounts(db)
    [report] = import_stripe(db, "acme", [DATA / "mixed_bad.json"], now=NOW)
    assert sorted(map(str, report.rejections)) == [
        "in_1Euro: in EUR, but the account bills in USD",
        "in_1Weird: unknown invoice status 'pending_review'",
        "pi_3Orphan: No invoice in_1NotImported from stripe for payment pi_3Orphan.",
    ]
    assert report.invoices.inserted == 1
    assert Billing(db).invoice("acme", "ACME-0008", now=NOW).summary.amount_due == Decimal("12.34")
    broken = tmp_path / "broken.json"
    broken.write_text('{"object": "invoice", ')
    [unreadable] = import_stripe(db, "acme", [broken], now=NOW)
    assert [r.object_id for r in unreadable.rejections] == ["(file)"]


def test_parsing_reads_every_shape() -> None:
    tz = ZoneInfo("UTC")
    single = json.loads((DATA / "payment_intent.json").read_text())
    shapes = [single, [single], {"object": "list", "data": [single], "has_more": False},
              {"object": "event", "type": "payment_intent.succeeded", "created": 1, "data": {"object": single}}]
    for shape in shapes:
        batch = parse_file(json.dumps(shape).encode(), account_id=1, currency="USD", tz=tz)
        assert [(p.external_id, p.amount, p.invoice_external) for p in batch.payments] == [
            ("pi_3OpenB", Decimal("250.00"), ("stripe", "in_1OpenB"))]


def test_the_command_line_imports_reports_and_exits_by_outcome(db: Database, db_url: str) -> None:
    _accounts(db)
    env = {**os.environ, "DATABASE_URL": db_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "billing_core.cli", "import", "stripe", *args],
                              capture_output=True, text=True, env=env, timeout=120, check=False)

    good = run(str(DATA / "invoices_list.json"), "--account", "acme")
    assert good.returncode == 0, good.stderr
    assert "invoices_list.json: invoices 5 inserted, 0 updated, 0 unchanged; payments 1 inserted" in good.stdout
    bad = run(str(DATA / "mixed_bad.json"), "--account", "acme")
    assert bad.returncode == 1
    assert "rejected in_1Weird: unknown invoice status 'pending_review'" in bad.stdout
    missing = run("nowhere.json", "--account", "acme")
    assert missing.returncode == 2 and "no such file: nowhere.json" in missing.stderr
    assert _counts(db)[0] == 6  # five from the list, the one good invoice of the mixed file
