"""Reconciliation: do the providers' invoices agree with the usage we metered?

For one account and one period (a local month by default: the last complete one) we add up the invoice
lines of every invoice whose billing period starts in it (cancelled ones excluded) per provider and
meter (a line's `resource_type`), and compare them with the usage-derived cost of the same provider and
meter from the daily rollups. An invoice that names no provider is compared with the usage of every
provider that has no invoice of its own in the period ("all providers"). Fees, tax, discounts and
credits are invoice-level and not usage, so they are not compared; line totals are.

How a pair agrees or which kind of discrepancy it is: `billing_core.reconciliation` (pure rules and results).

A run writes nothing but one audit-log entry (`reconcile.run`), so running it twice is harmless and
gives the same answer. `discrepancies_csv` is the result as CSV with exact decimal strings.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing_core import invoicing
from billing_core.db import queries
from billing_core.db.audit import record
from billing_core.db.engine import Database
from billing_core.db.models import Account, Invoice, InvoiceLineItem, Provider, UsageDaily
from billing_core.db.sync_models import endpoint_configs
from billing_core.errors import InvalidInput
from billing_core.periods import Period, local_today, month_period
from billing_core.reconciliation import (
    ALL_PROVIDERS,
    DEFAULT_TOLERANCE,
    ZERO,
    Amounts,
    Discrepancy,
    Kind,
    Reconciliation,
    compare,
    discrepancies_csv,
    exact,
    summary_line,
)

NO_METER = "(no meter)"
__all__ = ["ALL_PROVIDERS", "DEFAULT_TOLERANCE", "Amounts", "Discrepancy", "Kind", "Reconciliation", "compare",
           "default_period", "discrepancies_csv", "exact", "reconcile", "reconcile_billed_accounts", "summary_line"]


def default_period(now: datetime, tz: ZoneInfo) -> Period:
    """The last complete local month: the one whose invoices have been issued."""
    return month_period(local_today(now, tz)).previous()


def reconcile(db: Database, ref: str | int, period: Period | None = None, *, actor: str, now: datetime,
              tolerance: Decimal = DEFAULT_TOLERANCE) -> Reconciliation:
    """Compare one account's provider invoices with its metered usage for `period`; audited."""
    if not ZERO <= tolerance < 1:
        raise InvalidInput("The tolerance is a fraction between 0 and 1.", hint="e.g. 0.005 for 0.5 %")
    with db.unit_of_work() as s:
        account = queries.get_account(s, ref)
        period = period or default_period(now, ZoneInfo(account.timezone))
        billed, invoices = _billed(s, account, period)
        own = {provider for provider, _meter in billed if provider != ALL_PROVIDERS}
        metered = _metered(s, account, period, own, generic=any(p == ALL_PROVIDERS for p, _m in billed))
        found = compare(billed, metered, tolerance=tolerance, currency=account.currency)
        result = Reconciliation(
            account=account.name, account_id=account.id, currency=account.currency, period=period,
            tolerance=tolerance, invoices=invoices, lines_checked=len(billed.keys() | metered.keys()),
            billed_total=sum((b.amount for b in billed.values()), ZERO),
            metered_total=sum((m.amount for m in metered.values()), ZERO), discrepancies=tuple(found))
        _audit(s, result, actor=actor, now=now)
        return result


def reconcile_billed_accounts(db: Database, *, actor: str, now: datetime) -> list[Reconciliation]:
    """The scheduled run, each account for its last complete local month: every account with a provider API
    endpoint, and every account with an issued invoice (not a draft, not cancelled) for that month however it
    arrived — a Stripe import, a web-hook or a file is as much a provider's bill as a synced one."""
    with db.unit_of_work() as s:
        accounts = {config.account_id for config in endpoint_configs(s)}
        accounts |= {account.id for account in s.scalars(select(Account)) if _invoiced(s, account, now)}
    return [reconcile(db, account, actor=actor, now=now) for account in sorted(accounts)]


