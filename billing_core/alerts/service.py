"""The alert service: evaluates the rules from database state and keeps the delivery outbox.

Contract:
- `evaluate(now)` asks the billing service for each account's facts (in the account's time zone), runs the
  pure rules and stores each new alert together with its outbox entry in ONE transaction; the unique key
  (rule, subject, period, threshold) makes a second run — or a second worker — create nothing new.
- The outbox is claimed with a lease (`claim_due`): a claim that never reports back (a crash) becomes
  claimable again after the lease, flagged `ambiguous` so the sender looks in Slack before posting again.
- Acknowledge, snooze, mute, routes and quiet hours are changed here, each audited in its transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_core.alerts import rules, sweep
from billing_core.alerts.rules import AlertInfo, AlertsStatus, Candidate, DeadLetter, Quiet, Route, in_quiet_hours
from billing_core.db.alert_models import Alert, AlertDelivery, AlertMute, AlertRoute, QuietHours
from billing_core.db.audit import jsonable, record
from billing_core.db.engine import Database
from billing_core.db.models import Account, ChannelLink
from billing_core.db.queries import NONE_LABEL
from billing_core.errors import InvalidInput, NotFound
from billing_core.periods import Period, local_today, month_period, zone
from billing_core.reconciliation import Reconciliation
from billing_core.results import AccountInfo, BudgetStatus, InvoiceQuery, InvoiceStatus, InvoiceSummary
from billing_core.service import Billing

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=30)  # renewed before every Slack call (`renew_claim`): twice one call's 15 s timeout
KINDS = (*rules.RULES, "*")
MIRRORS = ("webhook", "incoming")  # outbox purposes besides Slack: signed JSON, Slack incoming web-hook
OPEN = ("open", "acknowledged")


@dataclass(frozen=True)
class EvaluationReport:
    accounts: int
    created: int
    resolved: int


@dataclass(frozen=True)
class Delivery:
    """A claimed outbox entry: post `alert` (purpose "alert"), a reply in its thread ("resolved"), or send it to
    a mirror ("webhook": signed JSON; "incoming": a Slack incoming web-hook)."""

    id: int
    alert: AlertInfo
    purpose: str
    channel: str
    attempts: int
    ambiguous: bool  # a previous attempt may have reached Slack: look before posting again


class Alerts:
    def __init__(self, db: Database, billing: Billing | None = None, *, lease: timedelta = LEASE,
                 mirrors: Sequence[str] = ()) -> None:
        self.db = db
        self.billing = billing or Billing(db)
        self.lease = lease  # how long a claim (or its renewal) is exclusive; longer than any single Slack call
        self.mirrors = tuple(m for m in mirrors if m in MIRRORS)

    # --- evaluation --------------------------------------------------------------------------------

    def evaluate(self, now: datetime, *, reminders: Sequence[int] = rules.DEFAULT_REMINDERS,
                 min_forecast_days: int = rules.FORECAST_MIN_DAYS) -> EvaluationReport:
        """Run every rule for every active account at `now`; returns how many alerts were created/resolved."""
        created = resolved = 0
        accounts = [a for a in self.billing.accounts() if a.status == "active"]
        budgets = self.budget_sweep(now)
        fired = self._fired_thresholds(now)
        for account in accounts:
            candidates = list(self._candidates(account, now, budgets.get(account.id, []), fired, reminders,
                                               min_forecast_days))
            created += self._store(account, candidates, now)
            resolved += self._resolve(account, now)
        return EvaluationReport(len(accounts), created, resolved)

    def budget_sweep(self, now: datetime) -> dict[int, list[BudgetStatus]]:
        """Every budget's spend in its current local period, set-based (see `billing_core.alerts.sweep`)."""
        with self.db.unit_of_work() as s:
            return sweep.budget_statuses(s, now)

    def _candidates(self, account: AccountInfo, now: datetime, budgets: Sequence[BudgetStatus],
                    fired: dict[tuple[int, str], list[int]], reminders: Sequence[int],
                    min_days: int) -> Iterator[Candidate]:
        today = local_today(now, ZoneInfo(account.timezone))
        yield from rules.overdue_candidates(self._overdue_invoices(account, now), today, reminders=reminders)
        for status in budgets:
            found = rules.budget_candidate(status, fired.get((status.id, status.period.start.isoformat()), ()))
            if found is not None:
                yield found
        monthly = [b for b in budgets if b.scope == "all usage" and b.period == month_period(today)]
        if monthly:  # the projection is the account's whole month: only budgets on all usage compare to it
            projection = self.billing.forecast(account.id, now=now)
            for status in monthly:
                found = rules.forecast_overrun(replace(status, projected=projection.projected_total), projection,
                                               min_days=min_days)
                if found is not None:
                    yield found
        anomaly = self._anomaly(account, now, today - timedelta(days=1))
        if anomaly:
            yield anomaly
        monday = rules.digest_due(now.astimezone(ZoneInfo(account.timezone)))
        if monday and not self._digest_stored(account, monday):  # due all week: build it only until it is stored
            yield self._digest(account, now, monday)

    def _overdue_invoices(self, account: AccountInfo, now: datetime) -> list[InvoiceSummary]:
        found: list[InvoiceSummary] = []
        query = InvoiceQuery((InvoiceStatus.OVERDUE,), limit=100)
        while True:
            page = self.billing.invoices(account.id, query, now=now)
            found.extend(page.items)
            if not page.next_cursor:
                return found
            query = replace(query, cursor=page.next_cursor)

    def _fired_thresholds(self, now: datetime) -> dict[tuple[int, str], list[int]]:
        """Budget thresholds already alerted, per (budget id, period start), for periods still current."""
        with self.db.unit_of_work() as s:
            rows = s.execute(select(Alert.subject, Alert.period, Alert.threshold).where(
                Alert.rule == "budget", Alert.is_test.is_(False), Alert.created_at > now - timedelta(days=370)))
            fired: dict[tuple[int, str], list[int]] = {}
            for subject, period, threshold in rows:
                budget_id = int(subject.rsplit(":", 1)[1])
                fired.setdefault((budget_id, period), []).append(int(threshold))
            return fired

    def _anomaly(self, account: AccountInfo, now: datetime, day: date) -> Candidate | None:
        history = self.billing.trend(account.id, now=now, days=50)
        found = rules.anomaly_candidate(history, day)
        if found is None:
            return None
        drivers = self._movers(account, Period(day, day + timedelta(days=1), "day"),
                               Period(day - timedelta(days=7), day - timedelta(days=6), "day"))
        return replace(found, payload={**found.payload, "drivers": rules.movers_payload(drivers)})

    def _movers(self, account: AccountInfo, this: Period, before: Period) -> list[tuple[str, Decimal, Decimal]]:
        """The deployments, providers and resources whose cost changed most between two periods."""
        now_cost: dict[str, Decimal] = {}
        old_cost: dict[str, Decimal] = {}
        for group in ("deployment", "provider", "resource"):
            for period, into in ((this, now_cost), (before, old_cost)):
                for row in self.billing.usage(account.id, period, group_by=group).rows:
                    if row.key != NONE_LABEL:  # "deployment (none)" explains nothing
                        into[f"{group} {row.key}"] = row.cost
        return rules.top_movers(now_cost, old_cost)

    def _digest_stored(self, account: AccountInfo, monday: date) -> bool:
        with self.db.unit_of_work() as s:
            return s.scalar(select(Alert.id).where(Alert.rule == "digest", Alert.subject == f"{account.id}/account",
                                                   Alert.period == monday.isoformat())) is not None

    def _digest(self, account: AccountInfo, now: datetime, monday: date) -> Candidate:
        last = Period(monday - timedelta(days=7), monday, "last week")
        before = Period(monday - timedelta(days=14), monday - timedelta(days=7), "week before")
        trend = self.billing.trend(account.id, now=now, days=15)
        balance = self.billing.balance(account.id, now=now)
        return rules.digest_candidate(
            monday, [d for d in trend if last.contains(d.day)], [d for d in trend if before.contains(d.day)],
            open_count=balance.open_count, outstanding=balance.outstanding, overdue=balance.overdue,
            movers=self._movers(account, last, before))

    # --- storing -----------------------------------------------------------------------------------

    def _store(self, account: AccountInfo, candidates: Sequence[Candidate], now: datetime) -> int:
        created = 0
        with self.db.unit_of_work() as s:
            held = self._held(s, account.id, now)
            for candidate in candidates:
                subject = f"{account.id}/{candidate.subject}"
                if (candidate.rule, subject) in held:
                    continue
                channel = self._channel_for(s, account.id, candidate.rule, candidate.payload)
                created += bool(self._insert(s, account, replace(candidate, subject=subject), channel, now))
        return created

    def _held(self, s: Session, account_id: int, now: datetime) -> set[tuple[str, str]]:
        """(rule, subject) pairs that get no new alerts: snoozed until later, or overdue invoices someone
        acknowledged. Per rule, because rules share subjects (anomaly and digest the account, budget and
        forecast the budget): snoozing a budget alert must not silence that budget's forecast."""
        rows = s.execute(select(Alert.rule, Alert.subject).where(
            Alert.account_id == account_id, Alert.is_test.is_(False),
            or_(Alert.snoozed_until > now, and_(Alert.rule == "overdue", Alert.status == "acknowledged"))))
        return {(rule, subject) for rule, subject in rows}

    def _channel_for(self, s: Session, account_id: int, rule: str, payload: dict[str, Any]) -> str | None:
        routes: dict[str, str] = dict(s.execute(select(AlertRoute.kind, AlertRoute.channel).where(
            AlertRoute.account_id == account_id)).all())
        if rule in routes:
            return routes[rule]
        budget_channel = payload.get("alert_channel")
        if budget_channel:
            return str(budget_channel)
        if "*" in routes:
            return routes["*"]
        return s.scalar(select(ChannelLink.channel).where(ChannelLink.account_id == account_id)
                        .order_by(ChannelLink.linked_at, ChannelLink.channel).limit(1))

    def reconciled(self, result: Reconciliation, now: datetime) -> int:
        """Alert on a reconciliation run that found discrepancies (scheduled runs call this); 0 if not news."""
        candidate = rules.reconcile_candidate(result)
        if candidate is None:
            return 0
        return self._store(self.billing.account(result.account_id), [candidate], now)

    def notify(self, s: Session, account: AccountInfo, candidate: Candidate, now: datetime) -> int:
        """Queue a billing-event notification in the caller's transaction, so the event and its alert commit
        (or fail) together; routed like every alert. 0 when it was queued before (a re-delivered event)."""
        subject = f"{account.id}/{candidate.subject}"
        channel = self._channel_for(s, account.id, candidate.rule, candidate.payload)
        return self._insert(s, account, replace(candidate, subject=subject), channel, now)

    def route_for(self, account_id: int, rule: str) -> str | None:
        """The channel an alert of `rule` for the account would be posted in (route, else linked channel)."""
        with self.db.unit_of_work() as s:
            return self._channel_for(s, account_id, rule, {})

    def _insert(self, s: Session, account: AccountInfo, c: Candidate, channel: str | None, now: datetime, *,
                is_test: bool = False) -> int:
        """Alert + outbox entry in one savepoint; 0 when the key exists (also when a racing worker won)."""
        key = (Alert.rule == c.rule, Alert.subject == c.subject, Alert.period == c.period,
               Alert.threshold == c.threshold)
        if s.scalar(select(Alert.id).where(*key)) is not None:
            return 0
        muted = channel is not None and s.get(AlertMute, (c.rule, channel)) is not None
        status = "unrouted" if channel is None else "muted" if muted and not is_test else "open"
        try:
            with s.begin_nested():
                alert = Alert(rule=c.rule, subject=c.subject, period=c.period, threshold=c.threshold,
                              account_id=account.id, payload=jsonable(c.payload), status=status, created_at=now,
                              channel=channel, is_test=is_test)
                s.add(alert)
                s.flush()
                targets = [("alert", channel)] if status == "open" and channel is not None else []
                # Mirrors (signed web-hook, Slack incoming web-hook) get every alert, routed in Slack or not.
                targets += [(mirror, mirror) for mirror in self.mirrors if status != "muted"]
                for purpose, target in targets:
                    s.add(AlertDelivery(alert_id=alert.id, purpose=purpose, channel=target, state="pending",
                                        attempts=0, next_attempt_at=now, ambiguous=False, created_at=now))
                s.flush()
        except IntegrityError:
            return 0
        return alert.id

    # --- resolution --------------------------------------------------------------------------------

    def _resolve(self, account: AccountInfo, now: datetime) -> int:
        """Overdue invoices paid or cancelled since, and forecasts back on track, get a reply in the thread."""
        with self.db.unit_of_work() as s:
            open_alerts = list(s.scalars(select(Alert).where(
                Alert.account_id == account.id, Alert.rule.in_(("overdue", "forecast")), Alert.status.in_(OPEN),
                Alert.resolved_at.is_(None), Alert.is_test.is_(False)).order_by(Alert.id)))
        latest: dict[str, Alert] = {}
        for alert in open_alerts:
            latest[alert.subject] = alert
        resolutions = {subject: self._resolution(account, alert, now) for subject, alert in latest.items()}
        done = 0
        with self.db.unit_of_work() as s:
            for subject, resolution in resolutions.items():
                if resolution is None:
                    continue
                done += 1
                for alert in s.scalars(select(Alert).where(Alert.subject == subject, Alert.rule ==
                                                           latest[subject].rule, Alert.resolved_at.is_(None))):
                    alert.resolved_at, alert.status = now, "resolved"
                target = s.get(Alert, latest[subject].id)
                assert target is not None
                target.payload = {**target.payload, "resolution": resolution}
                if target.channel and s.scalar(select(func.count(AlertDelivery.id)).where(
                        AlertDelivery.alert_id == target.id)):
                    s.add(AlertDelivery(alert_id=target.id, purpose="resolved", channel=target.channel,
                                        state="pending", attempts=0, next_attempt_at=now, ambiguous=False,
                                        created_at=now))
        return done

    def _resolution(self, account: AccountInfo, alert: Alert, now: datetime) -> dict[str, Any] | None:
        if alert.rule == "overdue":
            number = str(alert.payload.get("number"))
            try:
                detail = self.billing.invoice(account.id, number, now=now)
            except NotFound:
                return {"text": f"{number} no longer exists."}
            status = detail.summary.status
            if status is InvoiceStatus.PAID:
                paid = detail.summary.paid_at or now
                return {"kind": "paid", "number": number, "on": local_today(paid, ZoneInfo(account.timezone))
                        .isoformat()}
            if status is InvoiceStatus.CANCELLED:
                return {"kind": "cancelled", "number": number}
            return None
        projection = self.billing.forecast(account.id, now=now)
        if projection.period.start.isoformat() != alert.period:
            return None
        if rules.forecast_cleared(Decimal(str(alert.payload["amount"])), projection):
            return {"kind": "on_track", "projected": str(projection.projected_total), "high": str(projection.high)}
        return None

    # --- test alerts -------------------------------------------------------------------------------

    def send_test(self, account_id: int, rule: str, channel: str, *, actor: str, now: datetime) -> int:
        """A real alert of `rule` built from the account's current data, marked as a test, queued to `channel`."""
        if rule not in rules.RULES:
            raise InvalidInput(f"There is no alert kind {rule[:20]!r}.", hint="test " + " · test ".join(rules.RULES))
        account = self.billing.account(account_id)
        candidate = self._test_candidate(account, rule, now)
        # A nonce in the period: every test is an alert of its own, even two in the same instant.
        period = f"test-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
        candidate = replace(candidate, subject=f"{account.id}/{candidate.subject}", period=period,
                            threshold=f"test:{candidate.threshold}", payload={**candidate.payload, "test": True})
        with self.db.unit_of_work() as s:
            alert_id = self._insert(s, account, candidate, channel, now, is_test=True)
            record(s, actor=actor, action="alert.test", entity="alert", entity_id=str(alert_id), at=now,
                   detail=f"{rule} → {channel}")
        return alert_id

    def _test_candidate(self, account: AccountInfo, rule: str, now: datetime) -> Candidate:
        tz = ZoneInfo(account.timezone)
        today = local_today(now, tz)
        if rule == "overdue":
            invoices = self._overdue_invoices(account, now)
            found = rules.overdue_candidates(invoices, today)
            if not found:
                raise InvalidInput(f"{account.name} has no overdue invoice to build a test alert from.",
                                   hint="/billing alerts test budget")
            return found[0]
        if rule == "digest":
            return self._digest(account, now, today - timedelta(days=today.weekday()))
        if rule == "anomaly":
            return self._test_anomaly(account, now, today - timedelta(days=1))
        statuses = self.billing.budgets(account.id, now=now)
        if not statuses:
            raise InvalidInput(f"{account.name} has no budget to build a test alert from.",
                               hint="/billing budget set")
        status = statuses[0]
        if rule == "budget":
            crossed = status.crossed or status.thresholds[:1]
            return rules.budget_candidate(replace(status, thresholds=tuple(crossed)), ()) or Candidate(
                "budget", f"budget:{status.id}", status.period.start.isoformat(), str(crossed[0]), {
                    "budget": status.name, "scope": status.scope, "amount": str(status.amount),
                    "spent": str(status.spent), "used_pct": str(round(status.used_pct, 1)),
                    "threshold": crossed[0], "period": status.period.label, "skipped": []})
        projection = self.billing.forecast(account.id, now=now)
        return Candidate("forecast", f"budget:{status.id}", projection.period.start.isoformat(), "overrun", {
            "budget": status.name, "amount": str(status.amount), "projected": str(projection.projected_total),
            "low": str(projection.low), "high": str(projection.high), "spent": str(projection.actual_to_date),
            "days_elapsed": projection.days_elapsed, "period": projection.period.label})

    def _test_anomaly(self, account: AccountInfo, now: datetime, day: date) -> Candidate:
        history = self.billing.trend(account.id, now=now, days=50)
        baseline = rules.weekday_baseline(history, day)
        actual = next((d.cost for d in history if d.day == day), Decimal(0))
        expected = baseline.expected if baseline else actual
        drivers = self._movers(account, Period(day, day + timedelta(days=1), "day"),
                               Period(day - timedelta(days=7), day - timedelta(days=6), "day"))
        ratio = str(round(actual / expected, 2)) if expected else "1"
        return Candidate("anomaly", "account", day.isoformat(), "", {
            "day": day.isoformat(), "actual": str(actual), "expected": str(expected), "ratio": ratio,
            "drivers": rules.movers_payload(drivers)})

    # --- the outbox --------------------------------------------------------------------------------

    def claim_due(self, now: datetime, *, limit: int = 50, alert_id: int | None = None,
                  lease: timedelta | None = None) -> list[Delivery]:
        """Claim due deliveries (pending, or sending with an expired lease) for `lease` (default `self.lease`);
        oldest first. A sender that renews each claim before using it (`renew_claim`) may claim for less."""
        with self.db.unit_of_work() as s:
            stmt = select(AlertDelivery).where(AlertDelivery.state.in_(("pending", "sending")),
                                               AlertDelivery.next_attempt_at <= now)
            if alert_id is not None:
                stmt = stmt.where(AlertDelivery.alert_id == alert_id)
            rows = list(s.scalars(stmt.order_by(AlertDelivery.next_attempt_at, AlertDelivery.id).limit(limit)))
            quiet = {q.channel: Quiet(q.channel, q.start_hour, q.end_hour, q.timezone)
                     for q in s.scalars(select(QuietHours).where(QuietHours.channel.in_({r.channel for r in rows})))}
            claimed = []
            for row in rows:
                job = self._claim(s, row, quiet.get(row.channel), now, lease or self.lease)
                if job is not None:
                    claimed.append(job)
            return claimed

    def _claim(self, s: Session, row: AlertDelivery, quiet: Quiet | None, now: datetime,
               lease: timedelta) -> Delivery | None:
        alert = s.get(Alert, row.alert_id)
        assert alert is not None
        wait_until = in_quiet_hours(quiet, now) if quiet and not alert.is_test else None
        if row.purpose == "resolved" and alert.message_ts is None:
            parent = s.scalar(select(AlertDelivery.state).where(AlertDelivery.alert_id == alert.id,
                                                                 AlertDelivery.purpose == "alert"))
            if parent == "dead":
                row.state, row.last_error = "dead", "the alert itself was never posted"
                return None
            wait_until = now + timedelta(seconds=30)  # the reply needs the alert's ts: after the alert is sent
        if wait_until is not None:
            s.execute(update(AlertDelivery).where(AlertDelivery.id == row.id).values(next_attempt_at=wait_until))
            return None
        ambiguous = row.ambiguous or row.state == "sending"
        # Optimistic claim: only one worker's UPDATE matches the state and time it read.
        won = s.execute(update(AlertDelivery).where(
            AlertDelivery.id == row.id, AlertDelivery.state == row.state,
            AlertDelivery.next_attempt_at == row.next_attempt_at, AlertDelivery.attempts == row.attempts,
        ).values(state="sending", attempts=row.attempts + 1, next_attempt_at=now + lease, ambiguous=ambiguous)
            .execution_options(synchronize_session=False))
        if won.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return Delivery(row.id, _info(s, alert), row.purpose, row.channel, row.attempts + 1, ambiguous)

    def renew_claim(self, delivery_id: int, attempts: int, *, now: datetime) -> bool:
        """Extend a claim by `self.lease` if it is still the caller's: False once another worker re-claimed it
        after it lapsed (every claim bumps `attempts`), and then the caller must not send it."""
        with self.db.unit_of_work() as s:
            won = s.execute(update(AlertDelivery).where(
                AlertDelivery.id == delivery_id, AlertDelivery.state == "sending", AlertDelivery.attempts == attempts,
            ).values(next_attempt_at=now + self.lease).execution_options(synchronize_session=False))
            return int(won.rowcount) == 1  # type: ignore[attr-defined]

    def record_sent(self, delivery_id: int, ts: str, *, now: datetime) -> None:
        with self.db.unit_of_work() as s:
            row = s.get(AlertDelivery, delivery_id)
            assert row is not None
            row.state, row.message_ts, row.sent_at, row.ambiguous, row.last_error = "sent", ts, now, False, None
            if row.purpose == "alert":
                alert = s.get(Alert, row.alert_id)
                assert alert is not None
                alert.channel, alert.message_ts = row.channel, ts

    def retry(self, delivery_id: int, error: str, *, at: datetime, ambiguous: bool, now: datetime) -> bool:
        """Back to pending until `at`; dead after `MAX_ATTEMPTS`. Returns False when it was dead-lettered."""
        with self.db.unit_of_work() as s:
            row = s.get(AlertDelivery, delivery_id)
            assert row is not None
            if row.attempts >= MAX_ATTEMPTS:
                row.state, row.last_error = "dead", f"gave up after {row.attempts} attempts: {error}"
                return False
            row.state, row.next_attempt_at, row.last_error = "pending", at, error
            row.ambiguous = row.ambiguous or ambiguous
            return True

    def give_up(self, delivery_id: int, error: str) -> None:
        with self.db.unit_of_work() as s:
            row = s.get(AlertDelivery, delivery_id)
            assert row is not None
            row.state, row.last_error, row.ambiguous = "dead", error, False

    def requeue_dead(self, account_id: int, *, actor: str, now: datetime) -> int:
        """Give the account's dead letters a fresh start (after the bot was invited, say); audited."""
        with self.db.unit_of_work() as s:
            mine = select(Alert.id).where(Alert.account_id == account_id)
            rows = list(s.scalars(select(AlertDelivery).where(AlertDelivery.state == "dead",
                                                              AlertDelivery.alert_id.in_(mine))))
            for row in rows:
                # Not ambiguous: a dead letter was refused by Slack or the receiver, never half-sent.
                row.state, row.attempts, row.next_attempt_at, row.ambiguous = "pending", 0, now, False
            if rows:
                record(s, actor=actor, action="alert.retry_dead", entity="account", entity_id=str(account_id),
                       at=now, detail=f"{len(rows)} deliveries")
            return len(rows)

    def pending_count(self) -> int:
        with self.db.unit_of_work() as s:
            return int(s.scalar(select(func.count(AlertDelivery.id)).where(
                AlertDelivery.state.in_(("pending", "sending")))) or 0)

    def next_due(self) -> datetime | None:
        with self.db.unit_of_work() as s:
            return s.scalar(select(func.min(AlertDelivery.next_attempt_at)).where(
                AlertDelivery.state.in_(("pending", "sending"))))

    # --- acting on an alert ------------------------------------------------------------------------

    def alert(self, alert_id: int) -> AlertInfo:
        with self.db.unit_of_work() as s:
            return _info(s, _get(s, alert_id))

    def acknowledge(self, alert_id: int, *, member: str, actor: str, now: datetime) -> AlertInfo:
        """Mark acknowledged (idempotent: the first acknowledgement stands); stops overdue reminders."""
        with self.db.unit_of_work() as s:
            alert = _get(s, alert_id)
            if alert.acknowledged_at is None:
                alert.acknowledged_by, alert.acknowledged_at = member, now
                if alert.status == "open":
                    alert.status = "acknowledged"
                record(s, actor=actor, action="alert.acknowledge", entity="alert", entity_id=str(alert.id), at=now,
                       after={"subject": alert.subject, "rule": alert.rule})
            return _info(s, alert)

    def snooze(self, alert_id: int, *, until: datetime, actor: str, now: datetime) -> AlertInfo:
        with self.db.unit_of_work() as s:
            alert = _get(s, alert_id)
            before = {"snoozed_until": alert.snoozed_until}
            alert.snoozed_until = until
            record(s, actor=actor, action="alert.snooze", entity="alert", entity_id=str(alert.id), at=now,
                   before=before, after={"snoozed_until": until, "subject": alert.subject})
            return _info(s, alert)

    def mute(self, rule: str, channel: str, *, actor: str, now: datetime) -> None:
        with self.db.unit_of_work() as s:
            if s.get(AlertMute, (rule, channel)) is None:
                s.add(AlertMute(rule=rule, channel=channel, muted_by=actor[:120], muted_at=now))
                record(s, actor=actor, action="alert.mute", entity="channel", entity_id=channel, at=now,
                       after={"rule": rule})

    def unmute(self, rule: str, channel: str, *, actor: str, now: datetime) -> None:
        with self.db.unit_of_work() as s:
            mute = s.get(AlertMute, (rule, channel))
            if mute is None:
                raise NotFound(f"{rule} alerts are not muted in <#{channel}>.", hint="/billing alerts status")
            s.delete(mute)
            record(s, actor=actor, action="alert.unmute", entity="channel", entity_id=channel, at=now,
                   before={"rule": rule})

    # --- routes and quiet hours --------------------------------------------------------------------

    def set_route(self, account_id: int, kind: str, channel: str | None, *, actor: str, now: datetime) -> None:
        """Send `kind` alerts of the account to `channel` (None removes the route); "*" is the default."""
        if kind not in KINDS:
            raise InvalidInput(f"There is no alert kind {kind[:20]!r}.", hint="route " + " · ".join(rules.RULES))
        with self.db.unit_of_work() as s:
            row = s.get(AlertRoute, (account_id, kind))
            before = {"channel": row.channel} if row else None
            if channel is None:
                if row is None:
                    raise NotFound(f"There is no route for {kind} alerts.", hint="/billing alerts")
                s.delete(row)
            elif row is None:
                s.add(AlertRoute(account_id=account_id, kind=kind, channel=channel, set_by=actor[:120], set_at=now))
            else:
                row.channel, row.set_by, row.set_at = channel, actor[:120], now
            record(s, actor=actor, action="alert.route", entity="account", entity_id=str(account_id), at=now,
                   before=before, after={"kind": kind, "channel": channel})

    def set_quiet_hours(self, channel: str, hours: tuple[int, int] | None, timezone: str, *, actor: str,
                        now: datetime) -> None:
        zone(timezone)
        with self.db.unit_of_work() as s:
            row = s.get(QuietHours, channel)
            before = {"start": row.start_hour, "end": row.end_hour, "tz": row.timezone} if row else None
            if hours is None:
                if row is not None:
                    s.delete(row)
            elif row is None:
                s.add(QuietHours(channel=channel, start_hour=hours[0], end_hour=hours[1], timezone=timezone,
                                 set_by=actor[:120], set_at=now))
            else:
                row.start_hour, row.end_hour, row.timezone, row.set_by, row.set_at = (*hours, timezone, actor[:120],
                                                                                       now)
            record(s, actor=actor, action="alert.quiet_hours", entity="channel", entity_id=channel, at=now,
                   before=before, after={"start": hours[0], "end": hours[1], "tz": timezone} if hours else None)

    def status(self, account_id: int) -> AlertsStatus:
        account = self.billing.account(account_id)
        with self.db.unit_of_work() as s:
            routes = tuple(Route(r.kind, r.channel) for r in s.scalars(
                select(AlertRoute).where(AlertRoute.account_id == account_id).order_by(AlertRoute.kind)))
            default = self._channel_for(s, account_id, "__default__", {})
            posted_in = set(s.scalars(select(Alert.channel).where(Alert.account_id == account_id,
                                                                  Alert.channel.is_not(None)).distinct()))
            # Only this account's channels: another workspace's mutes and quiet hours are none of its business.
            channels = {r.channel for r in routes} | ({default} if default else set()) | posted_in
            quiet = tuple(Quiet(q.channel, q.start_hour, q.end_hour, q.timezone) for q in s.scalars(
                select(QuietHours).where(QuietHours.channel.in_(channels))))
            mutes = tuple((m.rule, m.channel) for m in s.scalars(
                select(AlertMute).where(AlertMute.channel.in_(channels)).order_by(AlertMute.rule)))
            mine = select(Alert.id).where(Alert.account_id == account_id)
            dead_rows = s.execute(
                select(AlertDelivery, Alert.rule).join(Alert, Alert.id == AlertDelivery.alert_id)
                .where(AlertDelivery.state == "dead", AlertDelivery.alert_id.in_(mine))
                .order_by(AlertDelivery.id.desc()).limit(10))
            dead = tuple(DeadLetter(d.alert_id, rule, d.channel, d.last_error or "", d.attempts)
                         for d, rule in dead_rows)
            pending = int(s.scalar(select(func.count(AlertDelivery.id)).where(
                AlertDelivery.state.in_(("pending", "sending")), AlertDelivery.alert_id.in_(mine))) or 0)
            recent = tuple(_info(s, a) for a in s.scalars(
                select(Alert).where(Alert.account_id == account_id).order_by(Alert.id.desc()).limit(5)))
            return AlertsStatus(account, routes, default, quiet, mutes, dead, pending, recent)


def _get(s: Session, alert_id: int) -> Alert:
    alert = s.get(Alert, alert_id)
    if alert is None:
        raise NotFound("That alert no longer exists.", hint="/billing alerts status")
    return alert


def _info(s: Session, alert: Alert) -> AlertInfo:
    account = s.get(Account, alert.account_id)
    assert account is not None
    return AlertInfo(
        id=alert.id, rule=alert.rule, subject=alert.subject, account_id=account.id, account=account.name,
        currency=account.currency, timezone=account.timezone, payload=dict(alert.payload), status=alert.status,
        is_test=alert.is_test, created_at=alert.created_at, channel=alert.channel, message_ts=alert.message_ts,
        acknowledged_by=alert.acknowledged_by, acknowledged_at=alert.acknowledged_at,
        snoozed_until=alert.snoozed_until,
    )
