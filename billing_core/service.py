"""The billing service: the one door through which the bot, the jobs and the CLI ask the ledger.

Each method opens one unit of work, takes time as a parameter (`now`, an aware instant) and returns
frozen result dataclasses. Periods are computed in the account's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing_core import projections
from billing_core.db import queries, sync_models
from billing_core.db.audit import record
from billing_core.db.engine import Database
from billing_core.db.models import Account, Budget
from billing_core.errors import InvalidInput, NotFound
from billing_core.money import normalize_currency, parse_amount, round_money
from billing_core.periods import (
    Granularity,
    Period,
    add_months,
    day_fraction_elapsed,
    last_days,
    local_today,
    month_period,
    year_period,
    zone,
)
from billing_core.reconcile import reconcile as run_reconciliation
from billing_core.reconciliation import Reconciliation
from billing_core.results import (
    AccountInfo,
    AccountOverview,
    Balance,
    BudgetStatus,
    DailyCost,
    InvoiceDetail,
    InvoicePage,
    InvoiceQuery,
    PaymentPage,
    PaymentQuery,
    Projection,
    UsageSummary,
)
from billing_core.sync_status import ProviderOutage

HISTORY_DAYS = 84  # enough for the weekday factors (8 weeks) plus the level window
BUDGET_SCOPES = ("all", "deployment", "provider", "resource", "dimension")
BUDGET_PERIODS = ("month", "quarter", "year")


@dataclass(frozen=True)
class BudgetSpec:
    """A budget as a user asks for it; validated by `Billing.set_budget`."""

    name: str
    amount: Decimal
    scope_kind: str = "all"
    scope_value: str | None = None
    scope_key: str | None = None
    period: str = "month"
    thresholds: tuple[int, ...] = (50, 80, 100)
    alert_channel: str | None = None


def period_of(kind: str, today: date) -> Period:
    """The budget period of `kind` (month, quarter, year) that holds local `today`."""
    if kind == "month":
        return month_period(today)
    if kind == "quarter":
        start = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
        return Period(start, add_months(start, 3), f"Q{(today.month - 1) // 3 + 1} {today.year}")
    return year_period(today)


class Billing:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- accounts ---

    def accounts(self) -> list[AccountInfo]:
        with self.db.unit_of_work() as s:
            return queries.list_accounts(s)

    def account(self, ref: str | int) -> AccountInfo:
        with self.db.unit_of_work() as s:
            return queries.account_info(queries.get_account(s, ref))

    def add_account(self, name: str, *, currency: str, timezone: str, email: str | None = None,
                    credit: str = "0", actor: str, now: datetime) -> AccountInfo:
        """A new billing account, ready for imports, provider syncs and workspaces; audited."""
        name = " ".join(name.split())
        if not 1 <= len(name) <= 120 or name.isdigit():  # a name of digits alone would read as an account id
            raise InvalidInput(f"{name[:40]!r} cannot be an account name.", hint="1–120 characters, e.g. acme-corp")
        if email is not None and "@" not in email.strip("@"):
            raise InvalidInput(f"{email[:60]!r} is not an e-mail address.", hint="billing@example.com")
        account = Account(name=name, currency=normalize_currency(currency), timezone=zone(timezone).key,
                          credit_balance=parse_amount(credit, field="credit"), billing_email=email,
                          created_at=now)
        with self.db.unit_of_work() as s:
            # Names are looked up case-insensitively (`queries.get_account`): "Acme" and "acme" would be one.
            if s.scalar(select(Account.id).where(func.lower(Account.name) == name.lower())) is not None:
                raise InvalidInput(f"There is already an account named {name!r}.",
                                   hint="`billing-bot accounts` lists them")
            s.add(account)
            s.flush()
            record(s, actor=actor, action="account.add", entity="account", entity_id=str(account.id), at=now,
                   after={"name": name, "currency": account.currency, "timezone": account.timezone,
                          "credit_balance": account.credit_balance, "billing_email": email})
            return queries.account_info(account)

    # --- invoices and payments ---

    def invoices(self, ref: str | int, query: InvoiceQuery, *, now: datetime) -> InvoicePage:
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            return queries.list_invoices(s, account, query, today=_today(account, now))

    def invoice(self, ref: str | int, number: str, *, now: datetime) -> InvoiceDetail:
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            return queries.invoice_detail(s, account, number, today=_today(account, now))

    def invoice_details(self, ref: str | int, query: InvoiceQuery, *, now: datetime,
                        limit: int = 5000) -> list[InvoiceDetail]:
        """Every invoice matching `query` with lines and payments (bulk export), newest first."""
        details: list[InvoiceDetail] = []
        page_query = InvoiceQuery(query.statuses, query.issued_from, query.issued_to, query.search, 100, None)
        while len(details) < limit:
            page = self.invoices(ref, page_query, now=now)
            details.extend(self.invoice(ref, item.number, now=now) for item in page.items)
            if not page.next_cursor:
                break
            page_query = InvoiceQuery(query.statuses, query.issued_from, query.issued_to, query.search, 100,
                                      page.next_cursor)
        return details[:limit]

    def balance(self, ref: str | int, *, now: datetime) -> Balance:
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            return queries.balance(s, account, today=_today(account, now))

    def payments(self, ref: str | int, query: PaymentQuery) -> PaymentPage:
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            return queries.list_payments(s, account, query, tz=ZoneInfo(account.timezone))

    # --- usage and projections ---

    def today(self, ref: str | int, *, now: datetime) -> date:
        with self.db.unit_of_work() as s:
            return _today(queries.get_account(s, ref), now)

    def usage(self, ref: str | int, period: Period, *, group_by: str = "resource",
              granularity: Granularity = Granularity.DAY) -> UsageSummary:
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            return queries.usage_summary(s, account, period, group_by=group_by, granularity=granularity)

    def trend(self, ref: str | int, *, now: datetime, days: int = 30) -> list[DailyCost]:
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            return queries.daily_costs(s, account, last_days(_today(account, now), days))

    def forecast(self, ref: str | int, *, now: datetime) -> Projection:
        with self.db.unit_of_work() as s:
            return _projection(s, queries.get_account(s, ref), now)

    def backtest(self, ref: str | int, *, now: datetime) -> list[projections.BacktestRow]:
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            today = _today(account, now)
            history = queries.daily_costs(s, account, last_days(today - timedelta(days=1), 3 * 366))
            first = next((i for i, d in enumerate(history) if d.cost), len(history))
            return projections.backtest(history[first:])

    def overview(self, ref: str | int, *, now: datetime) -> AccountOverview:
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            today = _today(account, now)
            projection = _projection(s, account, now)
            month = month_period(today)
            return AccountOverview(
                account=queries.account_info(account), month=month, cost_to_date=projection.actual_to_date,
                balance=queries.balance(s, account, today=today), projection=projection,
                plan=tuple(queries.plan_usage(s, account, month)),
                deployments=tuple(d for d in queries.deployments(s, account.id) if d.status == "active"),
                recent_invoices=tuple(queries.recent_invoices(s, account, today=today)),
                trend=tuple(queries.daily_costs(s, account, last_days(today, 30))),
                oldest_unpaid=queries.oldest_unpaid(s, account, today=today),
                budgets=tuple(_budget_statuses(s, account, now, projection)),
            )

    # --- provider feeds ---

    def provider_outages(self, ref: str | int) -> list[ProviderOutage]:
        """The account's providers whose last sync failed, and since when: its figures may be incomplete."""
        with self.db.unit_of_work() as s:
            return sync_models.outages(s, queries.get_account(s, ref).id)

    def reconcile(self, ref: str | int, period: Period | None, *, actor: str,
                  now: datetime) -> Reconciliation:
        """Provider invoices vs metered usage for `period` (default: the last complete month); audited."""
        return run_reconciliation(self.db, ref, period, actor=actor, now=now)

    # --- budgets ---

    def budgets(self, ref: str | int, *, now: datetime) -> list[BudgetStatus]:
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            return _budget_statuses(s, account, now, _projection(s, account, now))

    def set_budget(self, ref: str | int, spec: BudgetSpec, *, actor: str, now: datetime) -> BudgetStatus:
        """Create or replace the budget named `spec.name` (audited)."""
        validate_budget(spec)
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            budget = s.scalar(select(Budget).where(Budget.account_id == account.id, Budget.name == spec.name))
            before = _budget_snapshot(budget) if budget else None
            if budget is None:
                budget = Budget(account_id=account.id, name=spec.name, created_at=now, amount=spec.amount)
                s.add(budget)
            budget.amount = round_money(spec.amount, account.currency)
            budget.scope_kind, budget.scope_key, budget.scope_value = spec.scope_kind, spec.scope_key, spec.scope_value
            budget.period, budget.alert_channel = spec.period, spec.alert_channel
            budget.thresholds = ",".join(str(t) for t in sorted(set(spec.thresholds)))
            s.flush()
            record(s, actor=actor, action="budget.set", entity="budget", entity_id=str(budget.id), at=now,
                   before=before, after=_budget_snapshot(budget))
            return _budget_status(s, account, budget, now, None)

    def delete_budget(self, ref: str | int, name: str, *, actor: str, now: datetime) -> None:
        with self.db.unit_of_work() as s:
            account = queries.get_account(s, ref)
            budget = s.scalar(select(Budget).where(Budget.account_id == account.id, Budget.name == name))
            if budget is None:
                raise NotFound(f"No budget named {name[:60]!r} on {account.name}.",
                               hint="`/billing budget` lists them.")
            record(s, actor=actor, action="budget.delete", entity="budget", entity_id=str(budget.id), at=now,
                   before=_budget_snapshot(budget))
            s.delete(budget)


