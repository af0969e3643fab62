"""Alert rules as pure functions: facts of one account in, alert candidates out. No I/O, no clock.

Every date here is a LOCAL date of the account (the caller turns `now` into `today` in the account's
zone), so "the day after the due date" and "Monday morning" mean the account's day, not UTC's.
A candidate's key (rule, subject, period, threshold) is what makes an alert unique: the service stores
each key once, so evaluating the same facts again creates nothing new.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from billing_core.reconciliation import Reconciliation
from billing_core.results import (
    AccountInfo,
    BudgetStatus,
    DailyCost,
    InvoiceStatus,
    InvoiceSummary,
    PaymentInfo,
    PaymentStatus,
    Projection,
)

EVENT_RULES = ("invoice", "payment")  # notifications of billing events as they arrive (web-hooks)
RULES = ("overdue", "budget", "forecast", "anomaly", "digest", "reconcile", *EVENT_RULES)
RECONCILE_LINES = 8  # discrepancy lines shown in the alert; the full list is `/billing reconcile`'s CSV
DEFAULT_REMINDERS = (3, 7, 14)  # days after the first overdue alert
FORECAST_MIN_DAYS = 7  # the projection's interval is too wide to act on before a week of data
FORECAST_CLEAR_MARGIN = Decimal("0.05")  # "back on track" only when the high bound is 5 % under the budget
ANOMALY_RATIO = Decimal("1.5")  # a day at 1.5 × its expected cost…
ANOMALY_SIGMAS = Decimal(3)  # …and 3 robust standard deviations above it
ANOMALY_MIN_WEEKS = 3  # same-weekday samples needed before a baseline is trusted
DIGEST_HOUR = 9  # from Monday 09:00 local


@dataclass(frozen=True)
class Candidate:
    """An alert the rules want to exist; `payload` is JSON-ready (money as exact strings)."""

    rule: str
    subject: str
    period: str
    threshold: str
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.rule, self.subject, self.period, self.threshold)


@dataclass(frozen=True)
class AlertInfo:
    """A stored alert as views and jobs see it."""

    id: int
    rule: str
    subject: str
    account_id: int
    account: str
    currency: str
    timezone: str
    payload: dict[str, Any]
    status: str
    is_test: bool
    created_at: datetime
    channel: str | None
    message_ts: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    snoozed_until: datetime | None


@dataclass(frozen=True)
class DeadLetter:
    alert_id: int
    rule: str
    channel: str
    error: str
    attempts: int


@dataclass(frozen=True)
class Route:
    kind: str
    channel: str


@dataclass(frozen=True)
class Quiet:
    channel: str
    start_hour: int
    end_hour: int
    timezone: str


@dataclass(frozen=True)
class AlertsStatus:
    account: AccountInfo
    routes: tuple[Route, ...]
    default_channel: str | None  # the linked channel used when no route matches
    quiet: tuple[Quiet, ...]
    mutes: tuple[tuple[str, str], ...]  # (rule, channel)
    dead: tuple[DeadLetter, ...]
    pending: int
    recent: tuple[AlertInfo, ...]


def in_quiet_hours(q: Quiet, now: datetime) -> datetime | None:
    """When quiet hours covering `now` end (a UTC instant), or None if `now` is not inside them."""
    tz = ZoneInfo(q.timezone)
    local = now.astimezone(tz)
    h = local.hour
    inside = q.start_hour <= h < q.end_hour if q.start_hour < q.end_hour else (h >= q.start_hour or h < q.end_hour)
    if not inside or q.start_hour == q.end_hour:
        return None
    end_day = local.date() if h < q.end_hour else local.date() + timedelta(days=1)
    return datetime(end_day.year, end_day.month, end_day.day, q.end_hour, tzinfo=tz).astimezone(now.tzinfo)


# --- overdue invoices ------------------------------------------------------------------------------


def overdue_stage(due: date, today: date, reminders: Sequence[int] = DEFAULT_REMINDERS) -> int | None:
    """The latest alert stage reached: 0 the day after the due date, then each reminder (days later).

    Only the latest stage is returned, so a worker that was down for a week posts one reminder, not three.
    """
    late = (today - due).days - 1
    if late < 0:
        return None
    return max((r for r in (0, *reminders) if r <= late), default=0)


def overdue_candidates(invoices: Sequence[InvoiceSummary], today: date, *,
                       reminders: Sequence[int] = DEFAULT_REMINDERS) -> list[Candidate]:
    found = []
    for inv in invoices:
        if inv.status is not InvoiceStatus.OVERDUE:
            continue
        stage = overdue_stage(inv.due_date, today, reminders)
        if stage is None:
            continue
        found.append(Candidate("overdue", f"invoice:{inv.number}", inv.due_date.isoformat(), str(stage), {
            "number": inv.number, "amount_due": str(inv.amount_due), "total": str(inv.total),
            "due_date": inv.due_date.isoformat(), "days_overdue": (today - inv.due_date).days,
            "reminder": stage > 0, "payment_url": inv.payment_url,
        }))
    return found


# --- budgets ---------------------------------------------------------------------------------------


def budget_candidate(status: BudgetStatus, fired: Sequence[int] = ()) -> Candidate | None:
    """The most severe threshold crossed this period, if it is above every threshold already fired.

    Several thresholds crossed at once give one alert (the highest); a lower one never follows a higher one.
    """
    crossed = status.crossed
    if not crossed or max(crossed) <= max(fired, default=0):
        return None
    top = max(crossed)
    return Candidate("budget", f"budget:{status.id}", status.period.start.isoformat(), str(top), {
        "budget": status.name, "scope": status.scope, "amount": str(status.amount), "spent": str(status.spent),
        "used_pct": str(round(status.used_pct, 1)), "threshold": top, "period": status.period.label,
        "skipped": [t for t in crossed if t < top and t > max(fired, default=0)],
        "alert_channel": status.alert_channel,
    })


# --- forecast overrun ------------------------------------------------------------------------------


def forecast_overrun(status: BudgetStatus, projection: Projection, *,
                     min_days: int = FORECAST_MIN_DAYS) -> Candidate | None:
    """The month-end projection's LOW bound is above the budget, after `min_days` days of data.

    Using the low bound (not the point estimate) is the first half of the hysteresis: a wobbling forecast
    around the budget does not fire. The key holds the month, so it fires at most once per month.
    """
    if status.projected is None or projection.days_elapsed < min_days or projection.low <= status.amount:
        return None
    return Candidate("forecast", f"budget:{status.id}", projection.period.start.isoformat(), "overrun", {
        "budget": status.name, "amount": str(status.amount), "projected": str(projection.projected_total),
        "low": str(projection.low), "high": str(projection.high), "spent": str(projection.actual_to_date),
        "days_elapsed": projection.days_elapsed, "period": projection.period.label,
        "alert_channel": status.alert_channel,
    })


def forecast_cleared(amount: Decimal, projection: Projection) -> bool:
    """The second half of the hysteresis: "back on track" only when even the HIGH bound is well under."""
    return projection.high < amount * (1 - FORECAST_CLEAR_MARGIN)


# --- anomalies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    expected: Decimal
    spread: Decimal  # robust standard deviation (1.4826 × MAD) of the same-weekday samples


def weekday_baseline(history: Sequence[DailyCost], day: date, weeks: int = 6) -> Baseline | None:
    """Expected cost of `day` from the same weekday of the previous `weeks` weeks (median, MAD)."""
    by_day = {d.day: d.cost for d in history}
    samples = [by_day[d] for d in (day - timedelta(weeks=w) for w in range(1, weeks + 1)) if d in by_day]
    if len(samples) < ANOMALY_MIN_WEEKS:
        return None
    median = statistics.median(samples)
    mad = statistics.median([abs(s - median) for s in samples])
    return Baseline(median, mad * Decimal("1.4826"))


def anomaly_candidate(history: Sequence[DailyCost], day: date) -> Candidate | None:
    """`day` (a complete local day) cost far above its weekday-aware expectation."""
    actual = next((d.cost for d in history if d.day == day), None)
    baseline = weekday_baseline(history, day)
    if actual is None or baseline is None or baseline.expected <= 0:
        return None
    # A floor on the spread: a perfectly flat history would make any cent "infinitely" anomalous.
    spread = max(baseline.spread, baseline.expected * Decimal("0.05"))
    if actual < baseline.expected * ANOMALY_RATIO or actual - baseline.expected < ANOMALY_SIGMAS * spread:
        return None
    return Candidate("anomaly", "account", day.isoformat(), "", {
        "day": day.isoformat(), "actual": str(actual), "expected": str(baseline.expected),
        "ratio": str(round(actual / baseline.expected, 2)),
    })


# --- weekly digest ---------------------------------------------------------------------------------


def digest_due(local_now: datetime) -> date | None:
    """The Monday of `local_now`'s ISO week once its digest is due (from Monday 09:00 local), else None.

    Due for the rest of the week, not only on Monday: a worker down all Monday still posts it when it is back.
    The key holds the Monday, so it is posted once per week however often this says it is due.
    """
    if local_now.weekday() == 0 and local_now.hour < DIGEST_HOUR:
        return None
    return local_now.date() - timedelta(days=local_now.weekday())


def digest_candidate(monday: date, last_week: Sequence[DailyCost], week_before: Sequence[DailyCost], *,
                     open_count: int, outstanding: Decimal, overdue: Decimal,
                     movers: Sequence[tuple[str, Decimal, Decimal]]) -> Candidate:
    """A summary of the week before `monday`: its cost, the change, top movers and open invoices."""
    total = sum((d.cost for d in last_week), Decimal(0))
    before = sum((d.cost for d in week_before), Decimal(0))
    change = ((total - before) / before * 100).quantize(Decimal("0.1")) if before else None
    return Candidate("digest", "account", monday.isoformat(), "", {
        "week_start": (monday - timedelta(days=7)).isoformat(), "week_end": (monday - timedelta(days=1)).isoformat(),
        "total": str(total), "previous": str(before), "change_pct": None if change is None else str(change),
        "open_count": open_count, "outstanding": str(outstanding), "overdue": str(overdue),
        "movers": movers_payload(movers),
    })


def movers_payload(movers: Sequence[tuple[str, Decimal, Decimal]]) -> list[dict[str, str]]:
    return [{"name": n, "cost": str(c), "delta": str(d)} for n, c, d in movers]


def top_movers(this_week: dict[str, Decimal], last_week: dict[str, Decimal],
               n: int = 3) -> list[tuple[str, Decimal, Decimal]]:
    """The `n` groups whose cost changed most (either way) between two periods: (name, cost, change)."""
    names = set(this_week) | set(last_week)
    rows = [(k, this_week.get(k, Decimal(0)), this_week.get(k, Decimal(0)) - last_week.get(k, Decimal(0)))
            for k in names]
    return sorted(rows, key=lambda r: (-abs(r[2]), r[0]))[:n]


# --- billing events (web-hooks) -------------------------------------------------------------------


def invoice_issued_candidate(invoice: InvoiceSummary) -> Candidate | None:
    """An issued invoice, announced once (its PDF goes into the thread); drafts and voids are not news, and
    neither is one already paid (its issue event arrived after its payment, whose notice told the story)."""
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED, InvoiceStatus.PAID):
        return None
    return Candidate("invoice", f"invoice/{invoice.number}", "issued", "", _invoice_payload(invoice))


def payment_candidate(payment: PaymentInfo, invoice: InvoiceSummary | None) -> Candidate | None:
    """A payment received or failed, once per payment and outcome; a failure carries the invoice's Pay link."""
    if payment.status is PaymentStatus.PENDING:
        return None
    payload: dict[str, Any] = {"outcome": payment.status.value, "amount": payment.amount,
                               "method": payment.method.value, "receipt": payment.receipt_number,
                               "paid_at": payment.paid_at, "explorer_url": payment.explorer_url}
    if invoice is not None:
        payload |= _invoice_payload(invoice)
    return Candidate("payment", f"payment/{payment.id}", payment.status.value, "", payload)


