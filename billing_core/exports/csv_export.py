"""CSV exports: UTF-8 without a byte-order mark, a header row, ISO 8601 dates, exact decimal strings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from billing_core.money import plain
from billing_core.results import InvoiceDetail, InvoiceSummary, PaymentInfo, UsageSummary


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def invoices_csv(items: Sequence[InvoiceSummary]) -> bytes:
    return _csv(
        ["number", "status", "issue_date", "due_date", "period_start", "period_end", "currency", "total",
         "amount_paid", "amount_due", "deployment", "provider", "paid_at", "payment_url"],
        ([i.number, i.status.value, i.issue_date.isoformat(), i.due_date.isoformat(), i.period_start.isoformat(),
          i.period_end.isoformat(), i.currency, plain(i.total, i.currency), plain(i.amount_paid, i.currency),
          plain(i.amount_due, i.currency), i.deployment or "", i.provider or "",
          i.paid_at.isoformat() if i.paid_at else "", i.payment_url or ""] for i in items),
    )


def invoice_lines_csv(detail: InvoiceDetail) -> bytes:
    """Line items, then the invoice's summary rows, so the file alone reproduces the total to the cent."""
    cur = detail.summary.currency
    rows: list[list[str]] = [
        ["line", li.description, li.resource_type or "", f"{li.quantity:f}", li.unit, f"{li.unit_price:f}",
         plain(li.total, cur), cur] for li in detail.lines
    ]
    for label, amount in (("subtotal", detail.subtotal), ("fee_platform", detail.fee_platform),
                          ("fee_provider", detail.fee_provider), ("fee_network", detail.fee_network),
                          ("tax", detail.tax), ("discount", -detail.discount),
                          ("credits_applied", -detail.credits_applied), ("total", detail.summary.total),
                          ("amount_paid", detail.summary.amount_paid), ("amount_due", detail.summary.amount_due)):
        rows.append(["summary", label, "", "", "", "", plain(amount, cur), cur])
    return _csv(["kind", "description", "resource_type", "quantity", "unit", "unit_price", "amount", "currency"],
                rows)


def usage_csv(summary: UsageSummary) -> bytes:
    cur = summary.account.currency
    rows = [[str(p.bucket.isoformat()), summary.group_by, p.group, f"{p.cost:f}", cur] for p in summary.series]
    return _csv(["bucket", "group_by", "group", "cost", "currency"], rows)


def payments_csv(items: Sequence[PaymentInfo]) -> bytes:
    return _csv(
        ["paid_at", "invoice", "method", "status", "amount", "currency", "receipt", "tx_hash", "explorer_url"],
        ([p.paid_at.isoformat() if p.paid_at else "", p.invoice_number or "", p.method.value, p.status.value,
          plain(p.amount, p.currency), p.currency, p.receipt_number or "", p.tx_hash or "", p.explorer_url or ""]
         for p in items),
    )
