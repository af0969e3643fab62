"""Deterministic, realistic demo data relative to "now", seeded through the real ingestion API.

Three accounts in three currencies and time zones (one paying on-chain in USDC), three providers,
eight deployments, 120 days of hourly cpu/memory/storage/bandwidth/gpu usage with weekly and daily
seasonality, slow growth and one visible GPU spike, LLM token usage by model, monthly invoices in every
status (draft, pending, paid, overdue, cancelled) with partial and on-chain payments, and budgets near
and over their thresholds. Seeding twice changes nothing (every record has a stable external id).
"""

from __future__ import annotations

import hashlib
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.db.audit import record
from billing_core.db.ingest import ingest_usage, upsert_invoice, upsert_payment
from billing_core.db.models import (
    Account,
    Budget,
    ChannelLink,
    Deployment,
    MemberRole,
    Plan,
    PlanMeter,
    Provider,
    WorkspaceAccount,
)
from billing_core.money import round_money
from billing_core.periods import add_months, local_midnight_utc, local_today, month_start
from billing_core.records import InvoiceIn, LineIn, PaymentIn, UsageIn
from billing_core.results import IngestResult, InvoiceStatus, PaymentMethod, PaymentStatus

SOURCE = "demo"
DAYS = 120
SIX = Decimal("0.000001")
THREE = Decimal("0.001")

METER_LABELS = {
    "cpu": "Compute (vCPU)", "memory": "Memory", "storage": "Storage", "bandwidth": "Bandwidth", "gpu": "GPU",
    "llm_input_tokens": "LLM input tokens", "llm_output_tokens": "LLM output tokens",
}


@dataclass(frozen=True)
class Meter:
    name: str
    unit: str
    per_hour: Decimal  # base quantity per hour
    price: Decimal  # per unit
    weekly: bool = True  # weekends are quieter (storage is not)
    dims: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DemoDeployment:
    name: str
    provider: str
    region: str
    meters: tuple[Meter, ...]
    lease_ref: str | None = None


@dataclass(frozen=True)
class DemoAccount:
    name: str
    currency: str
    timezone: str
    email: str
    credit: Decimal
    tax_rate: Decimal
    net_days: int
    method: PaymentMethod
    deployments: tuple[DemoDeployment, ...]
    per_lease_invoices: bool = False
    plan: str | None = None


SUPPORT = (("model", "gpt-4o"), ("agent", "support-bot"))
REVIEW = (("model", "claude-sonnet"), ("agent", "code-review"))
SEARCH = (("model", "llama-3-70b"), ("agent", "search"))


def _m(name: str, unit: str, per_hour: str, price: str, weekly: bool = True,
       dims: tuple[tuple[str, str], ...] = ()) -> Meter:
    return Meter(name, unit, Decimal(per_hour), Decimal(price), weekly, dims)


PROVIDERS = (("Helios Compute", "compute"), ("Nimbus GPU", "gpu"), ("Terra Storage", "storage"))

