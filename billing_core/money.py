"""Money: ISO 4217 and token currencies, exact `Decimal` amounts, one rounding function.

Amounts are stored as integers of micro-units (1e-6 of the major unit), so both SQLite and PostgreSQL
keep them exact; `to_micros`/`from_micros` convert. Rounding to what a currency can bill happens only in
`round_money`, with an explicit mode.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from billing_core.errors import InvalidInput

#: Storage scale: every stored amount and quantity is an integer number of 1e-6 units.
MICRO = Decimal("0.000001")
MICROS_PER_UNIT = 1_000_000
#: Largest amount we accept (10^12 major units); anything above is surely a typo.
MAX_AMOUNT = Decimal(10) ** 12

# ISO 4217 active codes with a minor-unit exponent other than 2.
_EXPONENT_0 = frozenset(
    [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV",
        "XAF", "XOF", "XPF"
    ]
)
_EXPONENT_3 = frozenset(
    [
        "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"
    ]
)
_EXPONENT_4 = frozenset(
    [
        "CLF", "UYW"
    ]
)
_EXPONENT_2 = frozenset(
    [
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
        "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF",
        "CHW", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB",
        "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF",
        "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR", "KPW", "KYD", "KZT", "LAK", "LBP", "LKR",
        "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN",
        "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR",
        "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS",
        "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TOP", "TRY", "TTD", "TWD", "TZS",
        "UAH", "USD", "USN", "UYU", "UZS", "VED", "VES", "WST", "XCD", "XCG", "YER", "ZAR", "ZMW", "ZWG"
    ]
)
# A comma in machine input may only group thousands (`12,500.00`); `12.500,00` is a locale's, never 12.5.
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
#: Token currencies with their own exponent (kept at most 6 so they stay exact in micro-units).
TOKEN_EXPONENTS: dict[str, int] = {"USDC": 6, "USDT": 6, "AKT": 6, "DAI": 6}


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point that `currency` bills in (JPY 0, USD 2, KWD 3, USDC 6)."""
    code = normalize_currency(currency)
    if code in TOKEN_EXPONENTS:
        return TOKEN_EXPONENTS[code]
    if code in _EXPONENT_0:
        return 0
    if code in _EXPONENT_3:
        return 3
    if code in _EXPONENT_4:
        return 4
    return 2


def is_token(currency: str) -> bool:
    return currency.upper() in TOKEN_EXPONENTS


def normalize_currency(currency: str) -> str:
    """Upper-case a currency code and check that we know it."""
    code = currency.strip().upper()
    if code not in _EXPONENT_2 and code not in _EXPONENT_0 and code not in _EXPONENT_3 \
            and code not in _EXPONENT_4 and code not in TOKEN_EXPONENTS:
        raise InvalidInput(f"Unknown currency {currency!r}.", hint="Use an ISO 4217 code such as USD or EUR.")
    return code


def round_money(amount: Decimal, currency: str, *, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round `amount` to the currency's exponent with the given `decimal` rounding mode."""
    quantum = Decimal(1).scaleb(-currency_exponent(currency))
    return amount.quantize(quantum, rounding=rounding)


def parse_amount(text: str | int | Decimal, *, field: str = "amount", allow_negative: bool = False) -> Decimal:
    """Parse a file- or API-supplied amount exactly; reject floats' cousins (NaN, inf) and absurd sizes.

    Amounts people type go through `bot.parsing.parse_money` first, which reads them in their locale.
    """
    if isinstance(text, float):  # pragma: no cover - guarded by types, kept for untyped callers
        raise InvalidInput(f"{field} must be exact, not a float.")
    raw = str(text).strip().replace("_", "")
    try:
        if "," in raw and not _GROUPED.fullmatch(raw):
            raise InvalidOperation
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        raise InvalidInput(f"{field} {str(text)[:40]!r} is not a number.", hint="e.g. 1250.00", field=field) from None
    if not value.is_finite():
        raise InvalidInput(f"{field} must be a finite number.", hint="e.g. 1250.00", field=field)
    if abs(value) >= MAX_AMOUNT:
        raise InvalidInput(f"{field} {value:,} is larger than we accept.", hint="e.g. 1250.00", field=field)
    if value < 0 and not allow_negative:
        raise InvalidInput(f"{field} cannot be negative.", hint="e.g. 1250.00", field=field)
    return value


def to_micros(amount: Decimal) -> int:
    """Exact integer micro-units; raises if `amount` has more than 6 decimals (it would lose money)."""
    scaled = amount.scaleb(6)
    micros = int(scaled)
    if micros != scaled:
        raise InvalidInput(f"Amount {amount} has more than 6 decimal places.")
    return micros


def from_micros(micros: int) -> Decimal:
    """The exact Decimal of `micros` (value-equal to the amount stored; six decimal places)."""
    return Decimal(micros).scaleb(-6)


def plain(amount: Decimal, currency: str) -> str:
    """The exact decimal string of a money amount at its currency's exponent (for CSV and machine use)."""
    return f"{round_money(amount, currency):f}"
