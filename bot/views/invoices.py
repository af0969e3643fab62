"""Invoice list, invoice detail and the filter modal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from billing_core.invoicing import is_owed
from billing_core.results import (
    BreakdownRow,
    InvoiceDetail,
    InvoicePage,
    InvoiceQuery,
    InvoiceStatus,
    InvoiceSummary,
    UsageSummary,
)
from billing_core.sync_status import ProviderOutage
from bot.ids import Action, Block, Field, View
from bot.views.common import (
    BADGES,
    Message,
    Reader,
    actions,
    button,
    context,
    divider,
    escape,
    fields,
    header,
    message,
    pack,
    plain,
    section,
    staleness_blocks,
)
from bot.views.common import Block as BlockDict

STATUS_OPTIONS = [InvoiceStatus.OVERDUE, InvoiceStatus.PENDING, InvoiceStatus.PAID, InvoiceStatus.CANCELLED,
                  InvoiceStatus.DRAFT]


def query_state(query: InvoiceQuery) -> dict[str, Any]:
    """The filter, small enough to ride in a button value."""
    return {"s": [s.value for s in query.statuses], "f": query.issued_from, "t": query.issued_to,
            "q": query.search}


def describe(query: InvoiceQuery) -> str:
    parts = [" or ".join(s.value for s in query.statuses) if query.statuses else "all"]
    if query.issued_from:
        parts.append(f"from {query.issued_from}")
    if query.issued_to:
        parts.append(f"to {query.issued_to}")
    if query.search:
        parts.append(f"matching “{escape(query.search)}”")
    return " ".join(parts)


def _row(inv: InvoiceSummary, reader: Reader) -> BlockDict:
    due = f"due {reader.day(inv.due_date)}" if inv.status not in (InvoiceStatus.PAID, InvoiceStatus.CANCELLED) \
        else (f"paid {reader.day(inv.paid_at.date())}" if inv.paid_at else "")
    text = (f"*{escape(inv.number)}*  {BADGES[inv.status]}\n"
            f"{reader.money(inv.total, inv.currency)}"
            + (f" · {reader.money(inv.amount_due, inv.currency)} due" if inv.amount_due and is_owed(inv.status)
               else "")
            + f" · issued {reader.day(inv.issue_date)}" + (f" · {due}" if due else "")
            + (f" · {escape(inv.deployment)}" if inv.deployment else ""))
    return section(text, accessory=button("Open", Action.INVOICE_OPEN, pack({"n": inv.number})))


def invoices_message(page: InvoicePage, reader: Reader, *, account_id: int, page_number: int = 1,
                     staleness: Sequence[ProviderOutage] = ()) -> Message:
    what = describe(page.query)
    cur = page.currency
    stale = staleness_blocks(staleness, reader)
    if not page.items:
        text = f"No invoices match: {what}."
        return message(text, [section(f":mag: {text}"), *stale, context("Try `/billing invoices` for all of them."),
                              actions(button("Filter…", Action.INVOICES_FILTER,
                                             pack({"a": account_id, **query_state(page.query)})))])
    title = f"{page.total_matching} {what} invoice{'s' if page.total_matching != 1 else ''}"
    blocks: list[BlockDict] = [
        header(f"Invoices — {what}"[:150]),
        context(f"{page.total_matching} matching · total {reader.money(page.totals, cur)} · "
                f"due {reader.money(page.due, cur)} · page {page_number}"),
        *stale,
        divider(),
        *[_row(inv, reader) for inv in page.items],
        divider(),
    ]
    state = {"a": account_id, **query_state(page.query)}
    nav = []
    if page.prev_cursor:
        nav.append(button("◀ Previous", Action.INVOICES_PAGE, pack({**state, "c": page.prev_cursor,
                                                                     "p": page_number - 1})))
    if page.next_cursor:
        nav.append(button("Next ▶", Action.INVOICES_PAGE, pack({**state, "c": page.next_cursor,
                                                                 "p": page_number + 1})))
    nav += [button("Filter…", Action.INVOICES_FILTER, pack(state)),
            button("Export CSV", Action.INVOICES_EXPORT_CSV, pack(state))]
    blocks.append(actions(*nav))
    lines = "; ".join(f"{i.number} {i.status.value} {reader.money(i.total, cur)}" for i in page.items)
    return message(f"{title}: {lines}", blocks)


def invoice_message(detail: InvoiceDetail, reader: Reader, *, usage: UsageSummary | None = None,
                    staleness: Sequence[ProviderOutage] = ()) -> Message:
    """The invoice as a document; `usage` (the billing period's usage by resource) is shown beside its lines."""
    inv, cur = detail.summary, detail.summary.currency
    m = reader.money
    blocks: list[BlockDict] = [
        header(f"Invoice {inv.number}"),
        fields(("Status", BADGES[inv.status]), ("Account", escape(detail.account.name)),
               ("Billing period", f"{reader.day(inv.period_start)} – {reader.day(inv.period_end)}"),
               ("Issued", reader.day(inv.issue_date)),
               ("Due", reader.day(inv.due_date)),
               ("Paid", reader.day(inv.paid_at.astimezone(reader.tz).date()) if inv.paid_at else "—")),
        *staleness_blocks(staleness, reader),
    ]
    if inv.deployment or inv.provider or detail.lease_ref:
        blocks.append(context(" · ".join(escape(x) for x in (inv.deployment, inv.provider, detail.lease_ref) if x)))
    blocks.append(divider())
    lines = [f"• {escape(li.description)} — {li.quantity.normalize():,} {escape(li.unit)} × "
             f"{reader.unit_price(li.unit_price, cur)} = *{m(li.total, cur)}*" for li in detail.lines]
    for start in range(0, len(lines), 20):  # one section per 20 lines keeps each under 3000 characters
        blocks.append(section("\n".join(lines[start:start + 20]) or "_No line items._"))
    totals = [("Subtotal", m(detail.subtotal, cur))]
    for label, amount in (("Platform fee", detail.fee_platform), ("Provider fee", detail.fee_provider),
                          ("Network fee", detail.fee_network), ("Tax", detail.tax)):
        if amount:
            totals.append((label, m(amount, cur)))
    for label, amount in (("Discount", detail.discount), ("Credits applied", detail.credits_applied)):
        if amount:
            totals.append((label, "−" + m(amount, cur)))
    totals += [("Total", f"*{m(inv.total, cur)}*"), ("Amount due", f"*{m(inv.amount_due, cur)}*")]
    blocks.append(fields(*totals[:10]))
    if usage is not None and usage.by_resource:
        blocks.append(section(f"*Resource usage, {reader.day(usage.period.start)} – "
                              f"{reader.day(usage.period.dates()[-1])}*\n"
                              + "\n".join(_usage_line(r, reader, cur) for r in usage.by_resource[:10])))
    if detail.payments:
        blocks.append(divider())
        blocks.append(section("*Payments*\n" + "\n".join(_payment_line(p, reader) for p in detail.payments)))
    file_of = {"n": inv.number, "a": detail.account.id}  # the account: access checks it again on the click
    buttons = [button("Download PDF", Action.INVOICE_PDF, pack(file_of), style="primary"),
               button("Export CSV", Action.INVOICE_CSV, pack(file_of))]
    if inv.payment_url and inv.amount_due > 0 and inv.status is not InvoiceStatus.CANCELLED:
        buttons.append(button("Pay", Action.PAY, pack({"n": inv.number}), url=inv.payment_url))
    for p in detail.payments:
        if p.receipt_number and len(buttons) < 25:
            buttons.append(button(f"Receipt {p.receipt_number}", Action.RECEIPT_PDF,
                                  pack({**file_of, "p": p.id})))
    blocks.append(actions(*buttons))
    text = (f"Invoice {inv.number} ({inv.status.value}): total {m(inv.total, cur)}, "
            f"amount due {m(inv.amount_due, cur)}, due {reader.day(inv.due_date)}")
    return message(text, blocks)


def _usage_line(row: BreakdownRow, reader: Reader, currency: str) -> str:
    used = f"{row.quantity.normalize():,} {escape(row.unit)} · " if row.quantity is not None and row.unit else ""
    return f"• `{escape(row.key)}` {used}{reader.money(row.cost, currency)}"


def _payment_line(p: Any, reader: Reader) -> str:
    when = reader.day(p.paid_at.astimezone(reader.tz).date()) if p.paid_at else "—"
    line = f"• {when} · {p.method.value} · {p.status.value} · {reader.money(p.amount, p.currency)}"
    if p.receipt_number:
        line += f" · {p.receipt_number}"
    if p.tx_hash:
        short = f"{p.tx_hash[:10]}…{p.tx_hash[-6:]}"
        line += f" · <{p.explorer_url}|{short}>" if p.explorer_url else f" · `{short}`"
    return line


def filter_modal(query: InvoiceQuery, *, metadata: str) -> dict[str, Any]:
    """Status select, two date pickers and a search box; errors come back on the field."""
    status_options = [{"text": plain(BADGES[s]), "value": s.value} for s in STATUS_OPTIONS]
    status: dict[str, Any] = {"type": "multi_static_select", "action_id": Field.VALUE,
                              "placeholder": plain("Any status"), "options": status_options}
    chosen = [o for o in status_options if o["value"] in {s.value for s in query.statuses}]
    if chosen:
        status["initial_options"] = chosen
    return {
        "type": "modal", "callback_id": View.INVOICE_FILTER, "private_metadata": metadata,
        "title": plain("Filter invoices"), "submit": plain("Show"), "close": plain("Cancel"),
        "blocks": [
            {"type": "input", "block_id": Block.FILTER_STATUS, "optional": True, "label": plain("Status"),
             "element": status},
            _date_input(Block.FILTER_FROM, "Issued from", query.issued_from),
            _date_input(Block.FILTER_TO, "Issued to", query.issued_to),
            {"type": "input", "block_id": Block.FILTER_SEARCH, "optional": True, "label": plain("Invoice number"),
             "element": {"type": "plain_text_input", "action_id": Field.VALUE, "max_length": 40,
                         "placeholder": plain("INV-0042 or part of it"),
                         **({"initial_value": query.search} if query.search else {})}},
        ],
    }


def _date_input(block_id: str, label: str, initial: date | None) -> BlockDict:
    element: BlockDict = {"type": "datepicker", "action_id": Field.VALUE}
    if initial:
        element["initial_date"] = initial.isoformat()
    return {"type": "input", "block_id": block_id, "optional": True, "label": plain(label), "element": element}
