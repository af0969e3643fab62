"""Charts are real PNGs of Slack's preview size, with stable colours and alt text that states the totals."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from matplotlib.image import imread

import charts
from billing_core import fmt
from billing_core.periods import Granularity, Period
from billing_core.results import AccountInfo, BreakdownRow, DailyCost, SeriesPoint, UsageSummary
from charts.render import colour_for

DAYS = [DailyCost(date(2026, 10, 24) + timedelta(days=i), Decimal(100 + 10 * (i % 7))) for i in range(30)]


def size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    height, width = imread(io.BytesIO(png)).shape[:2]
    return width, height


def test_cost_trend_is_a_preview_sized_png() -> None:
    assert size(charts.cost_trend_png(DAYS, currency="USD")) == (800, 400)


def test_empty_periods_render_a_message_not_an_error() -> None:
    empty = [DailyCost(d.day, Decimal(0)) for d in DAYS]
    assert size(charts.cost_trend_png(empty, currency="EUR")) == (800, 400)


def test_alt_text_states_the_total_in_the_readers_format() -> None:
    text = charts.alt_text_cost_trend(DAYS, currency="EUR", locale="de_DE")
    assert fmt.money(sum((d.cost for d in DAYS), Decimal(0)), "EUR", "de_DE") in text and len(text) <= 1000


def test_resource_colours_are_fixed_and_other_groups_stable() -> None:
    assert colour_for("gpu") == charts.render.RESOURCE_COLOURS["gpu"]
    # A group without a fixed colour gets one from its name: the same in every process (not Python's salted
    # hash), so a deployment keeps its colour from one chart to the next.
    script = "from charts.render import colour_for; print(colour_for('api-prod'))"
    elsewhere = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                               cwd=Path(__file__).parents[1])
    assert elsewhere.stdout.strip() == colour_for("api-prod")
    assert len({colour_for(name) for name in ("api-prod", "batch", "web", "etl")}) > 1


def test_breakdown_bars_are_preview_sized_with_the_largest_named_in_the_alt_text() -> None:
    rows = [BreakdownRow(key, Decimal(cost), Decimal(cost) / Decimal(600)) for key, cost in
            (("gpu", "310.50"), ("cpu", "189.25"), ("storage", "100.25"))]
    assert size(charts.breakdown_png(rows, currency="USD", title="INV-0003: cost by resource")) == (800, 400)
    text = charts.alt_text_breakdown(rows, currency="EUR", title="cost by resource", locale="de_DE")
    assert text.startswith("Bar chart, cost by resource: gpu 310,50") and "storage 100,25" in text


def test_renders_concurrently_from_worker_threads() -> None:
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(charts.cost_trend_png(DAYS, currency="USD")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len({len(r) for r in results}) == 1


def _pixels_of(png: bytes, colour: str) -> int:
    """How many pixels of the chart are exactly `colour` (bars are drawn without antialiased edges inside)."""
    rgb = imread(io.BytesIO(png))[:, :, :3]
    want = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    return int((abs(rgb - want).max(axis=2) < 1 / 255).sum())


def test_stacked_usage_bars_show_each_group_in_its_colour_in_proportion_to_its_cost() -> None:
    days = tuple(date(2026, 11, 1) + timedelta(days=i) for i in range(30))
    account = AccountInfo(1, "acme", "USD", "UTC", "active", Decimal(0), None, None)
    series = tuple(point for day in days for point in (SeriesPoint(day, "gpu", Decimal(300)),
                                                      SeriesPoint(day, "cpu", Decimal(100))))
    summary = UsageSummary(
        account=account, period=Period(days[0], days[-1] + timedelta(days=1), "November 2026"), group_by="resource",
        granularity=Granularity.DAY, total_cost=Decimal(12000),
        rows=(BreakdownRow("gpu", Decimal(9000), Decimal("0.75")), BreakdownRow("cpu", Decimal(3000), Decimal("0.25"))),
        by_resource=(), buckets=days, series=series)
    png = charts.usage_stacked_png(summary)
    gpu, cpu = _pixels_of(png, colour_for("gpu")), _pixels_of(png, colour_for("cpu"))
    assert cpu > 2_000  # every day's bar is drawn, not only the legend's swatch
    assert 2.6 < gpu / cpu < 3.4  # gpu costs three times cpu: its part of each stack is three times as tall