def _today(account: Account, now: datetime) -> date:
    return local_today(now, ZoneInfo(account.timezone))


def _projection(s: Session, account: Account, now: datetime) -> Projection:
    tz = ZoneInfo(account.timezone)
    today = local_today(now, tz)
    history = queries.daily_costs(s, account, Period(today - timedelta(days=HISTORY_DAYS), today + timedelta(days=1),
                                                      "history"))
    month = month_period(today)
    previous = queries.total_cost(s, account, month.previous())
    return projections.project_month(history, today=today, day_fraction=day_fraction_elapsed(now, tz),
                                     currency=account.currency, previous_total=previous, period=month)


def _budget_statuses(s: Session, account: Account, now: datetime, projection: Projection) -> list[BudgetStatus]:
    budgets = s.scalars(select(Budget).where(Budget.account_id == account.id).order_by(Budget.name))
    return [_budget_status(s, account, b, now, projection) for b in budgets]


def _budget_status(s: Session, account: Account, budget: Budget, now: datetime,
                   projection: Projection | None) -> BudgetStatus:
    period = period_of(budget.period, _today(account, now))
    spent = queries.budget_spend(s, budget, period)
    projected = projection.projected_total if projection and budget.scope_kind == "all" \
        and budget.period == "month" else None
    return BudgetStatus(
        id=budget.id, account=account.name, name=budget.name, scope=queries.budget_scope_label(budget),
        amount=budget.amount, currency=account.currency, period=period, spent=spent, projected=projected,
        thresholds=tuple(int(t) for t in budget.thresholds.split(",") if t), alert_channel=budget.alert_channel,
    )


