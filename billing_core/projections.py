"""Projections: month-end spend = actual to date + a weekday-aware forecast of the rest, 80 % interval.

Model: cost(d) ≈ (level + slope × days ahead) × weekday_factor(weekday(d)). Weekday factors come from
the last 8 weeks; the level is a spike-robust, exponentially weighted mean of the de-seasonalised recent
days and the slope a damped Theil–Sen trend of the same days. The current
day is partial: its expected remainder is the unelapsed fraction of its forecast. The interval comes
from the model's own relative residuals. `backtest` compares it with the naive run-rate
(actual_to_date / days_elapsed × days_in_month) at day 7, 14 and 21 of past months.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from billing_core.periods import Period, add_months, month_period
from billing_core.results import DailyCost, ForecastDay, Projection, Trend

Z80 = 1.2816  # two-sided 80 % interval of a normal distribution
SEASON_DAYS = 56
LEVEL_DAYS = 28
LEVEL_ALPHA = 0.25
TREND_DAMPING = 0.7  # a trend seen over four weeks is not assumed to hold fully for the next four
TREND_THRESHOLD_PCT = 5.0
CENT = Decimal("0.000001")


@dataclass(frozen=True)
class DailyModel:
    level: float  # de-seasonalised cost per day as of `last_day`
    factors: tuple[float, ...]  # Monday..Sunday, mean 1
    rel_sigma: float  # relative residual standard deviation of one day
    history_days: int
    slope: float = 0.0  # de-seasonalised change per day (robust, damped)
    last_day: date | None = None

    def expected(self, day: date) -> float:
        ahead = (day - self.last_day).days if self.last_day else 0
        return max((self.level + self.slope * ahead) * self.factors[day.weekday()], 0.0)


def fit(history: Sequence[DailyCost]) -> DailyModel:
    """Fit the weekday-seasonal level model on complete days (oldest first)."""
    values = [(d.day, float(d.cost)) for d in history]
    if not values:
        return DailyModel(0.0, (1.0,) * 7, 0.5, 0)
    factors = _weekday_factors(values[-SEASON_DAYS:])
    deseason = [(day, v / factors[day.weekday()]) for day, v in values[-LEVEL_DAYS:]]
    clipped = _clip_spikes([v for _, v in deseason])
    slope = TREND_DAMPING * _theil_sen(clipped)
    # The EWMA lags a trending series by about (1 - alpha) / alpha days; move it forward by that much.
    level = _ewma(clipped, LEVEL_ALPHA) + slope * (1 - LEVEL_ALPHA) / LEVEL_ALPHA
    rel_sigma = _relative_sigma(values[-LEVEL_DAYS:], factors, clipped)
    return DailyModel(level, factors, rel_sigma, len(values), slope, values[-1][0])


def _theil_sen(values: Sequence[float]) -> float:
    """Median of pairwise slopes: a trend that one spike cannot bend."""
    if len(values) < 14:
        return 0.0
    slopes = [(values[j] - values[i]) / (j - i) for i in range(len(values)) for j in range(i + 1, len(values))]
    return statistics.median(slopes)


def _weekday_factors(values: Sequence[tuple[date, float]]) -> tuple[float, ...]:
    overall = statistics.fmean(v for _, v in values) if values else 0.0
    if overall <= 0 or len(values) < 14:
        return (1.0,) * 7
    by_weekday: dict[int, list[float]] = {w: [] for w in range(7)}
    for day, v in values:
        by_weekday[day.weekday()].append(v)
    raw = []
    for w in range(7):
        samples = by_weekday[w]
        # Median per weekday: one spike on a Tuesday must not make every Tuesday expensive.
        factor = statistics.median(samples) / overall if samples else 1.0
        weight = 1.0 if len(samples) >= 2 else 0.5  # one sample is too little to trust fully
        raw.append(weight * factor + (1 - weight))
    mean = statistics.fmean(raw)
    return tuple(f / mean for f in raw) if mean > 0 else (1.0,) * 7


def _clip_spikes(values: Sequence[float]) -> list[float]:
    if len(values) < 5:
        return list(values)
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values) or median * 0.02
    limit = 4 * 1.4826 * mad
    return [min(max(v, median - limit), median + limit) for v in values]


def _ewma(values: Sequence[float], alpha: float) -> float:
    if not values:
        return 0.0
    level = statistics.fmean(values[: min(7, len(values))])
    for v in values:
        level = alpha * v + (1 - alpha) * level
    return level


def _relative_sigma(values: Sequence[tuple[date, float]], factors: Sequence[float], clipped: Sequence[float]) -> float:
    if len(values) < 7:
        return 0.35  # little history: say so with a wide band
    level = statistics.fmean(clipped)
    if level <= 0:
        return 0.35
    errors = [v / (level * factors[day.weekday()]) - 1 for day, v in values]
    return min(max(statistics.pstdev(errors), 0.02), 1.0)


def project_month(
    daily: Sequence[DailyCost],
    *,
    today: date,
    day_fraction: float,
    currency: str,
    previous_total: Decimal | None = None,
    period: Period | None = None,
) -> Projection:
    """Project the spend of `period` (default: the month of `today`) from zero-filled local daily costs.

    `daily` must contain every day up to and including `today` (today partial, `day_fraction` of it
    elapsed). `previous_total` is the previous period's actual spend, for trend and % change.
    """
    period = period or month_period(today)
    by_day: Mapping[date, Decimal] = {d.day: d.cost for d in daily}
    history = [d for d in daily if d.day < today]
    model = fit(history)
    actual_days = tuple(DailyCost(day, by_day.get(day, Decimal(0))) for day in period.dates() if day <= today)
    actual = sum((d.cost for d in actual_days), Decimal(0))
    forecast = _forecast_days(model, period, today, day_fraction)
    expected_rest = sum(f.expected for f in forecast)
    spread = _interval_halfwidth(model, forecast)
    projected = actual + expected_rest
    prev = previous_total if previous_total is not None else Decimal(0)
    change = ((projected - prev) / prev * 100).quantize(Decimal("0.1")) if prev > 0 else None
    next_period = _next_period(period)
    next_estimate = _money(sum(model.expected(day) for day in next_period.dates()))
    return Projection(
        period=period,
        currency=currency,
        actual_to_date=actual,
        projected_total=projected,
        low=max(actual, projected - spread),
        high=projected + spread,
        days_elapsed=len(actual_days),
        next_period_estimate=next_estimate,
        previous_period_total=prev,
        change_pct=change,
        trend=_trend(change),
        actual_daily=actual_days,
        forecast_daily=tuple(forecast),
    )


def _forecast_days(model: DailyModel, period: Period, today: date, day_fraction: float) -> list[ForecastDay]:
    days: list[ForecastDay] = []
    for day in period.dates():
        if day < today:
            continue
        share = (1 - min(max(day_fraction, 0.0), 1.0)) if day == today else 1.0
        expected = model.expected(day) * share
        half = Z80 * model.rel_sigma * expected
        days.append(ForecastDay(day, _money(expected), _money(max(expected - half, 0)), _money(expected + half)))
    return days


def _interval_halfwidth(model: DailyModel, forecast: Sequence[ForecastDay]) -> Decimal:
    """80 % half-width of the remaining sum: independent daily noise plus a shared level error."""
    expected = [float(f.expected) for f in forecast]
    if not expected:
        return Decimal(0)
    daily_var = sum((model.rel_sigma * e) ** 2 for e in expected)
    level_sigma = model.rel_sigma / math.sqrt(max(min(model.history_days, LEVEL_DAYS), 1) / 2)
    level_var = (level_sigma * sum(expected)) ** 2
    return _money(Z80 * math.sqrt(daily_var + level_var))


def _next_period(period: Period) -> Period:
    if period.start.day == 1 and period.end == add_months(period.start, 1):
        return month_period(period.end)
    return Period(period.end, period.end + timedelta(days=period.days), f"next {period.days} days")


def _trend(change_pct: Decimal | None) -> Trend:
    if change_pct is None or abs(change_pct) < Decimal(str(TREND_THRESHOLD_PCT)):
        return Trend.STABLE
    return Trend.INCREASING if change_pct > 0 else Trend.DECREASING


def _money(value: float) -> Decimal:
    return Decimal(str(round(value, 6))).quantize(CENT)


# --- backtest --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacktestRow:
    checkpoint_day: int
    months: int
    mape_model: float  # percent
    mape_naive: float  # percent


def backtest(daily: Sequence[DailyCost], *, checkpoints: Sequence[int] = (7, 14, 21)) -> list[BacktestRow]:
    """MAPE of the month-end projection made at the end of day k of each complete month in `daily`."""
    by_day = {d.day: d.cost for d in daily}
    if not by_day:
        return []
    first, last = min(by_day), max(by_day)
    months = _complete_months(first, last)
    rows = []
    for k in checkpoints:
        model_errors, naive_errors = [], []
        for month in months:
            truth = sum((by_day.get(day, Decimal(0)) for day in month.dates()), Decimal(0))
            if truth <= 0:
                continue
            cut = month.start + timedelta(days=k)  # "today" = day k+1 at midnight: days 1..k are complete
            history = [DailyCost(day, by_day.get(day, Decimal(0))) for day in _days(first, cut)]
            proj = project_month(history, today=cut, day_fraction=0.0, currency="XXX", period=month)
            to_date = sum((by_day.get(day, Decimal(0)) for day in _days(month.start, cut)), Decimal(0))
            naive = to_date / k * month.days
            model_errors.append(abs(float(proj.projected_total - truth) / float(truth)))
            naive_errors.append(abs(float(naive - truth) / float(truth)))
        if model_errors:
            rows.append(BacktestRow(k, len(model_errors), 100 * statistics.fmean(model_errors),
                                    100 * statistics.fmean(naive_errors)))
    return rows


def _complete_months(first: date, last: date) -> list[Period]:
    months = []
    start = first if first.day == 1 else add_months(first.replace(day=1), 1)
    # Need at least two weeks of history before the month for the weekday factors to mean anything.
    while add_months(start, 1) <= last + timedelta(days=1):
        if (start - first).days >= 14:
            months.append(month_period(start))
        start = add_months(start, 1)
    return months


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]
