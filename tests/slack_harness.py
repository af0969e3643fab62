"""The real Bolt app, end to end: signed requests in over HTTP (WSGI), the local fake Slack out, demo data.

Fixtures:
- `seeded_db`: the demo ledger (`seed_demo`, with the sandbox workspace T0001: #finance linked to acme-corp,
  U_VIEWER a viewer, U_ADMIN a workspace admin, U_NOBODY nothing), on SQLite and on PostgreSQL. SQLite gets a
  fresh copy per test; PostgreSQL one seeded schema per session, so tests that change things use names of their
  own (a new budget name, a fresh user added to the fake) and leave the demo's shape alone.
- `bot`: a `BotHarness` — the app built by `bot.app.build_app` with real settings pointed at a `FakeSlack`,
  served through its WSGI adapter (`bot.web.wsgi_app`) as Slack would reach it. `command`, `click`, `submit`
  and `event` sign and send; they return the HTTP ack. `settle()` waits until every listener and every piece of
  after-ack work has finished, so assertions on the fake see the whole answer.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from billing_core.db.engine import Database
from billing_core.demo import seed_demo
from bot.app import build_app
from bot.config import Settings
from bot.deps import Deps
from bot.render import Renderer
from bot.sandbox import signing
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.fake_state import Message
from bot.web import wsgi_app
from tests.conftest import _pg_database, migrated_pg_schema

SECRET = "harness-signing-secret"
SEEDED_AT = datetime.now(UTC)


class TrackingExecutor(ThreadPoolExecutor):
    """A thread pool that knows when it is idle, so a test can wait for "the bot has finished answering"."""

    def __init__(self, workers: int, name: str) -> None:
        super().__init__(workers, thread_name_prefix=name)
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    path = tmp_path_factory.mktemp("seeded") / "demo.db"
    shutil.copy(sqlite_template, path)
    _seed(Database(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def seeded_pg_schema() -> Iterator[str]:
    with migrated_pg_schema("bb_seeded") as schema:
        _seed(_pg_database(schema))
        yield schema


def _seed(db: Database) -> None:
    with db.unit_of_work() as session:
        seed_demo(session, now=SEEDED_AT)
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The demo ledger on each kind of database (see the module docstring for what tests may change)."""
    if request.param == "sqlite":
        path = tmp_path / "demo.db"
        shutil.copy(request.getfixturevalue("seeded_sqlite"), path)
        database = Database(f"sqlite:///{path}")
    else:
        database = _pg_database(request.getfixturevalue("seeded_pg_schema"))
    yield database
    database.dispose()


@dataclass
class BotHarness:
    fake: FakeSlack
    deps: Deps
    http: httpx.Client

    @property
    def db(self) -> Database:
        return self.deps.db

    def post(self, request: signing.Request) -> httpx.Response:
        body, headers = request
        return self.http.post("/slack/events", content=body, headers=headers)

    def command(self, text: str, *, user: str = "U_ADMIN", channel: str = "C_FINANCE",
                timestamp: int | None = None) -> httpx.Response:
        """`/billing <text>` typed by `user` in `channel`; response_url and trigger_id come from the fake."""
        return self.post(signing.slash_command_request(
            SECRET, text=text, user_id=user, channel_id=channel, timestamp=timestamp,
            response_url=self.fake.response_url(channel=channel, user=user),
            trigger_id=self.fake.issue_trigger_id(user)))

    def click(self, action_id: str, value: str | None = None, *, user: str = "U_ADMIN",
              channel: str = "C_FINANCE", message: Message | None = None, ephemeral: bool = False,
              action_type: str = "button", view: dict[str, Any] | None = None) -> httpx.Response:
        """A click on `action_id` in `message` (a stored message, or an ephemeral one when `ephemeral`)."""
        if view is not None:
            return self.post(signing.block_action_request(
                SECRET, action_id=action_id, value=value, action_type=action_type, user_id=user, view=view,
                trigger_id=self.fake.issue_trigger_id(user)))
        ts = message.ts if message is not None else None
        stored = {"ts": ts, "text": message.text, "blocks": message.blocks or []} if message else {"ts": ts}
        return self.post(signing.block_action_request(
            SECRET, action_id=action_id, value=value, action_type=action_type, user_id=user, channel_id=channel,
            message=stored, is_ephemeral=ephemeral, trigger_id=self.fake.issue_trigger_id(user),
            response_url=self.fake.response_url(channel=channel, user=user, message_ts=ts)))

    def submit(self, view: dict[str, Any], values: dict[str, Any], *, user: str = "U_ADMIN") -> httpx.Response:
        """Submit the modal `view` (as the fake recorded it) with `values` as its state."""
        return self.post(signing.view_submission_request(
            SECRET, values=values, view=view, user_id=user, trigger_id=self.fake.issue_trigger_id(user)))

    def event(self, event: dict[str, Any]) -> httpx.Response:
        return self.post(signing.event_request(SECRET, event))

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until Bolt's listeners and the bot's after-ack work are all done (twice: work spawns work)."""
        deadline = time.monotonic() + timeout
        for _ in range(2):
            for pool in (self.deps.listeners, self.deps.workers):
                assert isinstance(pool, TrackingExecutor)
                if not pool.wait_idle(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"the bot was still working after {timeout} s")

    # --- what the requester sees ------------------------------------------------------------------------------

    def answers(self, channel: str = "C_FINANCE", user: str = "U_ADMIN") -> list[dict[str, Any]]:
        """Everything the requester was shown in `channel`: messages, ephemerals and response_url posts."""
        shown: list[dict[str, Any]] = [{"text": m.text, "blocks": m.blocks or [], "ts": m.ts, "public": True}
                                       for m in self.fake.messages(channel)]
        shown += [{"text": m.text, "blocks": m.blocks or [], "ts": m.ts, "public": False}
                  for m in self.fake.ephemeral(channel, user)]
        return shown

    def last_text(self, channel: str = "C_FINANCE", user: str = "U_ADMIN") -> str:
        shown = self.answers(channel, user)
        assert shown, f"nothing was shown in {channel} to {user}"
        return str(shown[-1]["text"])


@pytest.fixture(scope="session")
def renderer() -> Iterator[Renderer]:
    """One warm pool of render processes for the whole run, as a web process keeps one for its lifetime."""
    pool = Renderer()
    yield pool
    pool.shutdown()


@pytest.fixture
def bot(seeded_db: Database, renderer: Renderer) -> Iterator[BotHarness]:
    with FakeSlack() as fake:
        settings = Settings(signing_secret=SECRET, bot_token="xoxb-harness", api_url=fake.url)
        # The bot's clock stands still at the seeding moment, so a test's own question to the core (say, the
        # month-end projection, which moves with the unelapsed part of today) gets the bot's exact answer.
        deps = Deps.build(settings, db=seeded_db, clock=lambda: SEEDED_AT)
        deps.workers = TrackingExecutor(4, "billing")
        deps.render = renderer
        deps.listeners = TrackingExecutor(8, "bolt")
        app = build_app(settings, deps)
        transport = httpx.WSGITransport(app=wsgi_app(app, deps))
        with httpx.Client(transport=transport, base_url="http://bot.test", timeout=10) as http:
            harness = BotHarness(fake, deps, http)
            yield harness
            harness.settle()
        deps.workers.shutdown(wait=True)
        deps.listeners.shutdown(wait=True)