ACCOUNTS = (
    DemoAccount(
        "acme-corp", "USD", "America/New_York", "billing@acme.example", Decimal("250.00"), Decimal("0.08875"), 30,
        PaymentMethod.CARD, plan="Team",
        deployments=(
            DemoDeployment("api-prod", "Helios Compute", "us-east", (
                _m("cpu", "vCPU-h", "48", "0.0420"), _m("memory", "GB-h", "192", "0.0050"),
                _m("bandwidth", "GB", "35", "0.0800"))),
            DemoDeployment("web-frontend", "Helios Compute", "us-east", (
                _m("cpu", "vCPU-h", "16", "0.0420"), _m("memory", "GB-h", "64", "0.0050"),
                _m("bandwidth", "GB", "60", "0.0800"))),
            DemoDeployment("ml-training", "Nimbus GPU", "us-west", (
                _m("gpu", "GPU-h", "4", "2.4000"), _m("cpu", "vCPU-h", "32", "0.0420"),
                _m("memory", "GB-h", "256", "0.0050"), _m("storage", "GB-h", "2000", "0.000140", weekly=False))),
            DemoDeployment("data-lake", "Terra Storage", "us-east", (
                _m("storage", "GB-h", "20000", "0.000030", weekly=False), _m("bandwidth", "GB", "12", "0.0500"))),
        ),
    ),
    DemoAccount(
        "nordlicht-gmbh", "EUR", "Europe/Berlin", "rechnung@nordlicht.example", Decimal("0"), Decimal("0.19"), 30,
        PaymentMethod.BANK,
        deployments=(
            DemoDeployment("shop-backend", "Helios Compute", "eu-central", (
                _m("cpu", "vCPU-h", "24", "0.0390"), _m("memory", "GB-h", "96", "0.0046"),
                _m("storage", "GB-h", "1500", "0.000130", weekly=False), _m("bandwidth", "GB", "20", "0.0700"))),
            DemoDeployment("llm-gateway", "Nimbus GPU", "eu-central", (
                _m("gpu", "GPU-h", "1", "2.2000"),
                _m("llm_input_tokens", "tokens", "900000", "0.0000025", dims=SUPPORT),
                _m("llm_output_tokens", "tokens", "200000", "0.0000100", dims=SUPPORT),
                _m("llm_input_tokens", "tokens", "1500000", "0.0000030", dims=REVIEW),
                _m("llm_output_tokens", "tokens", "300000", "0.0000150", dims=REVIEW),
                _m("llm_input_tokens", "tokens", "3000000", "0.0000006", dims=SEARCH),
                _m("llm_output_tokens", "tokens", "600000", "0.0000008", dims=SEARCH),
            )),
        ),
    ),
    DemoAccount(
        "orbit-dao", "USDC", "Asia/Singapore", "treasury@orbit.example", Decimal("0"), Decimal("0"), 7,
        PaymentMethod.ONCHAIN, per_lease_invoices=True,
        deployments=(
            DemoDeployment("validator-node", "Helios Compute", "ap-southeast", (
                _m("cpu", "vCPU-h", "8", "0.0450"), _m("memory", "GB-h", "32", "0.0055"),
                _m("storage", "GB-h", "4000", "0.000150", weekly=False), _m("bandwidth", "GB", "6", "0.0900")),
                lease_ref="lease/akash1qv9x…/1402/1"),
            DemoDeployment("indexer", "Terra Storage", "ap-southeast", (
                _m("cpu", "vCPU-h", "4", "0.0450"), _m("memory", "GB-h", "16", "0.0055"),
                _m("storage", "GB-h", "8000", "0.000030", weekly=False)),
                lease_ref="lease/akash1qv9x…/1517/1"),
        ),
    ),
)

TEAM_PLAN = (("cpu", "vCPU-h", "40000", "0.0380"), ("gpu", "GPU-h", "2400", "2.2000"),
             ("bandwidth", "GB", "60000", "0.0700"))


@dataclass
class SeedReport:
    accounts: int = 0
    usage: IngestResult = field(default_factory=IngestResult)
    invoices: int = 0
    payments: int = 0
    budgets: int = 0


def _noise(*parts: object) -> float:
    """A deterministic number in [0, 1) from `parts` (stable across runs and machines)."""
    return zlib.crc32("|".join(map(str, parts)).encode()) / 2**32


def _factor(acct: DemoAccount, meter: Meter, local: datetime, day_index: int, spike_day: date) -> Decimal:
    f = 1.0 + 0.003 * day_index  # slow growth
    if meter.weekly:
        f *= 0.62 if local.weekday() >= 5 else 1.0
        f *= 1.3 if 9 <= local.hour < 19 else 0.78
    if meter.name == "gpu" and local.date() == spike_day and 10 <= local.hour < 22:
        f *= 6.0  # the one visible spike: a runaway training job
    f *= 0.9 + 0.2 * _noise(acct.name, meter.name, meter.dims, local.isoformat())
    return Decimal(str(round(f, 6)))


@dataclass
class _Totals:
    """Per (account, deployment or None, local month, meter): quantity, cost — for invoice lines."""

    data: dict[tuple[str, str | None, date, str, str], list[Decimal]] = field(
        default_factory=lambda: defaultdict(lambda: [Decimal(0), Decimal(0)]))

    def add(self, key: tuple[str, str | None, date, str, str], qty: Decimal, cost: Decimal) -> None:
        slot = self.data[key]
        slot[0] += qty
        slot[1] += cost


