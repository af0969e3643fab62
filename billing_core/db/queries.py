"""Read queries over the ledger and its rollups. Each takes a session and returns result dataclasses.

No query here reads `usage_records`: usage questions go to the hourly/daily rollups, so their cost
depends on the number of buckets in the period, not on the number of raw rows.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.orm import Session, joinedload, selectinload

from billing_core import invoicing
from billing_core.db.models import (
    Account,
    Budget,
    Deployment,
    Invoice,
    Payment,
    PlanMeter,
    Provider,
    UsageDaily,
    UsageDailyDimension,
    UsageHourly,
)
from billing_core.errors import InvalidInput, NotFound
from billing_core.periods import Granularity, Period, bucket_start, local_midnight_utc
from billing_core.results import (
    AccountInfo,
    Balance,
    BreakdownRow,
    DailyCost,
    DeploymentInfo,
    InvoiceDetail,
    InvoiceLine,
    InvoicePage,
    InvoiceQuery,
    InvoiceStatus,
    InvoiceSummary,
    PaymentInfo,
    PaymentMethod,
    PaymentPage,
    PaymentQuery,
    PaymentStatus,
    PlanMeterUsage,
    SeriesPoint,
    UsageSummary,
    untagged_label,
)

ZERO = Decimal(0)
MAX_PAGE = 100
STANDARD_GROUPS = ("deployment", "provider", "resource")
NONE_LABEL = "(none)"


# --- accounts --------------------------------------------------------------------------------------


def account_info(account: Account) -> AccountInfo:
    return AccountInfo(
        id=account.id, name=account.name, currency=account.currency, timezone=account.timezone,
        status=account.status, credit_balance=account.credit_balance, billing_email=account.billing_email,
        plan_name=account.plan.name if account.plan else None,
    )


def get_account(session: Session, ref: str | int) -> Account:
    """An account by id or by name (case-insensitive)."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        account = session.get(Account, int(ref))
    else:
        account = session.scalar(select(Account).options(joinedload(Account.plan))
                                 .where(func.lower(Account.name) == ref.strip().lower()))
    if account is None:
        raise NotFound(f"No billing account {str(ref)[:60]!r}.", hint="`billing-bot accounts` lists them.")
    return account


def list_accounts(session: Session) -> list[AccountInfo]:
    accounts = session.scalars(select(Account).options(selectinload(Account.plan)).order_by(Account.name))
    return [account_info(a) for a in accounts]


def deployments(session: Session, account_id: int) -> list[DeploymentInfo]:
    rows = session.scalars(
        select(Deployment).options(selectinload(Deployment.provider))
        .where(Deployment.account_id == account_id).order_by(Deployment.name)
    )
    return [DeploymentInfo(d.id, d.name, d.provider.name if d.provider else None, d.lease_ref, d.status) for d in rows]


# --- invoices --------------------------------------------------------------------------------------


def invoice_summary(inv: Invoice, today: date) -> InvoiceSummary:
    return InvoiceSummary(
        id=inv.id, number=inv.number,
        status=invoicing.effective_status(InvoiceStatus(inv.status), inv.due_date, today),
        issue_date=inv.issue_date, due_date=inv.due_date, period_start=inv.period_start,
        period_end=inv.period_end, total=inv.total, amount_paid=inv.amount_paid, amount_due=inv.amount_due,
        currency=inv.currency, payment_url=inv.payment_url,
        deployment=inv.deployment.name if inv.deployment else None,
        provider=inv.provider.name if inv.provider else None, paid_at=inv.paid_at,
    )


def _status_condition(statuses: Sequence[InvoiceStatus], today: date) -> ColumnElement[bool]:
    open_ = Invoice.status.in_([s.value for s in invoicing.OPEN_STATUSES])
    parts: list[ColumnElement[bool]] = []
    for status in statuses:
        if status is InvoiceStatus.OVERDUE:
            parts.append(and_(open_, Invoice.due_date < today))
        elif status is InvoiceStatus.PENDING:
            parts.append(and_(open_, Invoice.due_date >= today))
        else:
            parts.append(Invoice.status == status.value)
    return or_(*parts) if parts else true()


