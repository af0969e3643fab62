"""Invoice invariants applied on every flush, so no code path can store an inconsistent invoice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from billing_core import invoicing
from billing_core.db.models import Invoice, Payment
from billing_core.results import InvoiceStatus, PaymentStatus


def apply(invoice: Invoice) -> None:
    """Derive total, amount paid, amount due and the settled status from the invoice's parts."""
    invoice.total = invoicing.invoice_total(
        subtotal=invoice.subtotal,
        fee_platform=invoice.fee_platform,
        fee_provider=invoice.fee_provider,
        fee_network=invoice.fee_network,
        tax=invoice.tax,
        discount=invoice.discount,
        credits_applied=invoice.credits_applied,
    )
    invoice.amount_paid = invoicing.amount_paid((PaymentStatus(p.status), p.amount) for p in invoice.payments)
    invoice.amount_due = invoicing.amount_due(invoice.total, invoice.amount_paid, number=invoice.number)
    invoice.status = invoicing.settled_status(InvoiceStatus(invoice.status), invoice.amount_due).value
    if invoice.status == InvoiceStatus.PAID and invoice.paid_at is None:
        confirmed = [p.paid_at for p in invoice.payments if p.status == PaymentStatus.CONFIRMED and p.paid_at]
        invoice.paid_at = max(confirmed) if confirmed else None


@event.listens_for(Session, "before_flush")
def _settle_invoices(session: Session, _context: Any, _instances: Any) -> None:
    touched: set[Invoice] = set()
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Invoice):
            touched.add(obj)
        elif isinstance(obj, Payment) and obj.invoice is not None:
            touched.add(obj.invoice)
    for invoice in touched:
        apply(invoice)
