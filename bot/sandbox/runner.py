"""`billing-bot sandbox`: the real bot against a local Slack in the browser, all in one process.

Contract: `start_sandbox(database_url, port=3000)` returns a running `Sandbox`:
1. the database is migrated, the demo ledger seeded when it has no accounts, and the fake workspace (T0001)
   allowed to see every account (acme-corp the default), #finance linked to acme-corp, U_VIEWER a viewer;
   U_ADMIN is a workspace admin (users.info) and U_NOBODY has no role;
2. the fake Slack (Web API + browser UI, `bot.sandbox.ui`) listens on 127.0.0.1:<port>, with Slack's
   one-message-per-second-per-channel limit on;
3. the bot's own `web` app (`bot.app.build_app` + `bot.web.wsgi_app`) is served by waitress on 127.0.0.1:<bot_port>
   (0: any free port), with a signing secret made for this run and SLACK_API_URL pointing at the fake;
4. each `Companion` is started with the bot's dependencies and a Web API client; `run_sandbox` passes
   `alerts_worker`, the `billing-bot worker` jobs on a background scheduler, so alerts appear live.
`Sandbox.stop()` stops all of it in reverse order and joins every thread it started; `run_sandbox` is the CLI
loop (prints the URL, waits for Ctrl-C or SIGTERM, stops). Nothing here needs a Slack token or the internet.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from slack_sdk import WebClient

from billing_core.db.engine import Database
from billing_core.db.migrate import upgrade
from billing_core.demo import DEMO_FINANCE_CHANNEL, DEMO_VIEWER, DEMO_WORKSPACE, seed_demo
from billing_core.service import Billing
from billing_core.tenancy import Role, Tenancy
from bot.config import Settings
from bot.deps import Deps
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.fake_state import TEAM_ID
from bot.sandbox.relay import Relay
from bot.sandbox.ui import SandboxUI

log = logging.getLogger("billing_bot.sandbox")

DEFAULT_PORT = 3000
DEFAULT_ACCOUNT = "acme-corp"
ACTOR = "sandbox"

Stop = Callable[[], None]
#: Something that runs next to the bot (the alerts worker): started with its deps and client, returns its stop.
Companion = Callable[[Deps, WebClient], Stop]


class PortInUse(Exception):
    """The sandbox's port is taken (another sandbox, or anything else listening there)."""


@dataclass
class Sandbox:
    """A running sandbox: `url` is the browser UI and the Web API base; `bot_url` the bot's own HTTP server."""

    url: str
    bot_url: str
    fake: FakeSlack
    relay: Relay
    deps: Deps
    _stops: list[Stop] = field(default_factory=list)

    def stop(self) -> None:
        """Stop everything started, newest first; safe to call twice."""
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:
                log.exception("while stopping the sandbox")

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def prepare_database(db: Database, *, now: datetime) -> None:
    """Migrate; seed the demo ledger if there are no accounts; give the fake workspace its demo access."""
    upgrade(db)
    billing = Billing(db)
    if not billing.accounts():
        log.info("seeding the demo ledger (first run)")
        with db.unit_of_work() as session:
            seed_demo(session, now=now)
    accounts = [a.name for a in billing.accounts()]
    tenancy = Tenancy(db)
    facts = tenancy.facts(DEMO_WORKSPACE)
    default = DEFAULT_ACCOUNT if DEFAULT_ACCOUNT in accounts else accounts[0]
    allowed = {a.name for a in facts.accounts}
    for name in accounts:
        if name not in allowed:
            tenancy.allow_account(DEMO_WORKSPACE, name, default=name == default and facts.default_account is None,
                                  actor=ACTOR, now=now)
    if DEMO_FINANCE_CHANNEL not in facts.channel_links:
        tenancy.link_channel(DEMO_WORKSPACE, DEMO_FINANCE_CHANNEL, default, actor=ACTOR, now=now)
    if DEMO_VIEWER not in facts.roles:
        tenancy.grant(DEMO_WORKSPACE, DEMO_VIEWER, Role.VIEWER, actor=ACTOR, now=now)


def role_labels(db: Database, fake: FakeSlack) -> dict[str, str]:
    """How the user switcher names each demo person's access."""
    roles = Tenancy(db).facts(TEAM_ID).roles
    labels = {}
    for user in fake.users():
        if user.is_bot:
            continue
        role = roles.get(user.id)
        labels[user.id] = "admin" if user.is_admin or user.is_owner else (role.value if role else "no access")
    return labels


