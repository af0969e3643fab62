"""`billing-bot worker`: the scheduler process — alert evaluation and delivery, provider sync and daily
reconciliation, with one leader at a time.

Contract:
- Every job is registered in `schedule(scheduler, deps)` with an explicit id, `replace_existing=True`,
  `coalesce=True`, `max_instances=1` and a `misfire_grace_time`; each job computes from database state, so a
  run missed during a deploy is caught up by the next one (nothing is kept in process memory).
- Only the leader runs jobs. On PostgreSQL the leader holds `pg_try_advisory_lock(LOCK_KEY)` on a connection of
  its own for as long as it leads; a second worker is a hot standby that retries every few seconds and takes
  over when the leader's connection (and so its lock) goes away. On SQLite the lock is trivially granted: the
  same code path, for the single worker SQLite supports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from slack_sdk.oauth.installation_store import InstallationStore
from sqlalchemy import Connection, text

from billing_core.alerts.rules import DEFAULT_REMINDERS, FORECAST_MIN_DAYS
from billing_core.alerts.service import Alerts
from billing_core.db.engine import Database
from billing_core.reconcile import reconcile_billed_accounts, summary_line
from billing_core.service import Billing
from billing_core.sources.sync import sync_all
from billing_core.tenancy import Tenancy
from bot.jobs.delivery import Deliverer, delivery_client
from bot.jobs.webhooks import WebhookTargets
from bot.jobs.workspaces import InstalledWorkspaces

log = logging.getLogger("billing_bot.worker")

LOCK_KEY = 0x0B111_A1E27  # one advisory lock id for "the billing worker leader"
STANDBY_RETRY_S = 5.0
EVALUATE_EVERY_S = 300
DELIVER_EVERY_S = 2
LEADER_CHECK_EVERY_S = 15
SYNC_EVERY_S = 15 * 60
RECONCILE_EVERY_S = 24 * 3600


class Leadership:
    """Who runs the jobs: the holder of a PostgreSQL advisory lock (always granted on SQLite)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        if self.db.dialect != "postgresql":
            return True
        if self._conn is None:
            self._conn = self.db.engine.connect()
        won = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar())
        self._conn.commit()  # the lock is session-level: it outlives this transaction, not the connection
        if not won:
            self.release()
        return won

    def still_leading(self) -> bool:
        """False when the lock connection broke: the lock is gone and a standby may already lead."""
        if self.db.dialect != "postgresql":
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:
            log.exception("lost the leader connection")
            return False

    def wait(self, stop: threading.Event, *, retry_s: float = STANDBY_RETRY_S) -> bool:
        """Block as a standby until leading (True) or until `stop` is set (False)."""
        while not stop.is_set():
            if self.try_acquire():
                return True
            log.info("another worker leads; standing by (retry in %.0f s)", retry_s)
            stop.wait(retry_s)
        return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                # Invalidate, not close: a pooled connection would keep the session (and its lock) alive.
                self._conn.invalidate()
                self._conn.close()
            finally:
                self._conn = None


@dataclass(frozen=True)
class RuleTuning:
    """The configurable parts of the rules: overdue reminder days, days of data before a forecast alert."""

    reminders: tuple[int, ...] = DEFAULT_REMINDERS
    forecast_min_days: int = FORECAST_MIN_DAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RuleTuning:
        """ALERT_OVERDUE_REMINDERS="3,7,14" and ALERT_FORECAST_MIN_DAYS="7"; a bad value stops the worker."""
        raw = env.get("ALERT_OVERDUE_REMINDERS", ",".join(map(str, DEFAULT_REMINDERS)))
        days = env.get("ALERT_FORECAST_MIN_DAYS", str(FORECAST_MIN_DAYS))
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not all(p.isdigit() and 0 < int(p) <= 365 for p in parts) or not (days.isdigit() and 1 <= int(days) <= 28):
            raise SystemExit("ALERT_OVERDUE_REMINDERS is days after the first overdue alert (e.g. 3,7,14) and "
                             "ALERT_FORECAST_MIN_DAYS a number of days from 1 to 28.")
        return cls(tuple(sorted({int(p) for p in parts})), int(days))


@dataclass
class WorkerDeps:
    """What the jobs need: the database, the services, a Slack client without retry handlers, the clock."""

    db: Database
    alerts: Alerts
    deliverer: Deliverer
    leadership: Leadership
    clock: Callable[[], datetime]
    tuning: RuleTuning = field(default_factory=RuleTuning)

    @classmethod
    def build(cls, db: Database, *, token: str | None, api_url: str, clock: Callable[[], datetime],
              webhooks: WebhookTargets | None = None, tuning: RuleTuning | None = None,
              installations: InstallationStore | None = None) -> WorkerDeps:
        """`token` posts every alert in one workspace; with `installations` (OAuth installs) each alert is
        posted by the bot of its own workspace instead."""
        targets = webhooks or WebhookTargets()
        billing = Billing(db)
        alerts = Alerts(db, billing, mirrors=targets.mirrors)
        workspaces = None if installations is None else \
            InstalledWorkspaces(Tenancy(db), installations, lambda bot_token: delivery_client(bot_token, api_url))
        deliverer = Deliverer(alerts, billing, delivery_client(token, api_url), clock=clock, webhooks=targets,
                              workspaces=workspaces)
        return cls(db, alerts, deliverer, Leadership(db), clock, tuning or RuleTuning())


