"""The figures: cost trend, usage stacked by group, forecast with band and budget, breakdown bars."""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot, no display: the Agg canvas only
from matplotlib.collections import PolyCollection
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from billing_core import fmt
from billing_core.periods import Granularity
from billing_core.results import BreakdownRow, DailyCost, Projection, UsageSummary

SIZE = (8.0, 4.0)
DPI = 100
#: Fixed colours per resource type, so "gpu" is the same purple in every chart a team sees.
RESOURCE_COLOURS = {
    "cpu": "#4C78A8", "memory": "#F58518", "storage": "#54A24B", "bandwidth": "#B279A2", "gpu": "#E45756",
    "llm_input_tokens": "#72B7B2", "llm_output_tokens": "#EECA3B",
}
PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D",
           "#BAB0AC", "#2F4B7C", "#A05195"]
OTHER_COLOUR = "#C7C7C7"
ACCENT, BAND, BUDGET = "#4C78A8", "#9ECAE9", "#D62728"


def colour_for(group: str) -> str:
    """A stable colour per group name: fixed for resource types, hashed for everything else."""
    if group in RESOURCE_COLOURS:
        return RESOURCE_COLOURS[group]
    if group == "other":
        return OTHER_COLOUR
    digest = hashlib.sha1(group.encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # zlib level 1: flat-coloured charts stay small, and level 6 (the default) spent ~13 ms per chart.
    FigureCanvasAgg(fig).print_png(buffer, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    return fig, ax


def _money_axis(ax: Axes, currency: str, locale: str | None) -> None:
    """Currency on the y axis, compact ($12K) so labels never crowd."""
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: _tick_label(round(v, 2), currency, locale)))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.set_ylim(bottom=0)


@lru_cache(maxsize=4096)
def _tick_label(value: float, currency: str, locale: str | None) -> str:
    """Tick labels repeat (a layout pass asks for each several times, charts share their round numbers)."""
    return fmt.money_compact(Decimal(str(value)), currency, locale)


def _dates_axis(ax: Axes) -> None:
    locator = AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _empty(title: str, message: str) -> bytes:
    fig, ax = _figure()
    ax.set_axis_off()
    ax.set_title(title, loc="left", fontsize=12)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, color="#666666", transform=ax.transAxes)
    return to_png(fig)


def cost_trend_png(days: Sequence[DailyCost], *, currency: str, title: str = "Daily cost, last 30 days",
                   budget_daily: Decimal | None = None, locale: str | None = None) -> bytes:
    if not days or not any(d.cost for d in days):
        return _empty(title, "No usage in this period")
    fig, ax = _figure()
    xs = [_x(d.day) for d in days]
    ys = [float(d.cost) for d in days]
    colours = [ACCENT if d.day.weekday() < 5 else BAND for d in days]  # weekends lighter
    _bars(ax, xs, ys, width=0.8, colours=colours)
    if budget_daily is not None:
        ax.axhline(float(budget_daily), color=BUDGET, linestyle="--", linewidth=1.2, label="daily budget")
        ax.legend(loc="upper left", frameon=False)
    ax.set_title(f"{title} — total {fmt.money(sum((d.cost for d in days), Decimal(0)), currency, locale)}",
                 loc="left", fontsize=12)
    _dates_axis(ax)
    _money_axis(ax, currency, locale)
    return to_png(fig)


def top_groups(summary: UsageSummary, max_groups: int) -> list[str]:
    """The largest `max_groups` groups by cost; the rest are drawn together as "other"."""
    return [r.key for r in summary.rows[:max_groups]]


