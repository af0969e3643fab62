"""The `/billing reconcile` answer: provider invoices vs metered usage, one line per discrepancy."""

from __future__ import annotations

from collections.abc import Sequence

from billing_core.reconciliation import Discrepancy, Kind, Reconciliation
from billing_core.sync_status import ProviderOutage
from bot.views.common import Block as BlockDict
from bot.views.common import Message, Reader, context, escape, fields, header, message, section, staleness_blocks

TOP_LINES = 15
KIND_LABELS = {
    Kind.MISSING_USAGE: ":mag: billed, but no usage metered",
    Kind.UNBILLED_USAGE: ":inbox_tray: metered, but not (fully) billed",
    Kind.EXTRA_CHARGE: ":small_red_triangle: billed for more units than metered",
    Kind.PRICE_DIFFERENCE: ":heavy_dollar_sign: same units, different price",
}


def tolerance_text(r: Reconciliation) -> str:
    return f"{r.tolerance * 100:f}".rstrip("0").rstrip(".") + " %"


def reconcile_message(r: Reconciliation, reader: Reader, *, staleness: Sequence[ProviderOutage] = ()) -> Message:
    cur = r.currency
    blocks: list[BlockDict] = [
        header(f"Reconciliation — {r.period.label}"),
        context(f"{escape(r.account)} · {len(r.invoices)} invoice{'s' if len(r.invoices) != 1 else ''} · "
                f"{r.lines_checked} line{'s' if r.lines_checked != 1 else ''} compared · "
                f"tolerance {tolerance_text(r)}"),
        *staleness_blocks(staleness, reader),
        fields(("Billed (invoice lines)", reader.money(r.billed_total, cur)),
               ("Metered usage", reader.money(r.metered_total, cur))),
    ]
    if r.clean and not r.invoices:
        text = f"No provider invoices for {r.period.label} yet, and no usage to bill." if not r.metered_total \
            else f"No invoices for {r.period.label} yet: all metered usage is still unbilled."
        blocks.append(section(f":information_source: {text}"))
    elif r.clean:
        blocks.append(section(f":white_check_mark: Every line agrees within {tolerance_text(r)}."))
    else:
        lines = [_line(d, reader, cur) for d in r.discrepancies[:TOP_LINES]]
        more = len(r.discrepancies) - TOP_LINES
        blocks.append(section(f"*{len(r.discrepancies)} discrepanc{'y' if len(r.discrepancies) == 1 else 'ies'}*\n"
                              + "\n".join(lines)))
        if more > 0:
            blocks.append(context(f"…and {more} more in the CSV."))
        blocks.append(context(":page_facing_up: The CSV with every discrepancy follows in the thread."))
    verdict = "all lines agree" if r.clean else f"{len(r.discrepancies)} discrepancies"
    return message(f"Reconciliation {r.period.label} for {r.account}: billed {reader.money(r.billed_total, cur)}, "
                   f"metered {reader.money(r.metered_total, cur)}; {verdict}", blocks)


def _line(d: Discrepancy, reader: Reader, cur: str) -> str:
    pct = f" ({d.difference_pct:+}%)" if d.difference_pct is not None else ""
    return (f"{KIND_LABELS[d.kind]} — *{escape(d.provider)}* `{escape(d.meter)}`: billed "
            f"{reader.money(d.billed.amount, cur)} vs metered {reader.money(d.metered.amount, cur)}{pct}")
