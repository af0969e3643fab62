"""What comes into the ledger: plain records that every source (demo, web-hooks, provider APIs, FOCUS,
Stripe) builds, and that `billing_core.db.ingest` upserts idempotently by (source, external_id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from billing_core.results import InvoiceStatus, PaymentMethod, PaymentStatus


@dataclass(frozen=True)
class UsageIn:
    """One metered charge. It is attributed to the hour (UTC) and local day of `period_start`.

    `dimensions` are groupings (`/billing usage … by <key>`): each one is rolled up per account-local
    day, so they must have few distinct values (region, service category, model…). `attributes` are
    facts about this one record that nobody groups by — alternative cost figures, resource ids: they
    are stored on the raw record (and take part in "unchanged vs updated") but never rolled up, which
    is what keeps a near-unique value from costing one rollup row per record.
    """

    account_id: int
    meter: str
    quantity: Decimal
    unit: str
    cost: Decimal
    currency: str
    period_start: datetime
    period_end: datetime
    source: str
    external_id: str
    deployment_id: int | None = None
    provider_id: int | None = None
    dimensions: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LineIn:
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    total: Decimal
    resource_type: str | None = None


@dataclass(frozen=True)
class InvoiceIn:
    """An invoice as a source states it. `number` None → the ledger assigns the next INV-number."""

    account_id: int
    source: str
    external_id: str
    status: InvoiceStatus
    issue_date: date
    due_date: date
    period_start: date
    period_end: date
    currency: str
    lines: tuple[LineIn, ...]
    number: str | None = None
    fee_platform: Decimal = Decimal(0)
    fee_provider: Decimal = Decimal(0)
    fee_network: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    discount: Decimal = Decimal(0)
    credits_applied: Decimal = Decimal(0)
    payment_url: str | None = None
    deployment_id: int | None = None
    provider_id: int | None = None
    lease_ref: str | None = None
    subtotal: Decimal | None = None  # None → the sum of the lines


@dataclass(frozen=True)
class PaymentIn:
    account_id: int
    source: str
    external_id: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    method: PaymentMethod
    paid_at: datetime | None
    invoice_number: str | None = None
    invoice_external: tuple[str, str] | None = None  # (source, external_id) of the invoice
    tx_hash: str | None = None
    explorer_url: str | None = None
