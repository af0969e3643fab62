"""Periods in the account's time zone: month ends, DST changes, the partial current day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from billing_core.errors import InvalidInput
from billing_core.periods import (
    custom_period,
    day_fraction_elapsed,
    last_days,
    local_today,
    month_period,
    week_period,
    zone,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def test_a_dst_day_is_23_or_25_hours_long() -> None:
    spring = custom_period(date(2026, 3, 29), date(2026, 3, 29))
    autumn = custom_period(date(2026, 10, 25), date(2026, 10, 25))
    start, end = spring.utc_bounds(BERLIN)
    assert (end - start).total_seconds() == 23 * 3600
    start, end = autumn.utc_bounds(BERLIN)
    assert (end - start).total_seconds() == 25 * 3600


def test_month_bounds_follow_the_local_calendar() -> None:
    start, end = month_period(date(2026, 11, 30)).utc_bounds(NEW_YORK)
    assert start == datetime(2026, 11, 1, 4, tzinfo=UTC)  # EDT until Nov 1 02:00
    assert end == datetime(2026, 12, 1, 5, tzinfo=UTC)  # EST
    assert month_period(date(2028, 2, 10)).days == 29


@freeze_time("2026-12-01 03:30:00")
def test_today_depends_on_the_zone_at_a_month_end() -> None:
    now = datetime.now(UTC)
    assert local_today(now, NEW_YORK) == date(2026, 11, 30)
    assert local_today(now, BERLIN) == date(2026, 12, 1)
    assert month_period(local_today(now, NEW_YORK)).label == "November 2026"


@freeze_time("2026-03-29 12:00:00")
def test_day_fraction_uses_the_real_length_of_a_dst_day() -> None:
    # 14:00 CEST after a 23-hour night: 13 of 23 hours have passed.
    assert day_fraction_elapsed(datetime.now(UTC), BERLIN) == pytest.approx(13 / 23)


def test_named_periods() -> None:
    assert week_period(date(2026, 11, 22)).start == date(2026, 11, 16)
    assert last_days(date(2026, 11, 22), 30).start == date(2026, 10, 24)
    with pytest.raises(InvalidInput, match="before the start"):
        custom_period(date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(InvalidInput, match="between 1 and"):
        last_days(date(2026, 1, 1), 0)
    with pytest.raises(InvalidInput, match="Unknown time zone"):
        zone("Mars/Olympus")
