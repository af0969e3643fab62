"""Usage and forecast messages."""

from __future__ import annotations

from collections.abc import Sequence

from billing_core.periods import Granularity
from billing_core.results import BudgetStatus, Projection, UsageSummary
from billing_core.sync_status import ProviderOutage
from bot.ids import Action
from bot.parsing import GRANULARITIES
from bot.views.common import Block as BlockDict
from bot.views.common import (
    Message,
    Reader,
    actions,
    button,
    context,
    escape,
    fields,
    header,
    message,
    pack,
    pct,
    section,
    staleness_blocks,
)
from bot.views.overview import budget_line, plan_line, projection_text

TOP_ROWS = 10
BUCKET_WORDS = {granularity: word for word, granularity in GRANULARITIES.items()}  # the words users type


def usage_message(summary: UsageSummary, reader: Reader, *, asked: Granularity,
                  staleness: Sequence[ProviderOutage] = ()) -> Message:
    cur, total = summary.account.currency, summary.total_cost
    group = "resource type" if summary.group_by == "resource" else summary.group_by
    blocks: list[BlockDict] = [
        header(f"Usage — {summary.period.label}"),
        context(f"{escape(summary.account.name)} · by {escape(group)} · {BUCKET_WORDS[summary.granularity]} buckets · "
                f"{reader.day(summary.period.start)} – {reader.day(summary.period.dates()[-1])}",
                *bucket_notes(summary, asked)),
        *staleness_blocks(staleness, reader),
        section(f"*Total* {reader.money(total, cur)}"),
    ]
    if summary.rows:
        lines = [f"• {escape(r.key)} — {reader.money(r.cost, cur)} ({pct(r.share * 100)})"
                 for r in summary.rows[:TOP_ROWS]]
        rest = summary.rows[TOP_ROWS:]
        if rest:
            lines.append(f"• {len(rest)} more — {reader.money(sum((r.cost for r in rest), total * 0), cur)}")
        blocks.append(section(f"*By {escape(group)}*\n" + "\n".join(lines)))
    else:
        blocks.append(section(":zero: No usage in this period."))
    if summary.group_by != "resource" and summary.by_resource:
        blocks.append(section("*By resource type*\n" + "\n".join(
            f"• `{escape(r.key)}` {reader.money(r.cost, cur)}" for r in summary.by_resource[:TOP_ROWS])))
    if summary.plan:
        blocks.append(section("*Plan limits*\n" + "\n".join(plan_line(m, reader, cur) for m in summary.plan)))
    elif summary.account.plan_name and not summary.period.is_month:
        blocks.append(context(f"Plan {escape(summary.account.plan_name)} includes quantities per calendar month: "
                              "see `/billing usage month` for what is used and any overage."))
    # The period as answered, not as typed: "last 30 days" clicked tomorrow must export these figures.
    report = pack({"a": summary.account.id, "s": summary.period.start.isoformat(), "e": summary.period.end.isoformat(),
                   "l": summary.period.label[:80], "g": summary.group_by[:64], "b": summary.granularity.value})
    blocks.append(actions(button("Export usage report", Action.USAGE_EXPORT, report)))
    blocks.append(context(":bar_chart: The chart follows in the thread."))
    top = ", ".join(f"{r.key} {reader.money(r.cost, cur)}" for r in summary.rows[:3])
    return message(f"Usage {summary.period.label}: {reader.money(total, cur)}" + (f" ({top})" if top else ""), blocks)


def bucket_notes(summary: UsageSummary, asked: Granularity) -> list[str]:
    """Why the buckets are not the ones asked for (typed, or the default for the period): dimensions are rolled
    up per day, so the core answers an hourly question by a dimension in daily buckets, and the reader should
    not have to guess why."""
    if asked is not Granularity.HOUR or summary.granularity is Granularity.HOUR:
        return []
    shown = BUCKET_WORDS[summary.granularity]
    return [f":information_source: hourly is not available by {escape(summary.group_by)} "
            f"(dimensions are kept per day): {shown} buckets shown"]


def _in_trouble(b: BudgetStatus) -> bool:
    return b.spent > b.amount or (b.projected is not None and b.projected > b.amount)


def _budget_verdict(b: BudgetStatus, reader: Reader) -> str:
    """A budget against the forecast: the account-wide ones are projected; a scoped one (a deployment, a model…)
    is shown with its spend so far, since only the whole account is forecast."""
    if b.projected is None:
        verdict = ":red_circle: already *over* budget" if b.spent > b.amount else "spend so far (only the whole " \
            "account is forecast)"
    elif b.projected > b.amount:
        verdict = ":red_circle: projected *over* budget by " + reader.money(b.projected - b.amount, b.currency)
    else:
        verdict = ":large_green_circle: within budget"
    return f"{budget_line(b, reader)}\n{verdict}"


def forecast_message(p: Projection, budgets: list[BudgetStatus], reader: Reader, *, account: str,
                     staleness: Sequence[ProviderOutage] = ()) -> Message:
    cur = p.currency
    blocks: list[BlockDict] = [
        header(f"Forecast — {p.period.label}"),
        *staleness_blocks(staleness, reader),
        fields(
            ("Month to date", f"{reader.money(p.actual_to_date, cur)} ({p.days_elapsed} of {p.period.days} days)"),
            ("Projected month end", projection_text(p, reader)),
            ("Last month", reader.money(p.previous_period_total, cur)),
            ("Next month estimate", reader.money(p.next_period_estimate, cur)),
        ),
    ]
    if budgets:
        # The ones in trouble first, so a cut list never hides them; the rest are counted, not dropped silently.
        ranked = sorted(budgets, key=lambda b: (not _in_trouble(b), -b.used_pct))
        lines = [_budget_verdict(b, reader) for b in ranked[:TOP_ROWS]]
        if len(ranked) > TOP_ROWS:
            lines.append(f"…and {len(ranked) - TOP_ROWS} more: `/billing budget` lists them all")
        blocks.append(section("*Budget*\n" + "\n".join(lines)))
    blocks.append(context(f"{escape(account)} · weekday-aware model with damped trend · 80% interval · "
                          "the chart (actual, forecast band, budget) follows in the thread"))
    return message(f"Forecast {p.period.label}: projected {reader.money(p.projected_total, cur)} "
                   f"({reader.money(p.low, cur)}–{reader.money(p.high, cur)})", blocks)
