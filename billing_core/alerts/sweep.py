"""Budget sweep: the spend of EVERY budget in its current local period, in a handful of set-based queries.

Contract: `budget_statuses(session, now)` returns one `BudgetStatus` per budget of an active account, keyed by
account id. Periods are local to each account (month, quarter or year holding the account's today); budgets
are grouped by period, and each group is answered by one GROUP BY per scope kind over the daily rollups —
never one query per budget, so 10 000 budgets cost a few aggregate queries. `projected` is left None here:
the forecast rule fills it in for the accounts that need a projection.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, func, select
from sqlalchemy.orm import Session

from billing_core.db.models import Account, Budget, Deployment, Provider, UsageDaily, UsageDailyDimension
from billing_core.db.queries import budget_scope_label
from billing_core.periods import Period, local_today
from billing_core.results import BudgetStatus
from billing_core.service import period_of

SpendKey = tuple[Any, ...]


def budget_statuses(session: Session, now: datetime) -> dict[int, list[BudgetStatus]]:
    rows = session.execute(
        select(Budget, Account.name, Account.currency, Account.timezone)
        .join(Account, Account.id == Budget.account_id).where(Account.status == "active")
        .order_by(Budget.account_id, Budget.name)).all()
    todays: dict[str, date] = {}
    by_period: dict[Period, list[tuple[Budget, str, str]]] = defaultdict(list)
    for budget, name, currency, tz in rows:
        today = todays.setdefault(tz, local_today(now, ZoneInfo(tz)))
        by_period[period_of(budget.period, today)].append((budget, name, currency))
    found: dict[int, list[BudgetStatus]] = defaultdict(list)
    for period, budgets in by_period.items():
        spends = _spends(session, period, {b.scope_kind for b, _, _ in budgets})
        for budget, name, currency in budgets:
            spent = spends.get((budget.scope_kind, *_key(budget)), Decimal(0))
            found[budget.account_id].append(BudgetStatus(
                id=budget.id, account=name, name=budget.name, scope=budget_scope_label(budget), amount=budget.amount,
                currency=currency, period=period, spent=spent, projected=None,
                thresholds=tuple(int(t) for t in budget.thresholds.split(",") if t),
                alert_channel=budget.alert_channel))
    return dict(found)


def _key(budget: Budget) -> SpendKey:
    if budget.scope_kind == "all":
        return (budget.account_id,)
    if budget.scope_kind == "dimension":
        return (budget.account_id, budget.scope_key, budget.scope_value)
    return (budget.account_id, budget.scope_value)


def _spends(session: Session, period: Period, kinds: Iterable[str]) -> dict[SpendKey, Decimal]:
    """Spend in `period` per (scope kind, account, scope value…) for every account at once."""
    daily = (UsageDaily.day >= period.start, UsageDaily.day < period.end)
    queries: dict[str, Executable] = {
        "all": select(UsageDaily.account_id, func.sum(UsageDaily.cost)).where(*daily)
        .group_by(UsageDaily.account_id),
        "resource": select(UsageDaily.account_id, UsageDaily.meter, func.sum(UsageDaily.cost)).where(*daily)
        .group_by(UsageDaily.account_id, UsageDaily.meter),
        "deployment": select(UsageDaily.account_id, Deployment.name, func.sum(UsageDaily.cost))
        .join(Deployment, Deployment.id == UsageDaily.deployment_id).where(*daily)
        .group_by(UsageDaily.account_id, Deployment.name),
        "provider": select(UsageDaily.account_id, Provider.name, func.sum(UsageDaily.cost))
        .join(Provider, Provider.id == UsageDaily.provider_id).where(*daily)
        .group_by(UsageDaily.account_id, Provider.name),
        "dimension": select(UsageDailyDimension.account_id, UsageDailyDimension.dim_key,
                            UsageDailyDimension.dim_value, func.sum(UsageDailyDimension.cost))
        .where(UsageDailyDimension.day >= period.start, UsageDailyDimension.day < period.end)
        .group_by(UsageDailyDimension.account_id, UsageDailyDimension.dim_key, UsageDailyDimension.dim_value),
    }
    spends: dict[SpendKey, Decimal] = {}
    for kind in kinds:
        for *key, cost in session.execute(queries[kind]):
            spends[(kind, *key)] = Decimal(cost or 0)
    return spends
