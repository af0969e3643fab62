"""Invoice arithmetic and status rules — the invariants every stored invoice satisfies.

- total = subtotal + fees (platform, provider, network) + tax − discount − credits applied
- amount paid = the sum of confirmed payments; amount due = total − amount paid, never negative
- an issued invoice (pending/overdue/paid) with nothing due is paid, and a paid one has nothing due.
The database repeats these as CHECK constraints; `billing_core.db.invariants` applies them on flush.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from billing_core.errors import Conflict
from billing_core.results import InvoiceStatus, PaymentStatus

OPEN_STATUSES = frozenset({InvoiceStatus.PENDING, InvoiceStatus.OVERDUE})
#: Sent to the customer: a draft is still being built, a cancelled invoice was withdrawn.
ISSUED_STATUSES = frozenset({InvoiceStatus.PENDING, InvoiceStatus.OVERDUE, InvoiceStatus.PAID})


def is_owed(status: InvoiceStatus) -> bool:
    """Whether an invoice's amount due is owed now: issued and not settled (drafts and voids owe nothing)."""
    return status in OPEN_STATUSES


def invoice_total(
    *,
    subtotal: Decimal,
    fee_platform: Decimal,
    fee_provider: Decimal,
    fee_network: Decimal,
    tax: Decimal,
    discount: Decimal,
    credits_applied: Decimal,
) -> Decimal:
    return subtotal + fee_platform + fee_provider + fee_network + tax - discount - credits_applied


def amount_paid(payments: Iterable[tuple[PaymentStatus | str, Decimal]]) -> Decimal:
    """What confirmed payments add up to; pending and failed payments do not count."""
    return sum((amount for status, amount in payments if status == PaymentStatus.CONFIRMED), Decimal(0))


def amount_due(total: Decimal, paid: Decimal, *, number: str) -> Decimal:
    due = total - paid
    if due < 0:
        raise Conflict(f"Payments on {number} ({paid}) exceed its total ({total}).")
    return due


def settled_status(status: InvoiceStatus, due: Decimal) -> InvoiceStatus:
    """The stored status after a change: issued + nothing due → paid; paid + something due → pending."""
    if status in OPEN_STATUSES and due == 0:
        return InvoiceStatus.PAID
    if status is InvoiceStatus.PAID and due > 0:
        return InvoiceStatus.PENDING
    return status


def effective_status(status: InvoiceStatus, due_date: date, today: date) -> InvoiceStatus:
    """What the user sees: an open invoice past its due date (in the account's time zone) is overdue."""
    if status in OPEN_STATUSES:
        return InvoiceStatus.OVERDUE if due_date < today else InvoiceStatus.PENDING
    return status