def _budget_snapshot(budget: Budget) -> dict[str, object]:
    return {"name": budget.name, "amount": budget.amount, "scope_kind": budget.scope_kind,
            "scope_key": budget.scope_key, "scope_value": budget.scope_value, "period": budget.period,
            "thresholds": budget.thresholds, "alert_channel": budget.alert_channel}


def validate_budget(spec: BudgetSpec) -> None:
    """The budget rules that need no database: a form checks them before its ack, `set_budget` again on save."""
    if not spec.name.strip() or len(spec.name) > 120:
        raise InvalidInput("A budget needs a name of at most 120 characters.", hint="e.g. monthly-total", field="name")
    parse_amount(spec.amount, field="amount")
    if spec.amount <= 0:
        raise InvalidInput("A budget amount must be more than zero.", hint="e.g. 5000", field="amount")
    if spec.scope_kind not in BUDGET_SCOPES:
        raise InvalidInput(f"Scope must be one of {', '.join(BUDGET_SCOPES)}.", field="scope")
    if spec.scope_kind != "all" and not spec.scope_value:
        raise InvalidInput(f"A {spec.scope_kind} budget needs a value.", hint="e.g. deployment api-prod",
                           field="scope")
    if spec.scope_kind == "dimension" and not spec.scope_key:
        raise InvalidInput("A dimension budget needs a dimension name.", hint="e.g. model gpt-4o", field="scope")
    if spec.period not in BUDGET_PERIODS:
        raise InvalidInput(f"Period must be one of {', '.join(BUDGET_PERIODS)}.", field="period")
    if not spec.thresholds or any(not 1 <= t <= 1000 for t in spec.thresholds):
        raise InvalidInput("Thresholds are percentages between 1 and 1000.", hint="e.g. 50,80,100",
                           field="thresholds")