def usage_stacked_png(summary: UsageSummary, *, locale: str | None = None, max_groups: int = 8) -> bytes:
    currency = summary.account.currency
    title = f"Cost by {summary.group_by}, {summary.period.label}"
    if not summary.series:
        return _empty(title, "No usage in this period")
    keep = top_groups(summary, max_groups)
    groups = keep + (["other"] if len(summary.rows) > max_groups else [])
    index = {b: i for i, b in enumerate(summary.buckets)}
    values: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(summary.buckets))
    for point in summary.series:
        i = index.get(point.bucket)
        if i is not None:
            values[point.group if point.group in keep else "other"][i] += float(point.cost)
    fig, ax = _figure()
    xs = _bucket_positions(summary.buckets)
    width = _bar_width(summary.granularity)
    bottom = [0.0] * len(xs)
    for group in groups:
        ys = values[group]
        _bars(ax, xs, ys, width=width, colours=[colour_for(group)], bottoms=bottom)
        bottom = [b + y for b, y in zip(bottom, ys, strict=True)]
    ax.set_title(f"{title} — total {fmt.money(summary.total_cost, currency, locale)}", loc="left", fontsize=12)
    _dates_axis(ax)
    _money_axis(ax, currency, locale)
    ax.legend(handles=[Patch(facecolor=colour_for(group), label=group[:28]) for group in groups], loc="upper left",
              bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    return to_png(fig)


def _bars(ax: Axes, xs: Sequence[float], heights: Sequence[float], *, width: float, colours: Sequence[str],
          bottoms: Sequence[float] | None = None) -> None:
    """Vertical bars as one collection: `ax.bar` makes (and lays out, and draws) one patch per bar, which
    was a third of a stacked chart's time; one colour for all bars, or one per bar."""
    half = width / 2
    base = bottoms or [0.0] * len(xs)
    shown = [i for i, h in enumerate(heights) if h]
    boxes = [((xs[i] - half, base[i]), (xs[i] - half, base[i] + heights[i]), (xs[i] + half, base[i] + heights[i]),
              (xs[i] + half, base[i])) for i in shown]
    faces = colours if len(colours) == 1 else [colours[i] for i in shown]
    ax.add_collection(PolyCollection(boxes, facecolors=faces, edgecolors="none", linewidths=0))
    ax.autoscale_view()


def _x(value: date | datetime) -> float:
    """A date as matplotlib's float day number (naive local wall time: what the reader's calendar shows)."""
    naive = value.replace(tzinfo=None) if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    return float(date2num(naive))


def _bucket_positions(buckets: Sequence[date | datetime]) -> list[float]:
    return [_x(b) for b in buckets]


def _bar_width(granularity: Granularity) -> float:
    return {Granularity.HOUR: 1 / 24 * 0.85, Granularity.DAY: 0.8, Granularity.WEEK: 5.5,
            Granularity.MONTH: 24.0}[granularity]


def forecast_png(projection: Projection, *, budget: Decimal | None = None, locale: str | None = None) -> bytes:
    """Cumulative actual spend, the forecast with its 80 % band, the budget line and today."""
    currency = projection.currency
    fig, ax = _figure()
    actual_x = [_x(d.day) for d in projection.actual_daily]
    running, actual_y = 0.0, []
    for d in projection.actual_daily:
        running += float(d.cost)
        actual_y.append(running)
    ax.plot(actual_x, actual_y, color=ACCENT, linewidth=2.2, label="actual")
    if projection.forecast_daily and actual_x:
        today = actual_x[-1]
        start = actual_y[-1]
        fx, mid = [today], [start]
        for f in projection.forecast_daily:
            if f.day == today:  # the rest of today lands on today's point
                mid[0] += float(f.expected)
            else:
                fx.append(_x(f.day))
                mid.append(mid[-1] + float(f.expected))
        # The band widens from today to the projection's own month-end interval.
        span_low = float(projection.projected_total - projection.low)
        span_high = float(projection.high - projection.projected_total)
        n = max(len(mid) - 1, 1)
        low = [m - span_low * i / n for i, m in enumerate(mid)]
        high = [m + span_high * i / n for i, m in enumerate(mid)]
        ax.plot([today, *fx], [start, *mid], color=ACCENT, linestyle="--", linewidth=1.6, label="forecast")
        ax.fill_between(fx, low, high, color=BAND, alpha=0.5, label="80% interval")
        ax.axvline(today, color="#999999", linewidth=0.8)
    if budget is not None:
        ax.axhline(float(budget), color=BUDGET, linestyle="-", linewidth=1.4, label="budget")
    ax.set_title(f"{projection.period.label}: projected {fmt.money(projection.projected_total, currency, locale)}",
                 loc="left", fontsize=12)
    _dates_axis(ax)
    _money_axis(ax, currency, locale)
    ax.legend(loc="upper left", frameon=False, fontsize=9)
    return to_png(fig)


def breakdown_png(rows: Sequence[BreakdownRow], *, currency: str, title: str, locale: str | None = None,
                  max_rows: int = 10) -> bytes:
    shown = list(rows[:max_rows])
    if not shown:
        return _empty(title, "No usage in this period")
    fig, ax = _figure()
    labels = [r.key[:30] for r in reversed(shown)]
    ax.barh(labels, [float(r.cost) for r in reversed(shown)], color=[colour_for(r.key) for r in reversed(shown)])
    ax.grid(axis="x", alpha=0.3)
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: fmt.money_compact(Decimal(str(round(v, 2))), currency,
                                                                                 locale)))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.set_title(title, loc="left", fontsize=12)
    return to_png(fig)


def alt_text_cost_trend(days: Sequence[DailyCost], *, currency: str, locale: str | None = None) -> str:
    if not days:
        return "Daily cost chart: no usage in this period."
    costs = [d.cost for d in days]
    peak = max(days, key=lambda d: d.cost)
    return (f"Bar chart of daily cost from {days[0].day} to {days[-1].day}: total "
            f"{fmt.money(sum(costs, Decimal(0)), currency, locale)}, lowest {fmt.money(min(costs), currency, locale)}, "
            f"highest {fmt.money(peak.cost, currency, locale)} on {peak.day}.")[:1000]


def alt_text_usage(summary: UsageSummary, *, locale: str | None = None) -> str:
    currency = summary.account.currency
    top = ", ".join(f"{r.key} {fmt.money(r.cost, currency, locale)}" for r in summary.rows[:5])
    return (f"Stacked bar chart of cost by {summary.group_by} for {summary.period.label}: total "
            f"{fmt.money(summary.total_cost, currency, locale)}" + (f"; largest: {top}." if top else "."))[:1000]


def alt_text_breakdown(rows: Sequence[BreakdownRow], *, currency: str, title: str, locale: str | None = None) -> str:
    if not rows:
        return f"{title}: no usage in this period."
    parts = ", ".join(f"{r.key} {fmt.money(r.cost, currency, locale)}" for r in rows[:5])
    return f"Bar chart, {title}: {parts}{' and more' if len(rows) > 5 else ''}."[:1000]


def alt_text_forecast(projection: Projection, *, budget: Decimal | None = None, locale: str | None = None) -> str:
    c = projection.currency
    text = (f"Line chart of cumulative spend in {projection.period.label}: "
            f"{fmt.money(projection.actual_to_date, c, locale)} so far, "
            f"projected {fmt.money(projection.projected_total, c, locale)} (80% interval "
            f"{fmt.money(projection.low, c, locale)} to {fmt.money(projection.high, c, locale)})")
    if budget is not None:
        text += f", budget {fmt.money(budget, c, locale)}"
    return (text + ".")[:1000]


def warm_up() -> None:
    """Import fonts and the Agg renderer once, so the first user-facing chart is not the slow one."""
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1])
    to_png(fig)
