"""What handlers and jobs need, built once per process and passed explicitly (no globals)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from billing_core.alerts.service import Alerts
from billing_core.db.engine import Database
from billing_core.replay import ReplayGuard
from billing_core.service import Billing
from billing_core.sources.webhooks import WebhookReceiver
from billing_core.tenancy import Tenancy
from bot.access import Access
from bot.acks import AckGate
from bot.config import Settings
from bot.jobs.webhooks import WebhookTargets
from bot.render import Renderer


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    settings: Settings
    db: Database
    billing: Billing
    tenancy: Tenancy
    access: Access
    #: The web process's alert service (test alerts, buttons, web-hook notices), mirrored like the worker's.
    alerts: Alerts
    clock: Callable[[], datetime] = wall_clock
    webhooks: WebhookReceiver | None = None  # None until BILLING_WEBHOOK_SECRET is set
    #: Signed requests already seen (a replay is refused); claims of a burst are written together.
    replays: ReplayGuard = field(init=False)
    #: Slow work after the ack (charts, PDFs, exports) runs here, so Bolt's listener threads stay free.
    workers: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, thread_name_prefix="billing"))
    #: Home-tab chart uploads of the day per (workspace, user, account, day) → file id: a cache only (a miss
    #: re-uploads), kept per app so two apps in one process (tests, the sandbox) never share Slack file ids.
    home_charts: dict[tuple[str, str, int, str], str] = field(default_factory=dict)
    #: Slack requests being acknowledged right now; after-ack work waits for them (see bot.acks).
    acks: AckGate = field(default_factory=AckGate)
    #: Charts and PDFs render in worker processes (see bot.render), so they never hold up an ack.
    render: Renderer = field(default_factory=Renderer)
    #: Bolt's executor (lazy listeners): with process_before_response the listeners themselves run on the
    #: request's thread, and they only ack and hand off to `workers`, so acks never wait behind slow work.
    listeners: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(16, thread_name_prefix="bolt"))

    def __post_init__(self) -> None:
        self.replays = ReplayGuard(self.db)

    @classmethod
    def build(cls, settings: Settings, *, db: Database | None = None,
              clock: Callable[[], datetime] = wall_clock, mirrors: WebhookTargets | None = None) -> Deps:
        """`mirrors`: the alert web-hooks (default: read from the environment the way the worker reads them), so
        the notices billing web-hooks and test alerts queue here are mirrored like the worker's alerts."""
        database = db or Database(settings.database_url)
        tenancy = Tenancy(database)
        billing = Billing(database)
        targets = mirrors if mirrors is not None else WebhookTargets.from_env(os.environ)
        alerts = Alerts(database, billing, mirrors=targets.mirrors)
        receiver = WebhookReceiver(database, settings.webhook_secret, alerts) if settings.webhook_secret else None
        return cls(settings=settings, db=database, billing=billing, tenancy=tenancy,
                   access=Access(tenancy, billing_admins=settings.billing_admins, clock=clock), alerts=alerts,
                   clock=clock, webhooks=receiver)