def evaluate_alerts(deps: WorkerDeps) -> None:
    report = deps.alerts.evaluate(deps.clock(), reminders=deps.tuning.reminders,
                                  min_forecast_days=deps.tuning.forecast_min_days)
    if report.created or report.resolved:
        log.info("alerts: %s created, %s resolved over %s accounts", report.created, report.resolved, report.accounts)


def deliver_alerts(deps: WorkerDeps) -> None:
    tally = deps.deliverer.run_once()
    if tally.sent or tally.found or tally.retried or tally.dead:
        log.info("delivery: %s", tally)


def sync_providers(deps: WorkerDeps) -> None:
    """Incremental provider API sync; a provider's failure is recorded on its endpoint, never raised here."""
    for status in sync_all(deps.db, deps.clock()):
        if not status.ok:
            log.warning("sync %s/%s %s: %s", status.provider, status.account, status.status, status.reason)


def reconcile_accounts(deps: WorkerDeps) -> None:
    """Daily: every billed account's invoices against its metered usage; discrepancies over the tolerance
    become alerts (once per finding: `Alerts.reconciled`)."""
    now = deps.clock()
    for result in reconcile_billed_accounts(deps.db, actor="worker", now=now):
        if deps.alerts.reconciled(result, now):
            log.info("reconciliation: %s", summary_line(result))


def check_leadership(deps: WorkerDeps, scheduler: BaseScheduler) -> None:
    if not deps.leadership.still_leading():
        log.error("leadership lost: stopping so a standby takes over and this process restarts as one")
        scheduler.shutdown(wait=False)


def schedule(scheduler: BaseScheduler, deps: WorkerDeps) -> None:
    """Every job of the worker, in one place."""
    common: dict[str, Any] = {"replace_existing": True, "coalesce": True, "max_instances": 1}
    scheduler.add_job(evaluate_alerts, "interval", seconds=EVALUATE_EVERY_S, id="alerts.evaluate", args=[deps],
                      next_run_time=deps.clock(), misfire_grace_time=EVALUATE_EVERY_S, **common)
    scheduler.add_job(deliver_alerts, "interval", seconds=DELIVER_EVERY_S, id="alerts.deliver", args=[deps],
                      misfire_grace_time=30, **common)
    scheduler.add_job(sync_providers, "interval", seconds=SYNC_EVERY_S, id="sources.sync", args=[deps],
                      next_run_time=deps.clock(), misfire_grace_time=SYNC_EVERY_S, **common)
    scheduler.add_job(reconcile_accounts, "interval", seconds=RECONCILE_EVERY_S, id="sources.reconcile",
                      args=[deps], next_run_time=deps.clock(), misfire_grace_time=RECONCILE_EVERY_S, **common)
    scheduler.add_job(check_leadership, "interval", seconds=LEADER_CHECK_EVERY_S, id="worker.leadership",
                      args=[deps, scheduler], misfire_grace_time=LEADER_CHECK_EVERY_S, **common)


def run_once(deps: WorkerDeps, *, timeout_s: float = 120.0) -> int:
    """A provider sync, one evaluation and a drained outbox, then exit (cron, operators); leads like the
    long-running worker. Syncing first means the alerts are evaluated on the providers' latest figures."""
    if not deps.leadership.try_acquire():
        log.warning("another worker leads: nothing to do")
        return 0
    try:
        sync_providers(deps)
        evaluate_alerts(deps)
        tally = deps.deliverer.drain(timeout_s=timeout_s)
        print(f"alerts: {tally.sent} posted, {tally.found} found already posted, {tally.retried} to retry, "
              f"{tally.dead} undelivered; {deps.alerts.pending_count()} still queued", flush=True)
        return 0
    finally:
        deps.leadership.release()


def run_worker(deps: WorkerDeps, *, stop: threading.Event | None = None) -> int:
    """Stand by until leading, then run the scheduler until it stops; returns the process exit code."""
    stop = stop or threading.Event()
    if not deps.leadership.wait(stop):
        return 0
    log.info("leading: running the alert jobs")
    scheduler = BlockingScheduler(timezone="UTC")
    schedule(scheduler, deps)
    started = time.monotonic()
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        stop.set()
    finally:
        deps.leadership.release()
    log.info("worker stopped after %.0f s", time.monotonic() - started)
    # Stopped without being asked means leadership was lost: a non-zero exit makes the platform restart us.
    return 0 if stop.is_set() else 1