def _usage(acct: DemoAccount, account_id: int, ids: dict[str, tuple[int, int]], now: datetime,
           totals: _Totals) -> Iterator[UsageIn]:
    tz = ZoneInfo(acct.timezone)
    today = local_today(now, tz)
    first_day = today - timedelta(days=DAYS)
    start = local_midnight_utc(first_day, tz)
    hours = int((now.replace(minute=0, second=0, microsecond=0) - start).total_seconds() // 3600)
    spike_day = today - timedelta(days=9)
    for dep in acct.deployments:
        dep_id, prov_id = ids[dep.name]
        for h in range(hours):
            begin = start + timedelta(hours=h)
            local = begin.astimezone(tz)
            day_index = (local.date() - first_day).days
            for meter in dep.meters:
                qty = (meter.per_hour * _factor(acct, meter, local, day_index, spike_day)).quantize(THREE)
                cost = (qty * meter.price).quantize(SIX)
                dims = dict(meter.dims) | {"region": dep.region}
                bill_dep = dep.name if acct.per_lease_invoices else None
                totals.add((acct.name, bill_dep, month_start(local.date()), meter.name, meter.unit), qty, cost)
                yield UsageIn(
                    account_id=account_id, meter=meter.name, quantity=qty, unit=meter.unit, cost=cost,
                    currency=acct.currency, period_start=begin, period_end=begin + timedelta(hours=1),
                    source=SOURCE, external_id=f"{dep.name}:{meter.name}:{dims.get('model', '-')}:{begin:%Y%m%dT%H}",
                    deployment_id=dep_id, provider_id=prov_id, dimensions=dims,
                )


def seed_demo(session: Session, *, now: datetime) -> SeedReport:
    """Seed (or top up) the demo data in the caller's transaction."""
    report = SeedReport()
    providers = {name: _provider(session, name, kind) for name, kind in PROVIDERS}
    plan = _team_plan(session)
    for acct in ACCOUNTS:
        account = _account(session, acct, plan if acct.plan else None, now)
        ids = {d.name: (_deployment(session, account, d, providers[d.provider], now).id, providers[d.provider].id)
               for d in acct.deployments}
        totals = _Totals()
        report.usage += ingest_usage(session, _usage(acct, account.id, ids, now, totals))
        _invoices(session, acct, account, ids, totals, now, report)
        report.budgets += _budgets(session, acct, account, totals, now)
        report.accounts += 1
    _demo_workspace(session, now)
    record(session, actor="cli:seed", action="demo.seed", entity="database", entity_id=None, at=now,
           after={"usage_inserted": report.usage.inserted, "invoices": report.invoices})
    return report


#: The local sandbox workspace (bot/sandbox): #finance is linked to acme-corp, one viewer, one outsider.
DEMO_WORKSPACE, DEMO_FINANCE_CHANNEL, DEMO_VIEWER = "T0001", "C_FINANCE", "U_VIEWER"


def _demo_workspace(session: Session, now: datetime) -> None:
    accounts = {a.name: a.id for a in session.scalars(select(Account).where(
        Account.name.in_([d.name for d in ACCOUNTS])))}
    for name, account_id in accounts.items():
        if session.get(WorkspaceAccount, (DEMO_WORKSPACE, account_id)) is None:
            session.add(WorkspaceAccount(workspace=DEMO_WORKSPACE, account_id=account_id,
                                         is_default=name == "acme-corp"))
    if session.get(ChannelLink, (DEMO_WORKSPACE, DEMO_FINANCE_CHANNEL)) is None:
        session.add(ChannelLink(workspace=DEMO_WORKSPACE, channel=DEMO_FINANCE_CHANNEL,
                                account_id=accounts["acme-corp"], linked_by="seed", linked_at=now))
    if session.get(MemberRole, (DEMO_WORKSPACE, DEMO_VIEWER)) is None:
        session.add(MemberRole(workspace=DEMO_WORKSPACE, member=DEMO_VIEWER, role="viewer", granted_by="seed",
                               granted_at=now))
    session.flush()


def _provider(session: Session, name: str, kind: str) -> Provider:
    provider = session.scalar(select(Provider).where(Provider.name == name))
    if provider is None:
        provider = Provider(name=name, kind=kind)
        session.add(provider)
        session.flush()
    return provider


def _team_plan(session: Session) -> Plan:
    plan = session.scalar(select(Plan).where(Plan.name == "Team"))
    if plan is None:
        plan = Plan(name="Team", currency="USD", meters=[
            PlanMeter(meter=m, unit=u, included_quantity=Decimal(inc), overage_unit_price=Decimal(price))
            for m, u, inc, price in TEAM_PLAN])
        session.add(plan)
        session.flush()
    return plan


def _account(session: Session, acct: DemoAccount, plan: Plan | None, now: datetime) -> Account:
    account = session.scalar(select(Account).where(Account.name == acct.name))
    if account is None:
        account = Account(name=acct.name, currency=acct.currency, timezone=acct.timezone, credit_balance=acct.credit,
                          billing_email=acct.email, plan_id=plan.id if plan else None, created_at=now)
        session.add(account)
        session.flush()
    return account


def _deployment(session: Session, account: Account, dep: DemoDeployment, provider: Provider,
                now: datetime) -> Deployment:
    row = session.scalar(select(Deployment).where(Deployment.account_id == account.id, Deployment.name == dep.name))
    if row is None:
        row = Deployment(account_id=account.id, provider_id=provider.id, name=dep.name, lease_ref=dep.lease_ref,
                         created_at=now)
        session.add(row)
        session.flush()
    return row


# --- invoices and payments -------------------------------------------------------------------------


def _lines(acct: DemoAccount, totals: _Totals, deployment: str | None, month: date) -> tuple[LineIn, ...]:
    lines = []
    for (name, dep, m, meter, unit), (qty, cost) in sorted(totals.data.items(), key=lambda kv: kv[0][3]):
        if name != acct.name or dep != deployment or m != month or cost == 0:
            continue
        total = round_money(cost, acct.currency)
        qty = qty.quantize(THREE)
        lines.append(LineIn(f"{METER_LABELS.get(meter, meter)} usage", qty, unit, (cost / qty).quantize(SIX),
                            total, meter))
    return tuple(lines)


def _invoices(session: Session, acct: DemoAccount, account: Account, ids: dict[str, tuple[int, int]],
              totals: _Totals, now: datetime, report: SeedReport) -> None:
    tz = ZoneInfo(acct.timezone)
    today = local_today(now, tz)
    months = sorted({k[2] for k in totals.data if k[0] == acct.name})
    targets: list[str | None] = [d.name for d in acct.deployments] if acct.per_lease_invoices else [None]
    for target in targets:
        for age, month in enumerate(reversed(months)):  # age 0 = the current month
            lines = _lines(acct, totals, target, month)
            if not lines:
                continue
            plan = _status_plan(acct, target, age)
            if plan == "skip":
                continue
            issue = today if age == 0 else add_months(month, 1)
            oldest = age == len(months) - 1
            inv = _invoice_in(acct, account, ids, target, month, issue, lines, plan, today, oldest)
            invoice, _ = upsert_invoice(session, inv, now=now)
            report.invoices += 1
            report.payments += _payments(session, acct, account, invoice.number, invoice.total, plan, issue, tz, now)
            if plan == "cancelled":  # the corrected re-issue that replaced it, paid
                fixed = replace(inv, external_id=inv.external_id + ":reissue", status=InvoiceStatus.PENDING,
                                 discount=round_money(inv.lines[0].total * Decimal("0.10"), acct.currency))
                reissued, _ = upsert_invoice(session, fixed, now=now)
                report.invoices += 1
                report.payments += _payments(session, acct, account, reissued.number, reissued.total, "paid", issue,
                                             tz, now)


def _status_plan(acct: DemoAccount, target: str | None, age: int) -> str:
    """Which story each invoice tells, chosen so every status exists whatever today's date is."""
    if age == 0:
        return "draft" if acct.name == "acme-corp" else "skip"
    if acct.name == "acme-corp":
        return {1: "pending", 2: "overdue-partial"}.get(age, "paid")
    if acct.name == "nordlicht-gmbh":
        return {1: "pending", 3: "cancelled"}.get(age, "paid")
    if target == "indexer" and age == 2:
        return "overdue"
    return "paid"


def _invoice_in(acct: DemoAccount, account: Account, ids: dict[str, tuple[int, int]], target: str | None,
                month: date, issue: date, lines: tuple[LineIn, ...], plan: str, today: date,
                oldest: bool) -> InvoiceIn:
    cur = acct.currency
    subtotal = sum((li.total for li in lines), Decimal(0))
    fee_platform = round_money(subtotal * Decimal("0.02"), cur)
    fee_provider = round_money(subtotal * Decimal("0.01"), cur) if acct.per_lease_invoices else Decimal(0)
    fee_network = Decimal("0.25") if acct.method is PaymentMethod.ONCHAIN else Decimal(0)
    tax = round_money((subtotal + fee_platform + fee_provider + fee_network) * acct.tax_rate, cur)
    # Promotional credit applied once, on the oldest invoice; what is left shows as the account's balance.
    credits = min(Decimal("100.00"), subtotal) if plan == "paid" and oldest and acct.credit else Decimal(0)
    period_end = min(add_months(month, 1), today + timedelta(days=1)) - timedelta(days=1)
    dep_id, prov_id = ids[target] if target else (None, None)
    key = f"{acct.name}:{target or 'all'}:{month:%Y-%m}"
    # Net-30 when issued this month keeps "pending" pending; older unpaid ones are overdue by construction.
    due = issue + timedelta(days=acct.net_days)
    return InvoiceIn(
        account_id=account.id, source=SOURCE, external_id=key,
        status=InvoiceStatus.DRAFT if plan == "draft" else
        InvoiceStatus.CANCELLED if plan == "cancelled" else InvoiceStatus.PENDING,
        issue_date=issue, due_date=due, period_start=max(month, today - timedelta(days=DAYS)), period_end=period_end,
        currency=cur, lines=lines, fee_platform=fee_platform, fee_provider=fee_provider, fee_network=fee_network,
        tax=tax, credits_applied=credits, payment_url=f"https://pay.billing-bot.example/{acct.name}/{month:%Y-%m}",
        deployment_id=dep_id, provider_id=prov_id,
        lease_ref=next((d.lease_ref for d in acct.deployments if d.name == target), None),
    )


def _payments(session: Session, acct: DemoAccount, account: Account, number: str, total: Decimal, plan: str,
              issue: date, tz: ZoneInfo, now: datetime) -> int:
    if plan not in ("paid", "overdue-partial"):
        return 0
    paid_at = min(local_midnight_utc(issue + timedelta(days=5), tz) + timedelta(hours=10), now)
    payments: list[tuple[str, Decimal, PaymentStatus]] = []
    if plan == "paid":
        payments.append(("full", total, PaymentStatus.CONFIRMED))
    else:  # a declined card, then 40 % paid
        payments.append(("declined", round_money(total, acct.currency), PaymentStatus.FAILED))
        payments.append(("partial", round_money(total * Decimal("0.4"), acct.currency), PaymentStatus.CONFIRMED))
    for i, (kind, amount, status) in enumerate(payments):
        onchain = acct.method is PaymentMethod.ONCHAIN
        tx = "0x" + hashlib.sha256(f"{number}:{kind}".encode()).hexdigest() if onchain else None
        upsert_payment(session, PaymentIn(
            account_id=account.id, source=SOURCE, external_id=f"{number}:{kind}", amount=amount,
            currency=acct.currency, status=status, method=acct.method, paid_at=paid_at + timedelta(hours=i),
            invoice_number=number, tx_hash=tx, explorer_url=f"https://etherscan.io/tx/{tx}" if tx else None,
        ), now=now)
    return len(payments)


# --- budgets ---------------------------------------------------------------------------------------


def _budgets(session: Session, acct: DemoAccount, account: Account, totals: _Totals, now: datetime) -> int:
    month = month_start(local_today(now, ZoneInfo(acct.timezone)))
    mtd = sum((c for k, (_q, c) in totals.data.items() if k[0] == acct.name and k[2] == month), Decimal(0))
    by_meter: dict[str, Decimal] = defaultdict(Decimal)
    for k, (_q, c) in totals.data.items():
        if k[0] == acct.name and k[2] == month:
            by_meter[k[3]] += c
    wanted: list[tuple[str, str, str | None, str | None, Decimal, str]] = [
        ("monthly-total", "all", None, None, mtd / Decimal("0.86"), "50,80,100"),  # 86 %: past 80
    ]
    if by_meter.get("gpu"):
        wanted.append(("gpu", "resource", None, "gpu", by_meter["gpu"] / Decimal("1.08"), "50,80,100"))  # over
    if acct.name == "nordlicht-gmbh":
        wanted.append(("llama-budget", "dimension", "model", "llama-3-70b", mtd / Decimal("0.5"), "50,80,100"))
    if acct.name == "orbit-dao":
        wanted.append(("validator", "deployment", None, "validator-node", mtd / Decimal("0.7"), "75,90,100"))
    for name, kind, key, value, amount, thresholds in wanted:
        if session.scalar(select(Budget).where(Budget.account_id == account.id, Budget.name == name)):
            continue
        session.add(Budget(account_id=account.id, name=name, scope_kind=kind, scope_key=key, scope_value=value,
                           amount=max(amount.quantize(Decimal(1), rounding=ROUND_CEILING), Decimal(1)),
                           thresholds=thresholds, created_at=now))
    session.flush()
    return len(wanted)
