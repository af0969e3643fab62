"""The payments list."""

from __future__ import annotations

from collections.abc import Sequence

from billing_core.results import PaymentPage
from billing_core.sync_status import ProviderOutage
from bot.ids import Action
from bot.views.common import (
    Message,
    Reader,
    button,
    context,
    divider,
    header,
    message,
    pack,
    section,
    staleness_blocks,
)
from bot.views.invoices import _payment_line


def payments_message(page: PaymentPage, reader: Reader, *, period_label: str, account_id: int,
                     staleness: Sequence[ProviderOutage] = ()) -> Message:
    stale = staleness_blocks(staleness, reader)
    if not page.items:
        return message(f"No payments {period_label}.", [section(f":mag: No payments {period_label}."), *stale])
    confirmed = reader.money(page.confirmed_total, page.currency)
    blocks = [header(f"Payments — {period_label}"),
              context(f"{page.total_matching} payments · confirmed {confirmed}"),
              *stale,
              divider()]
    for p in page.items:
        line = _payment_line(p, reader) + (f" · {p.invoice_number}" if p.invoice_number else "")
        accessory = (button("Receipt", Action.RECEIPT_PDF, pack({"n": p.invoice_number, "p": p.id, "a": account_id}))
                     if p.receipt_number and p.invoice_number else None)
        blocks.append(section(line.removeprefix("• "), accessory=accessory))
    if page.next_cursor:
        blocks.append(context(f"Showing the latest {len(page.items)}; narrow the range to see older ones."))
    text = f"{page.total_matching} payments {period_label}, confirmed {confirmed}"
    return message(text, blocks)
