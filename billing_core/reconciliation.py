"""Reconciliation results and rules (pure): what a comparison of invoices with metered usage found.

A pair (provider, meter) agrees when its billed and metered amounts differ by at most `tolerance` (default
0.5 %) of the larger one, or are equal once rounded to the currency. Otherwise it is one discrepancy of a
kind: `missing_usage` (billed, nothing metered), `unbilled_usage` (metered, billed for fewer units or not
at all), `extra_charge` (billed for more units than metered) or `price_difference` (the same units within
tolerance, a different amount). `billing_core.reconcile` gathers the two sides from the ledger.
CSV: UTF-8 without BOM, ISO dates, exact decimal strings, never floats.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from billing_core.money import round_money
from billing_core.periods import Period

DEFAULT_TOLERANCE = Decimal("0.005")
ALL_PROVIDERS = "all providers"
ZERO = Decimal(0)


class Kind(StrEnum):
    MISSING_USAGE = "missing_usage"
    UNBILLED_USAGE = "unbilled_usage"
    EXTRA_CHARGE = "extra_charge"
    PRICE_DIFFERENCE = "price_difference"


@dataclass(frozen=True)
class Amounts:
    """One side of a line: quantity (None when its units are mixed), unit and money."""

    quantity: Decimal | None
    unit: str | None
    amount: Decimal
    invoices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Discrepancy:
    provider: str
    meter: str
    kind: Kind
    billed: Amounts
    metered: Amounts

    @property
    def difference(self) -> Decimal:
        """Billed minus metered: positive when the provider charges more than we measured."""
        return self.billed.amount - self.metered.amount

    @property
    def difference_pct(self) -> Decimal | None:
        if not self.metered.amount:
            return None
        return (self.difference / self.metered.amount * 100).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Reconciliation:
    account: str
    account_id: int
    currency: str
    period: Period
    tolerance: Decimal
    invoices: tuple[str, ...]
    lines_checked: int
    billed_total: Decimal
    metered_total: Decimal
    discrepancies: tuple[Discrepancy, ...]

    @property
    def clean(self) -> bool:
        return not self.discrepancies


def compare(billed: Mapping[tuple[str, str], Amounts], metered: Mapping[tuple[str, str], Amounts], *,
            tolerance: Decimal, currency: str) -> list[Discrepancy]:
    """The lines that disagree beyond `tolerance`, by provider and meter (pure)."""
    empty = Amounts(ZERO, None, ZERO)
    out: list[Discrepancy] = []
    for key in sorted(billed.keys() | metered.keys()):
        b, m = billed.get(key, empty), metered.get(key, empty)
        if _agree(b.amount, m.amount, tolerance, currency):
            continue
        out.append(Discrepancy(key[0], key[1], _kind(b, m, tolerance), b, m))
    return out


def _agree(billed: Decimal, metered: Decimal, tolerance: Decimal, currency: str) -> bool:
    if round_money(billed, currency) == round_money(metered, currency):
        return True
    return abs(billed - metered) <= tolerance * max(abs(billed), abs(metered))


def _kind(b: Amounts, m: Amounts, tolerance: Decimal) -> Kind:
    if not m.amount and not m.quantity:
        return Kind.MISSING_USAGE
    if not b.amount and not b.quantity:
        return Kind.UNBILLED_USAGE
    if b.quantity is not None and m.quantity is not None and b.unit == m.unit:
        if abs(b.quantity - m.quantity) <= tolerance * max(abs(b.quantity), abs(m.quantity)):
            return Kind.PRICE_DIFFERENCE
        return Kind.EXTRA_CHARGE if b.quantity > m.quantity else Kind.UNBILLED_USAGE
    return Kind.EXTRA_CHARGE if b.amount > m.amount else Kind.UNBILLED_USAGE


def summary_line(r: Reconciliation) -> str:
    verdict = "within tolerance" if r.clean else f"{len(r.discrepancies)} discrepanc" + \
        ("y" if len(r.discrepancies) == 1 else "ies")
    return (f"{r.account} {r.period.label}: billed {exact(r.billed_total)} vs metered {exact(r.metered_total)} "
            f"{r.currency} over {r.lines_checked} line(s) of {len(r.invoices)} invoice(s): {verdict}")


def exact(value: Decimal) -> str:
    """An exact decimal string without exponent or trailing zeros beyond the units ("12.5", "0", "31.248")."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def discrepancies_csv(results: Iterable[Reconciliation]) -> bytes:
    """Every discrepancy line as CSV: UTF-8 without BOM, ISO dates, exact decimal strings, never floats."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["account", "period_start", "period_end", "provider", "meter", "kind", "unit", "billed_quantity",
                     "metered_quantity", "billed_amount", "metered_amount", "difference", "difference_pct",
                     "currency", "invoices"])
    for r in results:
        for d in r.discrepancies:
            writer.writerow([
                r.account, r.period.start.isoformat(), (r.period.dates()[-1]).isoformat(), d.provider, d.meter,
                d.kind.value, d.billed.unit or d.metered.unit or "", _qty(d.billed.quantity),
                _qty(d.metered.quantity), exact(d.billed.amount), exact(d.metered.amount), exact(d.difference),
                exact(d.difference_pct) if d.difference_pct is not None else "", r.currency,
                " ".join(d.billed.invoices),
            ])
    return buffer.getvalue().encode("utf-8")


def _qty(value: Decimal | None) -> str:
    return exact(value) if value is not None else ""
