"""The one money, quantity and date formatter, for every message, chart label, PDF and CLI line.

Locale-aware through Babel (`en_US` → `$1,234.56`, `pt_BR` → `R$ 1.234,56`, `de_DE` → `1.234,56 €`).
Token currencies Babel does not know are shown as `1,234.50 USDC`. Amounts are rounded to the
currency's exponent with `money.round_money` first, so a displayed figure is the billed figure.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.numbers import (
    format_compact_currency,
    format_compact_decimal,
    format_currency,
    format_decimal,
    format_percent,
)

from billing_core.money import currency_exponent, is_token, round_money

DEFAULT_LOCALE = "en_US"


def safe_locale(locale: str | None) -> str:
    """A locale Babel knows; Slack gives `en-US`, Babel wants `en_US`; anything unknown → en_US."""
    if not locale:
        return DEFAULT_LOCALE
    try:
        return str(Locale.parse(locale.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return DEFAULT_LOCALE


def money(amount: Decimal, currency: str, locale: str | None = None) -> str:
    """`amount` in `currency`, rounded to the currency's exponent, written for `locale`."""
    loc = safe_locale(locale)
    rounded = round_money(amount, currency)
    if is_token(currency):
        # Stablecoin amounts are read in cents; sub-cent amounts keep their digits so they never show as 0.
        shown = rounded if abs(rounded) < Decimal("0.01") else rounded.quantize(Decimal("0.01"))
        number = format_decimal(shown, format=f"#,##0.00{'#' * (currency_exponent(currency) - 2)}", locale=loc)
        return f"{number} {currency.upper()}"
    return str(format_currency(rounded, currency.upper(), locale=loc, currency_digits=True))


def unit_price(value: Decimal, currency: str, locale: str | None = None) -> str:
    """A price per unit: money when it is a whole amount of the currency's smallest unit, otherwise every digit
    it has ("0.076636 USD" per GB, "0.000003 USD" per token): rounding it to cents would break quantity × price."""
    if value == round_money(value, currency):
        return money(value, currency, locale)
    exponent = value.normalize().as_tuple().exponent
    digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    number = format_decimal(value, format="#,##0." + "0" * digits, locale=safe_locale(locale))
    return f"{number} {currency.upper()}"


def money_compact(amount: Decimal, currency: str, locale: str | None = None) -> str:
    """A short label for chart axes ("$12K", "R$ 1,2 mi"); never for an amount someone pays."""
    loc = safe_locale(locale)
    if is_token(currency):
        number = format_compact_decimal(amount, format_type="short", locale=loc, fraction_digits=1)
        return f"{number} {currency.upper()}"
    return str(format_compact_currency(amount, currency.upper(), format_type="short", locale=loc, fraction_digits=1))


def quantity(value: Decimal, unit: str = "", locale: str | None = None) -> str:
    """A usage quantity with at most 3 decimals and its unit ("1,234.5 GB-h")."""
    rounded = value.quantize(Decimal("0.001")).normalize()
    text = str(format_decimal(rounded, format="#,##0.###", locale=safe_locale(locale)))
    return f"{text} {unit}".strip()


def percent(share: Decimal, locale: str | None = None) -> str:
    """A share 0..1 as a percentage with no decimals ("83 %" / "83%")."""
    return str(format_percent(share, format="#,##0%", locale=safe_locale(locale)))


def day(value: date, locale: str | None = None) -> str:
    """A date in the locale's medium form ("Nov 22, 2026" / "22.11.2026")."""
    return str(_babel_date(value, format="medium", locale=safe_locale(locale)))


def moment(value: datetime, tz: ZoneInfo, locale: str | None = None) -> str:
    """An instant in the reader's time zone ("Nov 22, 2026, 9:05 AM")."""
    return str(_babel_datetime(value.astimezone(tz), format="medium", tzinfo=tz, locale=safe_locale(locale)))
