"""The month-end projection beats the naive run-rate, handles weekly seasonality and the partial day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from billing_core.db.engine import Database
from billing_core.demo import seed_demo
from billing_core.projections import backtest, project_month
from billing_core.results import DailyCost, Trend
from billing_core.service import Billing


def weekly_series(start: date, days: int, weekday: str = "100", weekend: str = "40") -> list[DailyCost]:
    return [DailyCost(start + timedelta(days=i),
                      Decimal(weekend if (start + timedelta(days=i)).weekday() >= 5 else weekday))
            for i in range(days)]


def test_weekly_seasonality_is_projected_exactly_for_a_clean_series() -> None:
    history = weekly_series(date(2026, 9, 1), 80)  # up to Nov 19
    today = date(2026, 11, 20)
    proj = project_month([*history, DailyCost(today, Decimal(0))], today=today, day_fraction=0.0, currency="USD",
                         previous_total=Decimal(2000))
    # November 2026: 21 weekdays × 100 + 9 weekend days × 40 = 2460
    assert abs(proj.projected_total - Decimal(2460)) < Decimal("0.5")
    assert proj.low <= proj.projected_total <= proj.high
    assert proj.trend is Trend.INCREASING and proj.change_pct == Decimal("23.0")


def test_the_partial_current_day_counts_only_its_unelapsed_part() -> None:
    history = weekly_series(date(2026, 9, 1), 80)
    today = date(2026, 11, 20)  # a Friday
    half_day = [*history, DailyCost(today, Decimal(50))]
    proj = project_month(half_day, today=today, day_fraction=0.5, currency="USD")
    assert proj.forecast_daily[0].day == today and proj.forecast_daily[0].expected == Decimal(50)
    assert abs(proj.projected_total - Decimal(2460)) < Decimal("0.5")


def test_a_single_spike_does_not_inflate_the_forecast() -> None:
    history = weekly_series(date(2026, 9, 1), 80)
    history[-3] = DailyCost(history[-3].day, Decimal(2000))
    today = date(2026, 11, 20)
    proj = project_month([*history, DailyCost(today, Decimal(0))], today=today, day_fraction=0.0, currency="USD")
    rest = sum(f.expected for f in proj.forecast_daily)
    assert abs(rest - Decimal(7 * 100 + 4 * 40)) < Decimal(30)  # Nov 20–30: 7 weekdays, 4 weekend days


def test_backtest_beats_the_naive_run_rate_on_the_demo_data(db: Database) -> None:
    now = datetime(2026, 11, 22, 15, tzinfo=UTC)
    with db.unit_of_work() as s:
        seed_demo(s, now=now)
    billing = Billing(db)
    for account in ("acme-corp", "nordlicht-gmbh", "orbit-dao"):
        rows = billing.backtest(account, now=now)
        assert [r.checkpoint_day for r in rows] == [7, 14, 21]
        assert all(r.mape_model < r.mape_naive for r in rows), (account, rows)  # at every checkpoint


def test_backtest_on_a_pure_pattern_has_no_error() -> None:
    rows = backtest(weekly_series(date(2026, 5, 1), 150))
    assert rows and all(r.mape_model < 0.1 for r in rows)
    assert all(r.mape_naive > 0.1 for r in rows)  # the run-rate is fooled by the weekday mix of the first days
