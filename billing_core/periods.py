"""Periods and time zones: every billing question is asked in the account's IANA time zone.

A `Period` is a half-open range of local dates `[start, end)`. `utc_bounds` turns it into the UTC
instants that bound it, honouring DST (a local day can be 23 or 25 hours long).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing_core.errors import InvalidInput

#: The longest range a usage question may cover; beyond it charts and tables stop being readable.
MAX_PERIOD_DAYS = 3 * 366


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class Period:
    """Local dates `[start, end)` with a human label ("November 2026", "last 30 days")."""

    start: date
    end: date
    label: str

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise InvalidInput(
                f"The period ends ({self.end}) before it starts ({self.start}).",
                hint="e.g. 2026-10-01..2026-10-31",
            )
        if (self.end - self.start).days > MAX_PERIOD_DAYS:
            raise InvalidInput("That period is longer than 3 years.", hint="e.g. last 90 days")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    def utc_bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return local_midnight_utc(self.start, tz), local_midnight_utc(self.end, tz)

    @property
    def is_month(self) -> bool:
        """One whole calendar month: what plans include quantities for and invoices bill."""
        return self.start.day == 1 and self.end == add_months(self.start, 1)

    def previous(self) -> Period:
        """The period of the same kind just before this one (a month before a month)."""
        if self.is_month:
            prev = add_months(self.start, -1)
            return month_period(prev)
        return Period(self.start - timedelta(days=self.days), self.start, f"previous {self.days} days")


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or `InvalidInput` naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Unknown time zone {name!r}.", hint="e.g. Europe/Berlin") from None


def local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which local `day` begins in `tz`."""
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def local_today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def day_fraction_elapsed(now: datetime, tz: ZoneInfo) -> float:
    """How much of the local day has passed at `now`, 0..1, on the real length of that day (DST)."""
    today = local_today(now, tz)
    start = local_midnight_utc(today, tz)
    end = local_midnight_utc(today + timedelta(days=1), tz)
    return (now - start) / (end - start)


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year = day.year + month0 // 12
    month = month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_period(day: date) -> Period:
    start = month_start(day)
    return Period(start, add_months(start, 1), start.strftime("%B %Y"))


def week_period(day: date) -> Period:
    start = day - timedelta(days=day.weekday())
    return Period(start, start + timedelta(days=7), f"week of {start.isoformat()}")


def year_period(day: date) -> Period:
    return Period(date(day.year, 1, 1), date(day.year + 1, 1, 1), str(day.year))


def today_period(day: date) -> Period:
    return Period(day, day + timedelta(days=1), "today")


def last_days(day: date, n: int) -> Period:
    """The `n` days ending with `day` (inclusive)."""
    if not 1 <= n <= MAX_PERIOD_DAYS:
        raise InvalidInput(f"'last {n} days' must be between 1 and {MAX_PERIOD_DAYS} days.", hint="e.g. last 30 days")
    return Period(day - timedelta(days=n - 1), day + timedelta(days=1), f"last {n} days")


def custom_period(start: date, end_inclusive: date) -> Period:
    if end_inclusive < start:
        raise InvalidInput(
            f"The end date {end_inclusive} is before the start date {start}.", hint="e.g. 2026-10-01..2026-10-31"
        )
    return Period(start, end_inclusive + timedelta(days=1), f"{start.isoformat()} – {end_inclusive.isoformat()}")


def bucket_start(day: date, granularity: Granularity) -> date:
    """The first local date of the bucket that holds `day` (weeks start on Monday)."""
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    if granularity is Granularity.MONTH:
        return day.replace(day=1)
    return day


def default_granularity(period: Period) -> Granularity:
    """The granularity a chart of `period` reads best at."""
    if period.days <= 2:
        return Granularity.HOUR
    if period.days <= 92:
        return Granularity.DAY
    if period.days <= 366:
        return Granularity.WEEK
    return Granularity.MONTH
