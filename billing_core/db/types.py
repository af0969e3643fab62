"""Column types that keep money exact on every database.

`Micros` stores a `Decimal` as a BIGINT count of 1e-6 units: SQLite's `NUMERIC` is a float in
disguise, an integer is exact everywhere, and integer sums in SQL stay exact too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from billing_core.money import from_micros, to_micros


class Micros(TypeDecorator[Decimal]):
    """A `Decimal` with up to 6 decimals, stored as an exact integer of micro-units."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else to_micros(Decimal(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_micros(int(value))


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC instant on every database (SQLite would hand back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is required")
        value = value.astimezone(UTC)
        # SQLite keeps text: store naive UTC so that string order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def driver_value(value: Any, sqlite: bool) -> Any:
    """A value as the column types above would hand it to the driver, for statements sent to the driver
    directly (bulk ingestion, replay claims): SQLite keeps instants as naive-UTC ISO text, dates as ISO text."""
    if not sqlite:
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value