def start_sandbox(database_url: str | None = None, *, port: int = DEFAULT_PORT, bot_port: int = 0,
                  companions: Sequence[Companion] = (), rate_limit: float | None = 1.0,
                  configure: Callable[[Deps], None] | None = None) -> Sandbox:
    """Start the fake Slack with its UI, the bot's web app and the companions; see the module docstring.

    `configure` may adjust the bot's dependencies before the app is built (a test swaps in thread pools it can
    wait on); `rate_limit` is the fake's chat.postMessage limit per channel per second (None: unlimited).
    """
    # slack_sdk sends even loopback traffic through HTTP(S)_PROXY (it ignores NO_PROXY); the sandbox is local only.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    try:
        fake = FakeSlack(rate_limit_per_channel=rate_limit).start(port)  # first: a busy port fails before seeding
    except OSError as exc:
        raise PortInUse(f"Port {port} on 127.0.0.1 is not free ({exc.strerror}); try --port {port + 5}.") from exc
    db = Database(database_url)
    stops: list[Stop] = [fake.stop, db.dispose]
    try:
        prepare_database(db, now=datetime.now(UTC))
        secret = secrets.token_hex(24)  # per run: only this process signs and checks requests
        settings = Settings(signing_secret=secret, bot_token="xoxb-sandbox-local", api_url=fake.url,
                            database_url=db.url)
        deps = Deps.build(settings, db=db)
        if configure is not None:
            configure(deps)
        stops.append(lambda: _shutdown_pools(deps))
        bot_url, stop_web = _serve_bot(settings, deps, bot_port)
        stops.append(stop_web)
        relay = Relay(fake, bot_url, secret)
        SandboxUI(fake, relay, roles=lambda: role_labels(db, fake)).mount()
        client = WebClient(token=settings.bot_token, base_url=fake.url)
        for companion in companions:
            stops.append(companion(deps, client))
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    return Sandbox(fake.url.rstrip("/"), bot_url, fake, relay, deps, stops)


def _serve_bot(settings: Settings, deps: Deps, port: int) -> tuple[str, Stop]:
    """The bot's WSGI app, as `billing-bot web` serves it."""
    from bot.app import build_app
    from bot.web import wsgi_app

    return serve_wsgi(wsgi_app(build_app(settings, deps), deps), port=port, name="sandbox-bot-web")


def serve_wsgi(application: Callable[..., Any], *, port: int = 0, name: str = "sandbox-wsgi") -> tuple[str, Stop]:
    """Serve a WSGI app with waitress on 127.0.0.1:<port> from a thread; returns its base URL and its stop."""
    import waitress
    from waitress import wasyncore

    server: Any = waitress.create_server(application, host="127.0.0.1", port=port, threads=8, ident="billing-bot",
                                         clear_untrusted_proxy_headers=True)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()

    def stop() -> None:
        # Close every socket (listener, keep-alive connections, the trigger) from inside the loop's own thread,
        # so its select() never sees a closed descriptor; the loop ends when its map is empty.
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError:  # the trigger is closed already: the loop has ended (seen once in a full test run)
            log.warning("%s: its event loop had already stopped", name)
        thread.join(timeout=5)
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)

    return f"http://127.0.0.1:{server.effective_port}", stop


def _shutdown_pools(deps: Deps) -> None:
    for pool in (deps.listeners, deps.workers):
        pool.shutdown(wait=True, cancel_futures=True)
    deps.render.shutdown()


def alerts_worker(deps: Deps, client: WebClient) -> Stop:
    """The `billing-bot worker` jobs (`bot.jobs.scheduler.schedule`) on a background scheduler in this process.

    The worker's own loop blocks its thread until the process ends; the sandbox needs a scheduler it can stop.
    On PostgreSQL another worker may already lead for this database: then this one stays out of the way.
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.jobs.scheduler import WorkerDeps, schedule
    from bot.jobs.webhooks import WebhookTargets

    # The same alert mirrors as the web process (bot.deps), so what its web-hook notices queue is delivered.
    worker = WorkerDeps.build(deps.db, token=deps.settings.bot_token, api_url=deps.settings.api_url,
                              clock=deps.clock, webhooks=WebhookTargets.from_env(os.environ))
    if not worker.leadership.try_acquire():
        log.warning("another billing-bot worker leads for this database: the sandbox runs without its own")
        return lambda: None
    scheduler = BackgroundScheduler(timezone="UTC")
    schedule(scheduler, worker)
    scheduler.start()

    def stop() -> None:
        if scheduler.running:
            scheduler.shutdown(wait=True)
        worker.leadership.release()

    return stop


def run_sandbox(database_url: str | None, *, port: int = DEFAULT_PORT) -> int:
    """The CLI loop: start, print where to go, wait for Ctrl-C (or SIGTERM), stop cleanly."""
    # Their INFO lines (one per PDF step, one per 2-second delivery run) would bury the URL and the bot's own logs.
    for noisy in ("weasyprint", "fontTools", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        sandbox = start_sandbox(database_url, port=port, companions=[alerts_worker])
    except PortInUse as busy:
        raise SystemExit(str(busy)) from None
    done = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    print(f"Sandbox Slack workspace on {sandbox.url}/  (bot at {sandbox.bot_url}/slack/events, alerts worker on)\n"
          f"Open it in a browser and type /billing in #finance. Ctrl-C stops.", flush=True)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping the sandbox…", flush=True)
        sandbox.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0
