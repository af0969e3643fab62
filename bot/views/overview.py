"""The overview message (`/billing`) and the App Home tab."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from billing_core import fmt
from billing_core.results import AccountOverview, BudgetStatus, InvoiceSummary, PlanMeterUsage, Projection
from billing_core.sync_status import ProviderOutage
from bot.ids import Action
from bot.views.common import (
    BADGES,
    Message,
    Reader,
    actions,
    bar,
    button,
    context,
    divider,
    escape,
    fields,
    header,
    message,
    pack,
    section,
    staleness_blocks,
)
from bot.views.common import Block as BlockDict


def projection_text(p: Projection, reader: Reader) -> str:
    change = f", {p.change_pct:+}% vs last month" if p.change_pct is not None else ""
    return (f"{reader.money(p.projected_total, p.currency)} "
            f"(80%: {reader.money(p.low, p.currency)} – {reader.money(p.high, p.currency)}; {p.trend.value}{change})")


def _balance_text(o: AccountOverview, reader: Reader) -> str:
    b = o.balance
    text = f"{reader.money(b.outstanding, b.currency)} in {b.open_count} open invoice{'s' if b.open_count != 1 else ''}"
    if b.overdue_count:
        text += f"\n:warning: *{reader.money(b.overdue, b.currency)} overdue* ({b.overdue_count})"
    return text


def plan_line(meter: PlanMeterUsage, reader: Reader, currency: str) -> str:
    used = fmt.quantity(meter.used, meter.unit, reader.locale)
    included = fmt.quantity(meter.included, meter.unit, reader.locale)
    line = (f"`{escape(meter.meter)}` {bar(meter.used_share)} {used} of {included} "
            f"({fmt.percent(meter.used_share, reader.locale)})")
    if meter.overage_cost:
        line += f" · overage {reader.money(meter.overage_cost, currency)}"
    return line


def budget_line(b: BudgetStatus, reader: Reader) -> str:
    warn = ":red_circle: " if b.used_pct >= 100 else ":large_orange_circle: " if b.crossed else ""
    line = (f"{warn}*{escape(b.name)}* ({escape(b.scope)}) {bar(b.used_pct / 100)} "
            f"{reader.money(b.spent, b.currency)} of {reader.money(b.amount, b.currency)} ({b.used_pct:.0f}%)")
    if b.projected is not None:
        line += f" · projected {reader.money(b.projected, b.currency)}"
    return line


def _invoice_line(inv: InvoiceSummary, reader: Reader) -> str:
    return (f"*{escape(inv.number)}* {BADGES[inv.status]} · {reader.money(inv.total, inv.currency)}"
            f" · due {reader.day(inv.due_date)}")


def _body(o: AccountOverview, reader: Reader) -> list[BlockDict]:
    cur = o.account.currency
    blocks: list[BlockDict] = [
        header(f"Billing — {o.account.name}"),
        fields(
            (f"Cost so far ({o.month.label})", reader.money(o.cost_to_date, cur)),
            ("Projected month end", projection_text(o.projection, reader)),
            ("Outstanding", _balance_text(o, reader)),
            ("Credit balance", reader.money(o.account.credit_balance, cur)),
        ),
    ]
    if o.plan:
        blocks.append(section(f"*Plan {escape(o.account.plan_name or '')}*\n"
                              + "\n".join(plan_line(m, reader, cur) for m in o.plan)))
    if o.budgets:
        blocks.append(section("*Budgets*\n" + "\n".join(budget_line(b, reader) for b in o.budgets)))
    if o.deployments:
        names = ", ".join(escape(d.name) for d in o.deployments[:20])
        plural = "s" if len(o.deployments) != 1 else ""
        blocks.append(context(f"{len(o.deployments)} active deployment{plural}: {names}"))
    blocks.append(divider())
    if o.recent_invoices:
        blocks.append(section("*Recent invoices*\n" + "\n".join(_invoice_line(i, reader) for i in o.recent_invoices)))
    return blocks


def _quick_actions(o: AccountOverview) -> BlockDict:
    buttons = []
    if o.oldest_unpaid and o.oldest_unpaid.payment_url:
        buttons.append(button(f"Pay now ({o.oldest_unpaid.number})", Action.PAY,
                              pack({"n": o.oldest_unpaid.number}), style="primary", url=o.oldest_unpaid.payment_url))
    latest = next((i for i in o.recent_invoices if i.status.value != "draft"), None)
    if latest:
        buttons.append(button(f"Download PDF ({latest.number})", Action.INVOICE_PDF,
                              pack({"n": latest.number, "a": o.account.id})))
    buttons += [button("Invoices", Action.OVERVIEW_INVOICES, pack({"a": o.account.id})),
                button("Usage", Action.OVERVIEW_USAGE, pack({"a": o.account.id}))]
    return actions(*buttons)


def overview_text(o: AccountOverview, reader: Reader) -> str:
    cur = o.account.currency
    text = (f"{o.account.name}: {reader.money(o.cost_to_date, cur)} so far in {o.month.label}, projected "
            f"{reader.money(o.projection.projected_total, cur)}; "
            f"outstanding {reader.money(o.balance.outstanding, cur)}")
    if o.balance.overdue_count:
        text += f" ({reader.money(o.balance.overdue, cur)} overdue)"
    return text


def overview_message(o: AccountOverview, reader: Reader, *, staleness: Sequence[ProviderOutage] = ()) -> Message:
    body = _body(o, reader)
    blocks = [*body[:1], *staleness_blocks(staleness, reader), *body[1:], _quick_actions(o),
              context(":chart_with_upwards_trend: The 30-day cost trend chart follows in the thread.")]
    return message(overview_text(o, reader), blocks)


def home_view(o: AccountOverview, reader: Reader, *, chart_file_id: str | None,
              staleness: Sequence[ProviderOutage] = ()) -> dict[str, Any]:
    """The App Home tab: the overview, with the trend chart as an uploaded image when there is one."""
    body = _body(o, reader)
    blocks = [*body[:1], *staleness_blocks(staleness, reader), *body[1:]]
    if chart_file_id:
        blocks.append({"type": "image", "slack_file": {"id": chart_file_id},
                       "alt_text": f"Daily cost for the last 30 days of {o.account.name}",
                       "title": {"type": "plain_text", "text": "Cost, last 30 days"}})
    blocks.append(_quick_actions(o))
    blocks.append(context("Type `/billing help` anywhere to ask more."))
    return {"type": "home", "blocks": blocks[:100]}


def home_without_access(reason: str, hint: str | None) -> dict[str, Any]:
    blocks = [header("Billing"), section(f":lock: {escape(reason)}")]
    if hint:
        blocks.append(context(escape(hint)))
    return {"type": "home", "blocks": blocks}
