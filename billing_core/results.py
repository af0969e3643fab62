"""What leaves the billing core: frozen dataclasses with `Decimal` amounts and plain dates.

Views, charts, exports and jobs consume these and nothing else, so none of them ever touches an ORM
row or a closed session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from billing_core.periods import Granularity, Period


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    PENDING = "pending"
    PAID = "paid"
    OVERDUE = "overdue"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class PaymentMethod(StrEnum):
    CARD = "card"
    BANK = "bank"
    ONCHAIN = "onchain"


class Trend(StrEnum):
    INCREASING = "increasing"
    DECREASING = "decreasing"
    STABLE = "stable"


@dataclass(frozen=True)
class AccountInfo:
    id: int
    name: str
    currency: str
    timezone: str
    status: str
    credit_balance: Decimal
    billing_email: str | None
    plan_name: str | None


@dataclass(frozen=True)
class Balance:
    """What an account owes: every open invoice, and the overdue part of it."""

    currency: str
    outstanding: Decimal
    overdue: Decimal
    open_count: int
    overdue_count: int


@dataclass(frozen=True)
class InvoiceSummary:
    id: int
    number: str
    status: InvoiceStatus  # effective status: pending past its due date (local) is overdue
    issue_date: date
    due_date: date
    period_start: date
    period_end: date
    total: Decimal
    amount_paid: Decimal
    amount_due: Decimal
    currency: str
    payment_url: str | None
    deployment: str | None
    provider: str | None
    paid_at: datetime | None


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    resource_type: str | None
    quantity: Decimal
    unit: str
    unit_price: Decimal
    total: Decimal


@dataclass(frozen=True)
class PaymentInfo:
    id: int
    invoice_number: str | None
    amount: Decimal
    currency: str
    status: PaymentStatus
    method: PaymentMethod
    paid_at: datetime | None
    receipt_number: str | None
    tx_hash: str | None
    explorer_url: str | None


@dataclass(frozen=True)
class InvoiceDetail:
    summary: InvoiceSummary
    account: AccountInfo
    subtotal: Decimal
    fee_platform: Decimal
    fee_provider: Decimal
    fee_network: Decimal
    tax: Decimal
    discount: Decimal
    credits_applied: Decimal
    lease_ref: str | None
    lines: tuple[InvoiceLine, ...]
    payments: tuple[PaymentInfo, ...]

    @property
    def fees(self) -> Decimal:
        return self.fee_platform + self.fee_provider + self.fee_network


@dataclass(frozen=True)
class InvoiceQuery:
    """Filter for the invoice list; `statuses` empty means all. Dates are issue dates, inclusive."""

    statuses: tuple[InvoiceStatus, ...] = ()
    issued_from: date | None = None
    issued_to: date | None = None
    search: str | None = None
    limit: int = 10
    cursor: str | None = None
    page: int = 1  # a jump to page N (offset); Next/Previous use the keyset `cursor`


@dataclass(frozen=True)
class InvoicePage:
    items: tuple[InvoiceSummary, ...]
    query: InvoiceQuery
    total_matching: int
    next_cursor: str | None
    prev_cursor: str | None
    totals: Decimal  # sum of `total` over every matching invoice, not only this page
    due: Decimal  # sum of `amount_due` over the matching invoices that are owed (`invoicing.is_owed`)
    currency: str


@dataclass(frozen=True)
class PaymentQuery:
    statuses: tuple[PaymentStatus, ...] = ()
    methods: tuple[PaymentMethod, ...] = ()
    paid_from: date | None = None
    paid_to: date | None = None
    limit: int = 20
    cursor: str | None = None


@dataclass(frozen=True)
class PaymentPage:
    items: tuple[PaymentInfo, ...]
    query: PaymentQuery
    total_matching: int
    next_cursor: str | None
    confirmed_total: Decimal
    currency: str


@dataclass(frozen=True)
class DailyCost:
    day: date
    cost: Decimal


@dataclass(frozen=True)
class BreakdownRow:
    """One group of a usage breakdown (a deployment, a provider, a resource type, a model…)."""

    key: str
    cost: Decimal
    share: Decimal  # of the period's total, 0..1
    quantity: Decimal | None = None  # only when the group has a single unit
    unit: str | None = None


class SeriesPoint(NamedTuple):
    """One bucket × group cell of a chart series. A NamedTuple, not a frozen dataclass: a year of
    hourly cells is tens of thousands of them, and a frozen dataclass costs ~15× more to build."""

    bucket: datetime | date
    group: str
    cost: Decimal


@dataclass(frozen=True)
class PlanMeterUsage:
    meter: str
    unit: str
    included: Decimal
    used: Decimal
    overage_quantity: Decimal
    overage_unit_price: Decimal
    overage_cost: Decimal

    @property
    def used_share(self) -> Decimal:
        return self.used / self.included if self.included else Decimal(0)


@dataclass(frozen=True)
class UsageSummary:
    account: AccountInfo
    period: Period
    group_by: str
    granularity: Granularity
    total_cost: Decimal
    rows: tuple[BreakdownRow, ...]  # every group, largest first
    by_resource: tuple[BreakdownRow, ...]
    buckets: tuple[datetime | date, ...]  # every bucket of the period, in order, zero-filled
    series: tuple[SeriesPoint, ...]  # cost per bucket and group (only non-zero points)
    plan: tuple[PlanMeterUsage, ...] = ()

    @property
    def untagged(self) -> bool:
        """Grouped by a dimension no usage of the period carries: every row is `untagged_label`'s."""
        return all(r.key == untagged_label(self.group_by) for r in self.rows)