def invoice_payment_failed_candidate(invoice: InvoiceSummary, attempt: str) -> Candidate:
    """The provider could not collect an invoice (no payment row of ours): one alert per collection attempt."""
    return Candidate("payment", f"invoice/{invoice.number}", "failed", attempt[:40],
                     {"outcome": "failed", **_invoice_payload(invoice)})


def _invoice_payload(invoice: InvoiceSummary) -> dict[str, Any]:
    return {"number": invoice.number, "total": invoice.total, "amount_due": invoice.amount_due,
            "issue_date": invoice.issue_date, "due_date": invoice.due_date, "payment_url": invoice.payment_url}


# --- reconciliation -------------------------------------------------------------------------------


def reconcile_candidate(result: Reconciliation) -> Candidate | None:
    """Provider invoices that disagree with metered usage beyond the tolerance: one alert per account, period
    and set of discrepancies (a run that finds the same lines again is not news; a changed finding is)."""
    if result.clean:
        return None
    found = sorted(result.discrepancies, key=lambda d: abs(d.difference), reverse=True)
    fingerprint = ";".join(f"{d.provider}/{d.meter}/{d.kind.value}/{d.difference}" for d in found)
    lines = [{"provider": d.provider, "meter": d.meter, "kind": d.kind.value, "billed": d.billed.amount,
              "metered": d.metered.amount, "difference": d.difference} for d in found[:RECONCILE_LINES]]
    return Candidate("reconcile", "reconcile", result.period.start.isoformat(),
                     hashlib.sha256(fingerprint.encode()).hexdigest()[:16],
                     {"period": result.period.label, "count": len(found), "billed_total": result.billed_total,
                      "metered_total": result.metered_total, "tolerance_pct": result.tolerance * 100,
                      "invoices": list(result.invoices), "lines": lines})