def _invoiced(s: Session, account: Account, now: datetime) -> bool:
    period = default_period(now, ZoneInfo(account.timezone))
    return s.scalar(select(Invoice.id).where(
        Invoice.account_id == account.id, Invoice.status.in_([status.value for status in invoicing.ISSUED_STATUSES]),
        Invoice.period_start >= period.start, Invoice.period_start < period.end).limit(1)) is not None


def _billed(s: Session, account: Account, period: Period) -> tuple[dict[tuple[str, str], Amounts], tuple[str, ...]]:
    rows = s.execute(
        select(Invoice.number, Provider.name, InvoiceLineItem.resource_type, InvoiceLineItem.description,
               InvoiceLineItem.quantity, InvoiceLineItem.unit, InvoiceLineItem.total)
        .join(InvoiceLineItem, InvoiceLineItem.invoice_id == Invoice.id)
        .outerjoin(Provider, Provider.id == Invoice.provider_id)
        .where(Invoice.account_id == account.id, Invoice.status != "cancelled",
               Invoice.period_start >= period.start, Invoice.period_start < period.end)
        .order_by(Invoice.number, InvoiceLineItem.position))
    acc: dict[tuple[str, str], _Acc] = defaultdict(_Acc)
    numbers: list[str] = []
    for number, provider, meter, description, quantity, unit, total in rows:
        acc[(provider or ALL_PROVIDERS, meter or f"{NO_METER} {description}"[:120])].add(quantity, unit, total, number)
        if number not in numbers:
            numbers.append(number)
    return {k: a.amounts() for k, a in acc.items()}, tuple(numbers)


def _metered(s: Session, account: Account, period: Period, own: set[str], *,
             generic: bool) -> dict[tuple[str, str], Amounts]:
    """Usage cost per (provider, meter) from the daily rollup, keyed like the invoices that bill it."""
    rows = s.execute(
        select(Provider.name, UsageDaily.meter, UsageDaily.unit, func.sum(UsageDaily.quantity),
               func.sum(UsageDaily.cost))
        .outerjoin(Provider, Provider.id == UsageDaily.provider_id)
        .where(UsageDaily.account_id == account.id, UsageDaily.day >= period.start, UsageDaily.day < period.end)
        .group_by(Provider.name, UsageDaily.meter, UsageDaily.unit))
    acc: dict[tuple[str, str], _Acc] = defaultdict(_Acc)
    for provider, meter, unit, quantity, cost in rows:
        name = provider or queries.NONE_LABEL
        key = name if name in own or not generic else ALL_PROVIDERS
        acc[(key, meter)].add(Decimal(quantity), unit, Decimal(cost), None)
    return {k: a.amounts() for k, a in acc.items()}


class _Acc:
    """Sums one line's quantity (while its unit is single), money and invoice numbers."""

    def __init__(self) -> None:
        self.quantity: Decimal | None = ZERO
        self.units: set[str] = set()
        self.amount = ZERO
        self.invoices: list[str] = []

    def add(self, quantity: Decimal, unit: str, amount: Decimal, invoice: str | None) -> None:
        self.units.add(unit)
        self.quantity = self.quantity + quantity if self.quantity is not None and len(self.units) == 1 else None
        self.amount += amount
        if invoice and invoice not in self.invoices:
            self.invoices.append(invoice)

    def amounts(self) -> Amounts:
        unit = next(iter(self.units)) if len(self.units) == 1 else None
        return Amounts(self.quantity if unit else None, unit, self.amount, tuple(self.invoices))


def _audit(s: Session, r: Reconciliation, *, actor: str, now: datetime) -> None:
    kinds: dict[str, int] = defaultdict(int)
    for d in r.discrepancies:
        kinds[d.kind.value] += 1
    record(s, actor=actor, action="reconcile.run", entity="account", entity_id=str(r.account_id), at=now,
           after={"period": r.period.label, "first_day": r.period.start, "last_day": r.period.dates()[-1],
                  "tolerance": exact(r.tolerance), "invoices": list(r.invoices), "billed_total": exact(r.billed_total),
                  "metered_total": exact(r.metered_total),
                  "lines_checked": r.lines_checked, "discrepancies": len(r.discrepancies), "kinds": dict(kinds)},
           detail=summary_line(r))