def _invoice_filter(account_id: int, query: InvoiceQuery, today: date) -> list[ColumnElement[bool]]:
    conditions = [Invoice.account_id == account_id, _status_condition(query.statuses, today)]
    if query.issued_from:
        conditions.append(Invoice.issue_date >= query.issued_from)
    if query.issued_to:
        conditions.append(Invoice.issue_date <= query.issued_to)
    if query.search:
        needle = query.search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(func.lower(Invoice.number).like(f"%{needle}%", escape="\\"))
    return conditions


def encode_cursor(direction: str, key: date | datetime, row_id: int) -> str:
    """A keyset page link: the direction, the order key (an invoice's issue date, a payment's time) and the id."""
    raw = f"{direction}|{key.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, date, int]:
    """An invoice list's page link (`encode_cursor` of an issue date)."""
    return _decoded_cursor(cursor, date.fromisoformat, "/billing invoices")


def decode_moment_cursor(cursor: str) -> tuple[str, datetime, int]:
    """A payment list's page link (`encode_cursor` of a moment)."""
    return _decoded_cursor(cursor, datetime.fromisoformat, "/billing payments")


_Key = TypeVar("_Key", date, datetime)


def _decoded_cursor(cursor: str, key: Callable[[str], _Key], command: str) -> tuple[str, _Key, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, text, ident = raw.split("|")
        if direction not in ("next", "prev"):
            raise ValueError(direction)
        return direction, key(text), int(ident)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput("That page link is no longer valid.", hint=f"Run `{command}` again.") from None


def list_invoices(session: Session, account: Account, query: InvoiceQuery, *, today: date) -> InvoicePage:
    """A page of invoices, newest issue date first (ties by id), with keyset cursors both ways."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput(f"Page size must be between 1 and {MAX_PAGE}.", hint="e.g. page size 20")
    conditions = _invoice_filter(account.id, query, today)
    # `invoicing.is_owed` in SQL: a draft is not billed yet and a cancelled one never will be, whatever their
    # amount_due says (the same rule as the balance).
    owed = Invoice.status.in_([s.value for s in invoicing.OPEN_STATUSES])
    count, totals, due = session.execute(
        select(func.count(Invoice.id), func.coalesce(func.sum(Invoice.total), 0),
               func.coalesce(func.sum(Invoice.amount_due).filter(owed), 0)).where(*conditions)
    ).one()
    stmt: Select[Invoice] = select(Invoice).options(
        selectinload(Invoice.deployment), selectinload(Invoice.provider)
    ).where(*conditions)
    direction, key = "next", None
    if query.cursor:
        direction, key_day, key_id = decode_cursor(query.cursor)
        key = (key_day, key_id)
    newest_first = (Invoice.issue_date.desc(), Invoice.id.desc())
    pages = max(1, -(-int(count) // query.limit))
    if query.page > pages and not query.cursor:
        raise InvalidInput(f"Page {query.page} does not exist: these invoices fill {pages} page(s).",
                           hint=f"e.g. page {pages}")
    offset = (query.page - 1) * query.limit if not query.cursor else 0
    if direction == "next":
        if key:
            stmt = stmt.where(or_(Invoice.issue_date < key[0], and_(Invoice.issue_date == key[0], Invoice.id < key[1])))
        rows = list(session.scalars(stmt.order_by(*newest_first).offset(offset).limit(query.limit + 1)))
        has_more, rows = len(rows) > query.limit, rows[: query.limit]
        has_next, has_prev = has_more, key is not None or offset > 0
    else:
        assert key is not None
        stmt = stmt.where(or_(Invoice.issue_date > key[0], and_(Invoice.issue_date == key[0], Invoice.id > key[1])))
        rows = list(session.scalars(stmt.order_by(Invoice.issue_date.asc(), Invoice.id.asc()).limit(query.limit + 1)))
        has_more, rows = len(rows) > query.limit, list(reversed(rows[: query.limit]))
        has_next, has_prev = True, has_more
    if query.cursor and not rows:
        raise InvalidInput("There are no more invoices in that direction.", hint="Run `/billing invoices` again.")
    items = tuple(invoice_summary(inv, today) for inv in rows)
    return InvoicePage(
        items=items, query=query, total_matching=int(count),
        next_cursor=encode_cursor("next", rows[-1].issue_date, rows[-1].id) if has_next and rows else None,
        prev_cursor=encode_cursor("prev", rows[0].issue_date, rows[0].id) if has_prev and rows else None,
        totals=Decimal(totals), due=Decimal(due), currency=account.currency,
    )


def payment_info(p: Payment) -> PaymentInfo:
    return PaymentInfo(
        id=p.id, invoice_number=p.invoice.number if p.invoice else None, amount=p.amount, currency=p.currency,
        status=PaymentStatus(p.status), method=PaymentMethod(p.method), paid_at=p.paid_at,
        receipt_number=p.receipt_number, tx_hash=p.tx_hash, explorer_url=p.explorer_url,
    )


def invoice_detail(session: Session, account: Account, number: str, *, today: date) -> InvoiceDetail:
    inv = session.scalar(
        select(Invoice)
        .options(selectinload(Invoice.lines), selectinload(Invoice.payments).selectinload(Payment.invoice),
                 selectinload(Invoice.deployment), selectinload(Invoice.provider))
        .where(Invoice.account_id == account.id, func.lower(Invoice.number) == number.strip().lower())
    )
    if inv is None:
        raise NotFound(f"No invoice {number[:40]!r} on {account.name}.", hint="e.g. `/billing invoice INV-0042`")
    return InvoiceDetail(
        summary=invoice_summary(inv, today), account=account_info(account), subtotal=inv.subtotal,
        fee_platform=inv.fee_platform, fee_provider=inv.fee_provider, fee_network=inv.fee_network, tax=inv.tax,
        discount=inv.discount, credits_applied=inv.credits_applied, lease_ref=inv.lease_ref,
        lines=tuple(InvoiceLine(li.description, li.resource_type, li.quantity, li.unit, li.unit_price, li.total)
                    for li in inv.lines),
        payments=tuple(payment_info(p) for p in inv.payments),
    )


def balance(session: Session, account: Account, *, today: date) -> Balance:
    open_ = Invoice.status.in_([s.value for s in invoicing.OPEN_STATUSES])
    overdue = and_(open_, Invoice.due_date < today)
    row = session.execute(
        select(
            func.coalesce(func.sum(Invoice.amount_due).filter(open_), 0),
            func.coalesce(func.sum(Invoice.amount_due).filter(overdue), 0),
            func.count(Invoice.id).filter(open_),
            func.count(Invoice.id).filter(overdue),
        ).where(Invoice.account_id == account.id)
    ).one()
    return Balance(account.currency, Decimal(row[0]), Decimal(row[1]), int(row[2]), int(row[3]))


def recent_invoices(session: Session, account: Account, *, today: date, limit: int = 5) -> list[InvoiceSummary]:
    return list(list_invoices(session, account, InvoiceQuery(limit=limit), today=today).items)


def oldest_unpaid(session: Session, account: Account, *, today: date) -> InvoiceSummary | None:
    inv = session.scalar(
        select(Invoice).options(selectinload(Invoice.deployment), selectinload(Invoice.provider))
        .where(Invoice.account_id == account.id, Invoice.status.in_([s.value for s in invoicing.OPEN_STATUSES]))
        .order_by(Invoice.due_date.asc(), Invoice.id.asc()).limit(1)
    )
    return invoice_summary(inv, today) if inv else None


def list_payments(session: Session, account: Account, query: PaymentQuery, *, tz: ZoneInfo) -> PaymentPage:
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput(f"Page size must be between 1 and {MAX_PAGE}.")
    conditions: list[ColumnElement[bool]] = [Payment.account_id == account.id]
    if query.statuses:
        conditions.append(Payment.status.in_([s.value for s in query.statuses]))
    if query.methods:
        conditions.append(Payment.method.in_([m.value for m in query.methods]))
    if query.paid_from:
        conditions.append(Payment.paid_at >= local_midnight_utc(query.paid_from, tz))
    if query.paid_to:
        conditions.append(Payment.paid_at < local_midnight_utc(query.paid_to + timedelta(days=1), tz))
    count, confirmed = session.execute(
        select(func.count(Payment.id),
               func.coalesce(func.sum(Payment.amount).filter(Payment.status == PaymentStatus.CONFIRMED.value), 0))
        .where(*conditions)
    ).one()
    # Latest first by when the money moved (a pending payment by when it was recorded), ties by id: ids follow
    # the order payments were imported in, which back-filled history does not.
    when = func.coalesce(Payment.paid_at, Payment.created_at)
    stmt = select(Payment).options(selectinload(Payment.invoice)).where(*conditions)
    if query.cursor:
        _, last_when, last_id = decode_moment_cursor(query.cursor)
        stmt = stmt.where(or_(when < last_when, and_(when == last_when, Payment.id < last_id)))
    rows = list(session.scalars(stmt.order_by(when.desc(), Payment.id.desc()).limit(query.limit + 1)))
    more, rows = len(rows) > query.limit, rows[: query.limit]
    last = rows[-1] if rows else None
    return PaymentPage(
        items=tuple(payment_info(p) for p in rows), query=query, total_matching=int(count),
        next_cursor=encode_cursor("next", last.paid_at or last.created_at, last.id) if more and last else None,
        confirmed_total=Decimal(confirmed), currency=account.currency,
    )


# --- usage -----------------------------------------------------------------------------------------


def daily_costs(session: Session, account: Account, period: Period) -> list[DailyCost]:
    """Cost per local day of `period`, zero-filled, from the daily rollup."""
    rows = session.execute(
        select(UsageDaily.day, func.sum(UsageDaily.cost))
        .where(UsageDaily.account_id == account.id, UsageDaily.day >= period.start, UsageDaily.day < period.end)
        .group_by(UsageDaily.day)
    )
    by_day = {day: Decimal(cost) for day, cost in rows}
    return [DailyCost(day, by_day.get(day, ZERO)) for day in period.dates()]


def total_cost(session: Session, account: Account, period: Period) -> Decimal:
    value = session.scalar(
        select(func.coalesce(func.sum(UsageDaily.cost), 0))
        .where(UsageDaily.account_id == account.id, UsageDaily.day >= period.start, UsageDaily.day < period.end)
    )
    return Decimal(value or 0)


def usage_summary(session: Session, account: Account, period: Period, *, group_by: str,
                  granularity: Granularity) -> UsageSummary:
    """Cost of `period` grouped by deployment/provider/resource or any dimension, bucketed by granularity."""
    tz = ZoneInfo(account.timezone)
    if group_by not in STANDARD_GROUPS and granularity is Granularity.HOUR:
        granularity = Granularity.DAY  # dimensions are rolled up per day only
    if granularity is Granularity.HOUR:
        cells = _hourly_cells(session, account, period, group_by, tz)
    elif group_by in STANDARD_GROUPS:
        cells = _daily_cells(session, account, period, group_by)
    else:
        cells = _dimension_cells(session, account, period, group_by)
    by_resource = _resource_rows(session, account, period)
    total = sum((r.cost for r in by_resource), ZERO)
    return UsageSummary(
        account=account_info(account), period=period, group_by=group_by, granularity=granularity,
        total_cost=total, rows=_breakdown(cells, total), by_resource=by_resource,
        buckets=tuple(_buckets(period, granularity, tz)), series=tuple(_series(cells, granularity)),
        # A plan includes quantities per calendar month: measured against 30 days across two months, or a
        # week, "195 % used, overage $1,445" would be a bill nobody will get.
        plan=tuple(plan_usage(session, account, period)) if period.is_month else (),
    )


# A cell is (bucket, group label, unit, quantity, cost) before bucketing into weeks or months.
_Cell = tuple[date | datetime, str, str, Decimal, Decimal]


def _daily_cells(session: Session, account: Account, period: Period, group_by: str) -> list[_Cell]:
    """Cost per local day and group; names joined in SQL so the answer takes one round trip."""
    label, joins = _group_label(group_by, UsageDaily)
    # A unit (and so a quantity) only means something when the group is one meter; otherwise neither is
    # asked for (half the values to convert, on the question the bot asks most).
    per_meter = group_by == "resource"
    extra = (func.sum(UsageDaily.quantity), func.min(UsageDaily.unit), func.max(UsageDaily.unit)) if per_meter else ()
    stmt = select(UsageDaily.day, label, func.sum(UsageDaily.cost), *extra)
    for target, on in joins:
        stmt = stmt.outerjoin(target, on)
    rows = session.execute(
        stmt.where(UsageDaily.account_id == account.id, UsageDaily.day >= period.start, UsageDaily.day < period.end)
        .group_by(UsageDaily.day, label)
    )
    if per_meter:
        return [(r[0], r[1], r[4] if r[4] == r[5] else "", r[3], r[2]) for r in rows]
    return [(r[0], r[1], "", ZERO, r[2]) for r in rows]


def _group_label(group_by: str, table: type[UsageDaily] | type[UsageHourly]) -> tuple[Any, list[tuple[Any, Any]]]:
    """The SQL expression naming each group, and the outer joins it needs."""
    if group_by == "deployment":
        return (func.coalesce(Deployment.name, NONE_LABEL),
                [(Deployment, Deployment.id == table.deployment_id)])
    if group_by == "provider":
        return func.coalesce(Provider.name, NONE_LABEL), [(Provider, Provider.id == table.provider_id)]
    return table.meter, []


def _hourly_cells(session: Session, account: Account, period: Period, group_by: str, tz: ZoneInfo) -> list[_Cell]:
    label, joins = _group_label(group_by, UsageHourly)
    start, end = period.utc_bounds(tz)
    stmt = select(UsageHourly.hour, label, func.min(UsageHourly.unit), func.max(UsageHourly.unit),
                  func.sum(UsageHourly.quantity), func.sum(UsageHourly.cost))
    for target, on in joins:
        stmt = stmt.outerjoin(target, on)
    rows = session.execute(
        stmt.where(UsageHourly.account_id == account.id, UsageHourly.hour >= start, UsageHourly.hour < end)
        .group_by(UsageHourly.hour, label)
    )
    return [(r[0].astimezone(tz), r[1], r[2] if r[2] == r[3] else "", r[4], r[5]) for r in rows]


def _dimension_cells(session: Session, account: Account, period: Period, key: str) -> list[_Cell]:
    rows = list(session.execute(
        select(UsageDailyDimension.day, UsageDailyDimension.dim_value, func.min(UsageDailyDimension.unit),
               func.max(UsageDailyDimension.unit), func.sum(UsageDailyDimension.quantity),
               func.sum(UsageDailyDimension.cost))
        .where(UsageDailyDimension.account_id == account.id, UsageDailyDimension.dim_key == key,
               UsageDailyDimension.day >= period.start, UsageDailyDimension.day < period.end)
        .group_by(UsageDailyDimension.day, UsageDailyDimension.dim_value)
    ))
    cells: list[_Cell] = [(r[0], r[1], r[2] if r[2] == r[3] else "", Decimal(r[4]), Decimal(r[5])) for r in rows]
    # Usage without this dimension still costs money: show it as its own group so totals add up.
    tagged: dict[date, Decimal] = defaultdict(Decimal)
    for day, _g, _u, _q, cost in cells:
        assert isinstance(day, date)
        tagged[day] += cost
    for daily in daily_costs(session, account, period):
        rest = daily.cost - tagged.get(daily.day, ZERO)
        if rest:
            cells.append((daily.day, untagged_label(key), "", ZERO, rest))
    return cells


def _resource_rows(session: Session, account: Account, period: Period) -> tuple[BreakdownRow, ...]:
    """Cost per resource type (meter) over the whole period: one small aggregate, no per-day rows."""
    rows = session.execute(
        select(UsageDaily.meter, func.min(UsageDaily.unit), func.max(UsageDaily.unit), func.sum(UsageDaily.quantity),
               func.sum(UsageDaily.cost))
        .where(UsageDaily.account_id == account.id, UsageDaily.day >= period.start, UsageDaily.day < period.end)
        .group_by(UsageDaily.meter)
    )
    cells: list[_Cell] = [(period.start, r[0], r[1] if r[1] == r[2] else "", r[3], r[4]) for r in rows]
    return _breakdown(cells, None)


def _breakdown(cells: Sequence[_Cell], total: Decimal | None) -> tuple[BreakdownRow, ...]:
    cost: dict[str, Decimal] = defaultdict(Decimal)
    qty: dict[str, Decimal] = defaultdict(Decimal)
    units: dict[str, set[str]] = defaultdict(set)
    for _bucket, group, unit, quantity, c in cells:
        cost[group] += c
        qty[group] += quantity
        units[group].add(unit)
    grand = total if total is not None else sum(cost.values(), ZERO)
    rows = [
        BreakdownRow(
            key=group, cost=c, share=(c / grand) if grand else ZERO,
            quantity=qty[group] if len(units[group]) == 1 and "" not in units[group] else None,
            unit=next(iter(units[group])) if len(units[group]) == 1 and "" not in units[group] else None,
        )
        for group, c in cost.items()
    ]
    return tuple(sorted(rows, key=lambda r: (-r.cost, r.key)))


def _buckets(period: Period, granularity: Granularity, tz: ZoneInfo) -> list[date | datetime]:
    if granularity is Granularity.HOUR:
        start, end = period.utc_bounds(tz)
        hours = int((end - start).total_seconds() // 3600)
        return [(start + timedelta(hours=h)).astimezone(tz) for h in range(hours)]
    seen: dict[date, None] = {}
    for day in period.dates():
        seen.setdefault(bucket_start(day, granularity), None)
    return list(seen)


def _series(cells: Sequence[_Cell], granularity: Granularity) -> list[SeriesPoint]:
    if granularity not in (Granularity.WEEK, Granularity.MONTH):  # cells come from a GROUP BY (bucket, group)
        return [SeriesPoint(b, g, c) for b, g, _u, _q, c in sorted(cells, key=_point) if c]
    sums: dict[tuple[date | datetime, str], Decimal] = defaultdict(Decimal)
    for bucket, group, _unit, _qty, cost in cells:
        sums[(bucket_start(bucket, granularity), group)] += cost
    return [SeriesPoint(b, g, c) for (b, g), c in sorted(sums.items()) if c]


def _point(cell: _Cell) -> tuple[date | datetime, str]:
    return cell[0], cell[1]


def plan_usage(session: Session, account: Account, period: Period) -> list[PlanMeterUsage]:
    """Each plan meter: included, used in `period`, overage quantity and its cost (rounded per currency later)."""
    if account.plan_id is None:
        return []
    meters = list(session.scalars(select(PlanMeter).where(PlanMeter.plan_id == account.plan_id)
                                  .order_by(PlanMeter.meter)))
    used = dict(session.execute(
        select(UsageDaily.meter, func.sum(UsageDaily.quantity))
        .where(UsageDaily.account_id == account.id, UsageDaily.day >= period.start, UsageDaily.day < period.end,
               UsageDaily.meter.in_([m.meter for m in meters]))
        .group_by(UsageDaily.meter)
    ).all())
    result = []
    for m in meters:
        quantity = Decimal(used.get(m.meter, 0) or 0)
        over = max(quantity - m.included_quantity, ZERO)
        result.append(PlanMeterUsage(m.meter, m.unit, m.included_quantity, quantity, over, m.overage_unit_price,
                                     over * m.overage_unit_price))
    return result


# --- budgets ---------------------------------------------------------------------------------------


def budget_scope_label(budget: Budget) -> str:
    if budget.scope_kind == "all":
        return "all usage"
    if budget.scope_kind == "dimension":
        return f"{budget.scope_key} {budget.scope_value}"
    return f"{budget.scope_kind} {budget.scope_value}"


def budget_spend(session: Session, budget: Budget, period: Period) -> Decimal:
    """What the budget's scope cost in `period`, from the daily rollups."""
    if budget.scope_kind == "dimension":
        stmt = select(func.coalesce(func.sum(UsageDailyDimension.cost), 0)).where(
            UsageDailyDimension.account_id == budget.account_id, UsageDailyDimension.dim_key == budget.scope_key,
            UsageDailyDimension.dim_value == budget.scope_value,
            UsageDailyDimension.day >= period.start, UsageDailyDimension.day < period.end,
        )
        return Decimal(session.scalar(stmt) or 0)
    conditions: list[ColumnElement[bool]] = [
        UsageDaily.account_id == budget.account_id, UsageDaily.day >= period.start, UsageDaily.day < period.end,
    ]
    if budget.scope_kind == "resource":
        conditions.append(UsageDaily.meter == budget.scope_value)
    elif budget.scope_kind == "deployment":
        conditions.append(UsageDaily.deployment_id.in_(
            select(Deployment.id).where(Deployment.account_id == budget.account_id,
                                        Deployment.name == budget.scope_value)))
    elif budget.scope_kind == "provider":
        conditions.append(UsageDaily.provider_id.in_(select(Provider.id).where(Provider.name == budget.scope_value)))
    return Decimal(session.scalar(select(func.coalesce(func.sum(UsageDaily.cost), 0)).where(*conditions)) or 0)
