"""SQLAlchemy 2 models of the ledger. Migrations in `migrations/versions` create exactly these tables.

Amounts and quantities are `Micros` (exact integers of 1e-6 units). Instants are UTC; billing dates
(issue, due, period) are local dates of the account. Rollup tables are keyed by integers with 0 for
"none", so a composite primary key never holds a NULL.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from billing_core.db.types import Micros, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {Decimal: Micros(), datetime: UTCDateTime(), dict[str, Any]: JSON}


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    currency: Mapped[str] = mapped_column(String(8))
    meters: Mapped[list[PlanMeter]] = relationship(back_populates="plan", cascade="all, delete-orphan")


class PlanMeter(Base):
    """What a plan includes of one meter, and the price of each unit beyond it."""

    __tablename__ = "plan_meters"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    meter: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(32))
    included_quantity: Mapped[Decimal]
    overage_unit_price: Mapped[Decimal]
    plan: Mapped[Plan] = relationship(back_populates="meters")
    __table_args__ = (UniqueConstraint("plan_id", "meter"),)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    currency: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    credit_balance: Mapped[Decimal] = mapped_column(default=Decimal(0))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    billing_email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime]
    plan: Mapped[Plan | None] = relationship()
    __table_args__ = (CheckConstraint("status IN ('active','suspended','closed')", name="status"),)


class Provider(Base):
    __tablename__ = "providers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="compute")
    api_url: Mapped[str | None] = mapped_column(String(500))


class Deployment(Base):
    """A deployment (lease) of an account on a provider."""

    __tablename__ = "deployments"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    name: Mapped[str] = mapped_column(String(120))
    lease_ref: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime]
    provider: Mapped[Provider | None] = relationship()
    __table_args__ = (UniqueConstraint("account_id", "name"),)


class UsageRecord(Base):
    """One metered charge as a source reported it; unique per (source, external_id).

    The high-volume fact table carries no foreign keys: per-row constraint triggers halved bulk
    ingestion on PostgreSQL. `billing_core.db.ingest` checks every referenced account, deployment
    and provider once per batch instead, and nothing else writes this table.
    """

    __tablename__ = "usage_records"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int]
    deployment_id: Mapped[int | None]
    provider_id: Mapped[int | None]
    meter: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal]
    unit: Mapped[str] = mapped_column(String(32))
    cost: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    # The record's dimensions, stored once per distinct set (0: none): a set is ~400 bytes of JSON that an export
    # repeats over millions of rows, and the raw row's width is what a bulk import pays for.
    dimension_set_id: Mapped[int] = mapped_column(default=0, server_default="0")
    dimension_set: Mapped[UsageDimensionSet | None] = relationship(
        primaryjoin="foreign(UsageRecord.dimension_set_id) == UsageDimensionSet.id", viewonly=True, lazy="joined")
    # Per-record facts that are never rolled up (alternative costs, resource ids): see UsageIn.attributes.
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    # Keys compared as bytes (migration 0011): cheaper for every row a bulk insert adds to the unique index, and
    # the order of Arrow's sort of a batch. No other index: no query of the product reads raw rows by account or
    # time (usage questions read the rollups; bench.core's raw GROUP BY, their yardstick, scans).
    source: Mapped[str] = mapped_column(String(64).with_variant(String(64, collation="C"), "postgresql"))
    external_id: Mapped[str] = mapped_column(String(200).with_variant(String(200, collation="C"), "postgresql"))
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    @property
    def dimensions(self) -> dict[str, str]:
        return dict(self.dimension_set.dimensions) if self.dimension_set else {}


class UsageDimensionSet(Base):
    """A distinct set of usage dimensions, by a digest of its sorted pairs (`billing_core.db.ingest`)."""

    __tablename__ = "usage_dimension_sets"
    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(32), unique=True)
    dimensions: Mapped[dict[str, Any]]


class UsageHourly(Base):
    """Rollup: cost and quantity per account × deployment × provider × meter × UTC hour."""

    __tablename__ = "usage_hourly"
    account_id: Mapped[int] = mapped_column(primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(primary_key=True)
    meter: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[Decimal]
    cost: Mapped[Decimal]
    records: Mapped[int] = mapped_column(BigInteger)


class UsageDaily(Base):
    """Rollup: per account × deployment × provider × meter × LOCAL day of the account."""

    __tablename__ = "usage_daily"
    account_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(primary_key=True)
    meter: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[Decimal]
    cost: Mapped[Decimal]
    records: Mapped[int] = mapped_column(BigInteger)


class UsageDailyDimension(Base):
    """Rollup: per account × local day × dimension (key, value) × meter, for "by model", "by region"…"""

    __tablename__ = "usage_daily_dimension"
    account_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    dim_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim_value: Mapped[str] = mapped_column(String(200), primary_key=True)
    meter: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[Decimal]
    cost: Mapped[Decimal]
    records: Mapped[int] = mapped_column(BigInteger)


class Counter(Base):
    """Monotonic counters (invoice and receipt numbers): never reset, never reused."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    number: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(8))
    subtotal: Mapped[Decimal]
    fee_platform: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fee_provider: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fee_network: Mapped[Decimal] = mapped_column(default=Decimal(0))
    tax: Mapped[Decimal] = mapped_column(default=Decimal(0))
    discount: Mapped[Decimal] = mapped_column(default=Decimal(0))
    credits_applied: Mapped[Decimal] = mapped_column(default=Decimal(0))
    total: Mapped[Decimal]
    amount_paid: Mapped[Decimal] = mapped_column(default=Decimal(0))
    amount_due: Mapped[Decimal]
    payment_url: Mapped[str | None] = mapped_column(String(500))
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id"))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    lease_ref: Mapped[str | None] = mapped_column(String(120))
    paid_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(64), default="ledger")
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    lines: Mapped[list[InvoiceLineItem]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="InvoiceLineItem.position"
    )
    payments: Mapped[list[Payment]] = relationship(back_populates="invoice", order_by="Payment.id")
    deployment: Mapped[Deployment | None] = relationship()
    provider: Mapped[Provider | None] = relationship()
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_invoices_account_issue", "account_id", "issue_date", "id"),
        CheckConstraint("status IN ('draft','pending','paid','overdue','cancelled')", name="status"),
        CheckConstraint(
            "total = subtotal + fee_platform + fee_provider + fee_network + tax - discount - credits_applied",
            name="total",
        ),
        CheckConstraint("amount_due = total - amount_paid", name="amount_due"),
        CheckConstraint("amount_due >= 0 AND amount_paid >= 0", name="not_negative"),
        CheckConstraint("status <> 'paid' OR amount_due = 0", name="paid_is_settled"),
        CheckConstraint("status NOT IN ('pending','overdue') OR amount_due > 0", name="open_has_due"),
        CheckConstraint("due_date >= issue_date AND period_end >= period_start", name="dates"),
    )


