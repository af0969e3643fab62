"""Property tests: every invoice the ledger stores satisfies the money invariants, whatever happens to it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from billing_core.db.engine import Database
from billing_core.db.ingest import upsert_invoice, upsert_payment
from billing_core.db.models import Invoice
from billing_core.errors import Conflict
from billing_core.invoicing import invoice_total
from billing_core.records import PaymentIn
from billing_core.results import InvoiceStatus, PaymentMethod, PaymentStatus
from tests import factories as f

cents = st.integers(min_value=0, max_value=10_000_000).map(lambda c: Decimal(c) / 100)
statuses = st.sampled_from([PaymentStatus.CONFIRMED, PaymentStatus.PENDING, PaymentStatus.FAILED])


@st.composite
def invoices(draw: st.DrawFn) -> dict[str, Decimal]:
    parts = {k: draw(cents) for k in ("subtotal", "fee_platform", "fee_provider", "fee_network", "tax")}
    gross = sum(parts.values(), Decimal(0))
    parts["discount"] = draw(st.integers(0, int(gross * 100)).map(lambda c: Decimal(c) / 100))
    left = int((gross - parts["discount"]) * 100)
    parts["credits_applied"] = draw(st.integers(0, left).map(lambda c: Decimal(c) / 100))
    return parts


def check(inv: Invoice) -> None:
    confirmed = sum((p.amount for p in inv.payments if p.status == "confirmed"), Decimal(0))
    assert inv.total == invoice_total(subtotal=inv.subtotal, fee_platform=inv.fee_platform,
                                      fee_provider=inv.fee_provider, fee_network=inv.fee_network, tax=inv.tax,
                                      discount=inv.discount, credits_applied=inv.credits_applied)
    assert inv.amount_paid == confirmed
    assert inv.amount_due == inv.total - confirmed
    if inv.status in ("pending", "overdue", "paid"):
        assert (inv.amount_due == 0) == (inv.status == "paid")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=invoices(), payments=st.lists(st.tuples(st.integers(1, 100), statuses), max_size=5))
def test_invoices_satisfy_the_invariants_after_any_payments(db: Database, parts: dict[str, Decimal],
                                                             payments: list[tuple[int, PaymentStatus]]) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s, name=f"acct-{s.execute(text('select count(*) from accounts')).scalar_one()}")
        data = f.invoice(acct, f"inv-{acct.id}", total_lines=(str(parts.pop("subtotal")),), **parts)
        inv, _ = upsert_invoice(s, data, now=f.T0)
        check(inv)
        for i, (percent, status) in enumerate(payments):
            amount = (inv.total * percent / 100).quantize(Decimal("0.01"))
            if amount <= 0:
                continue
            pay = PaymentIn(account_id=acct.id, source="test", external_id=f"{acct.id}-{i}", amount=amount,
                            currency="USD", status=status, method=PaymentMethod.CARD, paid_at=f.T0,
                            invoice_number=inv.number)
            try:
                with s.begin_nested():
                    upsert_payment(s, pay, now=f.T0)
            except Conflict:
                pass  # more than is due is refused, and nothing of it is kept
            s.refresh(inv)
            check(inv)


def test_the_database_refuses_an_inconsistent_invoice_even_behind_the_orms_back(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s)
        upsert_invoice(s, f.invoice(acct, "x"), now=f.T0)
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(text("UPDATE invoices SET total = total + 1"))
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(text("UPDATE invoices SET status = 'paid'"))


def test_overpayment_is_a_conflict(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s)
        upsert_invoice(s, f.invoice(acct, "x"), now=f.T0)
    with pytest.raises(Conflict, match="exceed"), db.unit_of_work() as s:
        upsert_payment(s, PaymentIn(account_id=acct.id, source="t", external_id="p", amount=Decimal("100.01"),
                                    currency="USD", status=PaymentStatus.CONFIRMED, method=PaymentMethod.BANK,
                                    paid_at=f.T0, invoice_number="INV-0001"), now=f.T0)
    with db.unit_of_work() as s:
        assert s.execute(text("select count(*) from payments")).scalar_one() == 0
        assert s.execute(text("select status from invoices")).scalar_one() == InvoiceStatus.PENDING
