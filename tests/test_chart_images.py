"""Charts are real PNGs of Slack's preview size, with stable colours and alt text that states the totals."""

from __future__ import annotations

import io
import threading
from datetime import date, timedelta
from decimal import Decimal

from matplotlib.image import imread

import charts
from billing_core import fmt
from billing_core.results import DailyCost
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
    assert colour_for("api-prod") == colour_for("api-prod")


def test_renders_concurrently_from_worker_threads() -> None:
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(charts.cost_trend_png(DAYS, currency="USD")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len({len(r) for r in results}) == 1