def untagged_label(key: str) -> str:
    """The group of usage without dimension `key`, so a grouping by it still adds up to the total."""
    return f"(no {key})"


@dataclass(frozen=True)
class ForecastDay:
    day: date
    expected: Decimal
    low: Decimal
    high: Decimal


@dataclass(frozen=True)
class Projection:
    """Month-end spend = actual to date + forecast of the rest, with an 80 % interval."""

    period: Period
    currency: str
    actual_to_date: Decimal
    projected_total: Decimal
    low: Decimal
    high: Decimal
    days_elapsed: int
    next_period_estimate: Decimal
    previous_period_total: Decimal
    change_pct: Decimal | None  # projected vs previous period, in percent
    trend: Trend
    actual_daily: tuple[DailyCost, ...]
    forecast_daily: tuple[ForecastDay, ...]
    method: str = "weekday-seasonal"


@dataclass(frozen=True)
class BudgetStatus:
    id: int
    account: str
    name: str
    scope: str  # human label: "all usage", "deployment api-prod", "model gpt-4o"…
    amount: Decimal
    currency: str
    period: Period
    spent: Decimal
    projected: Decimal | None
    thresholds: tuple[int, ...]
    alert_channel: str | None

    @property
    def used_pct(self) -> Decimal:
        return (self.spent / self.amount * 100) if self.amount else Decimal(0)

    @property
    def crossed(self) -> tuple[int, ...]:
        return tuple(t for t in self.thresholds if self.used_pct >= t)


@dataclass(frozen=True)
class DeploymentInfo:
    id: int
    name: str
    provider: str | None
    lease_ref: str | None
    status: str


@dataclass(frozen=True)
class AccountOverview:
    account: AccountInfo
    month: Period
    cost_to_date: Decimal
    balance: Balance
    projection: Projection
    plan: tuple[PlanMeterUsage, ...]
    deployments: tuple[DeploymentInfo, ...]
    recent_invoices: tuple[InvoiceSummary, ...]
    trend: tuple[DailyCost, ...]
    oldest_unpaid: InvoiceSummary | None
    budgets: tuple[BudgetStatus, ...] = field(default=())


@dataclass(frozen=True)
class IngestResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(
            self.inserted + other.inserted, self.updated + other.updated, self.unchanged + other.unchanged
        )