class InvoiceLineItem(Base):
    __tablename__ = "invoice_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    description: Mapped[str] = mapped_column(String(500))
    resource_type: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[Decimal]
    unit: Mapped[str] = mapped_column(String(32))
    unit_price: Mapped[Decimal]
    total: Mapped[Decimal]
    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    tx_hash: Mapped[str | None] = mapped_column(String(130))
    explorer_url: Mapped[str | None] = mapped_column(String(500))
    paid_at: Mapped[datetime | None]
    receipt_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    source: Mapped[str] = mapped_column(String(64), default="ledger")
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    invoice: Mapped[Invoice | None] = relationship(back_populates="payments")
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint("status IN ('pending','confirmed','failed')", name="status"),
        CheckConstraint("method IN ('card','bank','onchain')", name="method"),
        CheckConstraint("amount > 0", name="positive"),
    )


class Budget(Base):
    """A spend limit for an account, optionally scoped to a deployment, provider, resource or dimension."""

    __tablename__ = "budgets"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    scope_kind: Mapped[str] = mapped_column(String(16), default="all")
    scope_key: Mapped[str | None] = mapped_column(String(64))  # dimension key when scope_kind = dimension
    scope_value: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[Decimal]
    period: Mapped[str] = mapped_column(String(16), default="month")
    thresholds: Mapped[str] = mapped_column(String(64), default="50,80,100")  # percent, ascending
    alert_channel: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        CheckConstraint("scope_kind IN ('all','deployment','provider','resource','dimension')", name="scope"),
        CheckConstraint("period IN ('month','quarter','year')", name="period"),
        CheckConstraint("amount > 0", name="positive"),
    )


class AuditEntry(Base):
    """Who changed what, when, from the bot or the CLI; `before`/`after` are JSON snapshots."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(120))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(Text)


class WorkspaceAccount(Base):
    """Which billing accounts a chat workspace may see at all; one of them is its default."""

    __tablename__ = "workspace_accounts"
    workspace: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    is_default: Mapped[bool] = mapped_column(default=False)


class ChannelLink(Base):
    """A channel linked to one account: commands there are about that account and answered in public."""

    __tablename__ = "channel_links"
    workspace: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    linked_by: Mapped[str] = mapped_column(String(32))
    linked_at: Mapped[datetime]


class MemberRole(Base):
    """A billing role granted to a workspace member: viewer (read) or admin (read and change)."""

    __tablename__ = "member_roles"
    workspace: Mapped[str] = mapped_column(String(32), primary_key=True)
    member: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime]
    __table_args__ = (CheckConstraint("role IN ('viewer','admin')", name="role"),)


class SeenRequest(Base):
    """Signed requests already accepted: a replay of the same signature within its lifetime is refused.

    Kept in the database, not in memory, so a replay sent to another web process is caught too.
    """

    __tablename__ = "seen_requests"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)
