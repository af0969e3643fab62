"""Alert delivery against the local fake Slack: exactly once through 429s, 5xx, dropped connections and crashes."""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from apscheduler.schedulers.blocking import BlockingScheduler
from slack_sdk import WebClient
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from billing_core.alerts.service import LEASE, Alerts
from billing_core.db.alert_models import AlertDelivery
from billing_core.db.engine import Database
from billing_core.db.ingest import upsert_invoice, upsert_payment
from billing_core.db.models import Account, ChannelLink
from billing_core.records import PaymentIn
from billing_core.results import PaymentMethod, PaymentStatus
from billing_core.service import Billing
from bot.jobs.delivery import CLAIM_LEASE, EVENT_TYPE, Deliverer, Tally, backoff, delivery_client
from bot.jobs.scheduler import Leadership, WorkerDeps, schedule
from bot.jobs.webhooks import WebhookTargets
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.fake_state import Call
from tests import factories as f

# A Monday, 08:00 in Berlin: overdue alerts only (the weekly digest is due from 09:00 for the rest of the week)
EVALUATED = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)


def wall() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def seed(db: Database, *, invoices: int = 1, channel: str = "C_FINANCE") -> int:
    with db.unit_of_work() as s:
        acct = f.account(s, "acme", tz="Europe/Berlin")
        s.add(ChannelLink(workspace="T1", channel=channel, account_id=acct.id, linked_by="U1", linked_at=f.T0))
        for i in range(invoices):
            upsert_invoice(s, f.invoice(acct, f"o{i}", issue=date(2026, 11, 1), due=date(2026, 11, 10)), now=f.T0)
        return acct.id


def deliverer(db: Database, fake: FakeSlack, *, clock: object = wall, client: WebClient | None = None) -> Deliverer:
    return Deliverer(Alerts(db), Billing(db), client or delivery_client("xoxb-test", fake.url), clock=clock,  # type: ignore[arg-type]
                     rng=lambda: 0.0, with_charts=False)


def alert_ids_posted(fake: FakeSlack, channel: str) -> Counter[int]:
    found: Counter[int] = Counter()
    for msg in fake.messages(channel):
        if msg.metadata and msg.metadata.get("event_type") == EVENT_TYPE:
            found[msg.metadata["event_payload"]["alert_id"]] += 1
    return found


def test_an_alert_is_posted_once_with_its_metadata_and_its_ts_recorded(db: Database, fake: FakeSlack) -> None:
    seed(db)
    alerts = Alerts(db)
    alerts.evaluate(EVALUATED)
    sender = deliverer(db, fake)
    assert sender.drain(timeout_s=10).sent == 1
    assert sender.drain(timeout_s=1).sent == 0
    alerts.evaluate(EVALUATED)  # evaluating again queues nothing new
    assert sender.drain(timeout_s=1).sent == 0
    [msg] = fake.messages("C_FINANCE")
    assert "INV-" in msg.text and "overdue" in msg.text
    alert_id = msg.metadata["event_payload"]["alert_id"] if msg.metadata else None
    assert alert_id is not None and alerts.alert(alert_id).message_ts == msg.ts


def test_rate_limits_server_errors_and_dropped_connections_end_in_one_message(db: Database, fake: FakeSlack) -> None:
    seed(db)
    Alerts(db).evaluate(EVALUATED)
    fake.fail_next("chat.postMessage", status=429, retry_after=1)
    fake.fail_next("chat.postMessage", status=503)
    fake.fail_next("chat.postMessage", drop=True)
    tally = deliverer(db, fake).drain(timeout_s=20)
    assert (tally.sent, tally.retried, tally.dead) == (1, 3, 0)
    assert list(alert_ids_posted(fake, "C_FINANCE").values()) == [1]
    posts = fake.calls("chat.postMessage")
    assert [c.status for c in posts] == [429, 503, 0, 200]
    assert fake.calls("conversations.history"), "an ambiguous failure is checked in the history before re-sending"
    # Retry-After said 1 s; the backoff alone would have re-sent after 0.5 s (rng 0: 1 s × 0.5)
    assert posts[1].at - posts[0].at >= 1.0


def test_server_errors_back_off_exponentially_with_the_jitter_the_rng_draws(db: Database, fake: FakeSlack) -> None:
    seed(db)
    Alerts(db).evaluate(EVALUATED)
    draws, drawn = iter([0.0, 1.0, 0.25]), []
    now = [wall()]

    def rng() -> float:
        drawn.append(next(draws))
        return drawn[-1]

    sender = Deliverer(Alerts(db), Billing(db), delivery_client("xoxb-test", fake.url), clock=lambda: now[0],
                       sleep=lambda _: None, rng=rng, with_charts=False)
    fake.fail_next("chat.postMessage", status=503, times=3)
    delays = []
    for _ in range(3):
        assert sender.run_once().retried == 1
        due = sender.alerts.next_due()
        assert due is not None
        delays.append((due - now[0]).total_seconds())
        now[0] = due  # the next attempt exactly when it was scheduled, not a moment earlier
    assert drawn == [0.0, 1.0, 0.25]  # one draw per retry
    assert delays == [1 * 0.5, 2 * 1.5, 4 * 0.75]  # 1, 2, 4 s times (0.5 + draw)
    assert sender.run_once().sent == 1 and len(fake.messages("C_FINANCE")) == 1
    assert backoff(30, lambda: 0.5) == timedelta(minutes=5)  # the exponent stops at five minutes


def test_a_crash_between_posting_and_recording_does_not_post_twice(db: Database, fake: FakeSlack) -> None:
    seed(db)
    alerts = Alerts(db)
    alerts.evaluate(EVALUATED)
    crashed = deliverer(db, fake)
    [job] = alerts.claim_due(wall())
    posted = crashed.client.chat_postMessage(**crashed.message_for(job))  # …and the worker dies right here
    later = deliverer(db, fake, clock=lambda: wall() + LEASE + timedelta(seconds=1))
    tally = later.drain(timeout_s=10)
    assert (tally.found, tally.sent) == (1, 0)
    assert len(fake.messages("C_FINANCE")) == 1
    assert alerts.alert(job.alert.id).message_ts == posted["ts"]


class HandClock:
    """Wall and monotonic time moved only by the pacing sleeps of a pass, so nothing really waits."""

    def __init__(self, start: datetime) -> None:
        self.now, self.mono = start, 0.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.now, self.mono = self.now + timedelta(seconds=seconds), self.mono + seconds


def paced(db: Database, fake: FakeSlack, hand: HandClock, *, lease: timedelta,
          sleep: Callable[[float], None] | None = None) -> Deliverer:
    return Deliverer(Alerts(db, lease=lease), Billing(db), delivery_client("xoxb-test", fake.url), clock=hand.wall,
                     sleep=sleep or hand.sleep, monotonic=hand.monotonic, rng=lambda: 0.0, with_charts=False)


def test_a_pass_that_outlasts_its_lease_leaves_to_another_worker_what_it_took_over(
        db: Database, fake: FakeSlack) -> None:
    seed(db, invoices=6)  # one channel: the pass paces 1.1 s per message, so it reaches the 6th after 5.5 s
    Alerts(db).evaluate(EVALUATED)
    hand = HandClock(wall())
    start, second = hand.now, paced(db, fake, hand, lease=timedelta(seconds=2))
    taken: list[Tally] = []

    def pacing(seconds: float) -> None:
        hand.sleep(seconds)
        if hand.now - start > CLAIM_LEASE and not taken:  # the pass's claim on the 6th lapsed meanwhile
            taken.append(second.run_once())

    tally = paced(db, fake, hand, lease=timedelta(seconds=2), sleep=pacing).run_once()
    assert [(t.sent, t.found) for t in taken] == [(1, 0)]  # the second worker posted the lapsed one…
    assert (tally.sent, tally.lost) == (5, 1)  # …and the first one let it go instead of posting it again
    posted = alert_ids_posted(fake, "C_FINANCE")
    assert len(posted) == 6 and set(posted.values()) == {1}
    assert Alerts(db).pending_count() == 0


def test_a_lapsed_claim_nobody_took_over_is_still_posted_once(db: Database, fake: FakeSlack) -> None:
    seed(db)
    Alerts(db).evaluate(EVALUATED)
    hand = HandClock(wall())
    sender = paced(db, fake, hand, lease=timedelta(seconds=2))
    [job] = sender.alerts.claim_due(hand.now)
    hand.sleep(60)  # a slow pass: the lease ran out, but no other worker claimed the entry
    assert sender.deliver(job) == "sent"
    assert len(fake.messages("C_FINANCE")) == 1 and Alerts(db).pending_count() == 0


def test_a_channel_without_the_bot_is_dead_lettered_with_a_hint(db: Database, fake: FakeSlack) -> None:
    account_id = seed(db)
    alerts = Alerts(db)
    alerts.set_route(account_id, "overdue", "C_NOTIN", actor="test", now=f.T0)
    alerts.evaluate(EVALUATED)
    tally = deliverer(db, fake).drain(timeout_s=5)
    assert (tally.sent, tally.dead) == (0, 1)
    [dead] = alerts.status(account_id).dead
    assert dead.channel == "C_NOTIN" and "not_in_channel" in dead.error and "invite" in dead.error
    assert len(fake.calls("chat.postMessage")) == 1  # a permanent error is not retried


def test_at_most_one_message_per_second_per_channel(db: Database, fake: FakeSlack) -> None:
    seed(db, invoices=3)
    Alerts(db).evaluate(EVALUATED)
    fake.rate_limit_per_channel = 1.0
    tally = deliverer(db, fake).drain(timeout_s=20)
    calls = fake.calls("chat.postMessage")
    assert tally.sent == 3 and [c.status for c in calls] == [200, 200, 200]  # never throttled by Slack
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert all(gap >= 0.9 for gap in gaps)


def test_a_paid_invoice_gets_a_resolved_reply_in_the_alerts_thread(db: Database, fake: FakeSlack) -> None:
    account_id = seed(db)
    alerts = Alerts(db)
    alerts.evaluate(EVALUATED)
    sender = deliverer(db, fake)
    sender.drain(timeout_s=10)
    [msg] = fake.messages("C_FINANCE")
    number = msg.text.split("invoice ")[1].split(" ")[0]
    with db.unit_of_work() as s:
        upsert_payment(s, PaymentIn(account_id, "test", "p1", Decimal("100.00"), "USD", PaymentStatus.CONFIRMED,
                                    PaymentMethod.BANK, datetime(2026, 11, 18, 8, tzinfo=UTC),
                                    invoice_number=number), now=f.T0)
    assert alerts.evaluate(datetime(2026, 11, 18, 9, tzinfo=UTC)).resolved == 1
    sender.drain(timeout_s=10)
    replies = [m.text for m in fake.replies("C_FINANCE", msg.ts) if m.ts != msg.ts]
    assert len(replies) == 1 and replies[0].startswith(f"Resolved — {number} was paid on")


def test_two_workers_under_chaos_and_one_killed_mid_delivery_post_every_alert_exactly_once(
        db: Database, fake: FakeSlack) -> None:
    seed(db, invoices=8)
    Alerts(db).evaluate(EVALUATED)
    doomed = deliverer(db, fake)
    doomed.alerts = Alerts(db, lease=timedelta(seconds=1))
    [job, *_] = doomed.alerts.claim_due(wall(), limit=1)
    doomed.client.chat_postMessage(**doomed.message_for(job))  # posted, then killed before recording it
    fake.chaos(0.3, seed=7)
    workers = [deliverer(db, fake) for _ in range(2)]
    threads = [threading.Thread(target=w.drain, kwargs={"timeout_s": 60}) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fake.chaos(0)
    posted = alert_ids_posted(fake, "C_FINANCE")
    assert len(posted) == 8 and set(posted.values()) == {1}
    assert Alerts(db).pending_count() == 0
    assert Alerts(db).alert(job.alert.id).message_ts is not None  # the killed worker's post was found and kept
    assert any(c.status != 200 for c in fake.calls()), "the fake really injected failures"


# --- the worker ---------------------------------------------------------------------------------------------


def worker_deps(db: Database, fake: FakeSlack) -> WorkerDeps:
    return WorkerDeps.build(db, token="xoxb-test", api_url=fake.url, clock=wall)


def test_one_leader_at_a_time_and_a_standby_takes_over(db: Database, fake: FakeSlack) -> None:
    first, second = Leadership(db), Leadership(db)
    assert first.try_acquire() and first.still_leading()
    if db.dialect == "postgresql":
        assert not second.try_acquire(), "a second worker must stand by, not send"
        first.release()
        assert second.try_acquire()
    else:
        assert second.try_acquire()  # SQLite: the same code path, for its single worker
    second.release()
    first.release()


def test_the_jobs_are_registered_once_with_ids_and_catch_up_from_the_database(db: Database, fake: FakeSlack) -> None:
    seed(db)
    deps = worker_deps(db, fake)
    scheduler = BlockingScheduler(timezone="UTC")
    schedule(scheduler, deps)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"alerts.evaluate", "alerts.deliver", "worker.leadership", "sources.sync",
                         "sources.reconcile"}
    assert all(j.coalesce and j.max_instances == 1 and j.misfire_grace_time for j in jobs.values())
    jobs["alerts.evaluate"].func(*jobs["alerts.evaluate"].args)  # a run today catches up what was missed
    jobs["alerts.deliver"].func(*jobs["alerts.deliver"].args)
    assert any("INV-" in m.text for m in fake.messages("C_FINANCE"))
    assert deps.alerts.pending_count() == 0


def start_two_workers(fake: FakeSlack, db_url: str, tmp_path: Path) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    """Two `billing-bot worker` processes on one database, each logging to its own file."""
    env = {**os.environ, "DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake.url}
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, cwd=Path(__file__).parents[1],
                              stdout=subprocess.DEVNULL, stderr=log.open("w")) for log in logs]
    return procs, logs


@pytest.mark.slow
def test_two_worker_processes_one_leads_and_the_standby_takes_over_when_it_is_killed(
        db: Database, fake: FakeSlack, db_url: str, tmp_path: Path) -> None:
    """`billing-bot worker` twice against one PostgreSQL database: one sends, the other stands by."""
    if db.dialect != "postgresql":
        pytest.skip("the advisory-lock leader is PostgreSQL's; SQLite runs a single worker")
    account_id = seed(db)
    procs, logs = start_two_workers(fake, db_url, tmp_path)
    try:
        fake.wait_for(lambda: bool(alert_ids_posted(fake, "C_FINANCE")), timeout=60, what="the first alert")
        fake.wait_for(lambda: Alerts(db).pending_count() == 0, timeout=30, what="an empty outbox")
        leaders = [i for i, log in enumerate(logs) if "leading" in log.read_text()]
        assert len(leaders) == 1, [log.read_text() for log in logs]
        procs[leaders[0]].kill()
        procs[leaders[0]].wait()
        with db.unit_of_work() as s:
            acct = s.get(Account, account_id)
            assert acct is not None
            upsert_invoice(s, f.invoice(acct, "late", issue=date(2026, 11, 1), due=date(2026, 11, 12)), now=f.T0)
        Alerts(db).evaluate(EVALUATED + timedelta(days=1))  # a new alert while only the standby is alive
        fake.wait_for(lambda: Alerts(db).pending_count() == 0, timeout=60, what="the standby to deliver")
        standby = 1 - leaders[0]
        assert "leading" in logs[standby].read_text()
        posted = alert_ids_posted(fake, "C_FINANCE")
        assert len(posted) >= 2 and set(posted.values()) == {1}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


CHANNELS = ("C_FINANCE", "C_ENG", "C_GENERAL")


def seed_channels(db: Database, *, per_channel: int) -> list[int]:
    """One account per channel, each with `per_channel` overdue invoices; returns the account ids."""
    ids = []
    with db.unit_of_work() as s:
        for n, channel in enumerate(CHANNELS):
            acct = f.account(s, f"acct{n}", tz="Europe/Berlin")
            s.add(ChannelLink(workspace="T1", channel=channel, account_id=acct.id, linked_by="U1", linked_at=f.T0))
            for i in range(per_channel):
                upsert_invoice(s, f.invoice(acct, f"c{n}-{i}", issue=date(2026, 11, 1), due=date(2026, 11, 10)),
                               now=f.T0)
            ids.append(acct.id)
    return ids


def slack_alert_ids(db: Database) -> set[int]:
    with db.unit_of_work() as s:
        return set(s.scalars(select(AlertDelivery.alert_id).where(AlertDelivery.purpose == "alert")))


def delivery_states(db: Database) -> Counter[str]:
    with db.unit_of_work() as s:
        return Counter(s.scalars(select(AlertDelivery.state)))


def posted_everywhere(fake: FakeSlack) -> Counter[int]:
    return sum((alert_ids_posted(fake, channel) for channel in CHANNELS), Counter())


def delivery_of(call: Call) -> int | None:
    payload = (call.body.get("metadata") or {}).get("event_payload") or {}
    return payload.get("delivery_id")


@pytest.mark.slow
def test_two_worker_processes_under_chaos_with_the_leader_killed_mid_delivery_post_every_alert_exactly_once(
        db: Database, fake: FakeSlack, db_url: str, tmp_path: Path) -> None:
    """The acceptance test: two `billing-bot worker` processes on one PostgreSQL database, 30 % of Slack calls
    failing (429 with Retry-After, 500 and dropped connections, before and after the call was carried out), the
    leader SIGKILLed while it holds claims; the standby finishes, every alert is in its channel exactly once."""
    if db.dialect != "postgresql":
        pytest.skip("two workers need PostgreSQL's advisory-lock leader; SQLite runs a single worker")
    accounts = seed_channels(db, per_channel=4)  # 12 alerts in 3 channels: ~4.4 s of pacing at best
    Alerts(db).evaluate(wall())  # what the workers would queue themselves today, queued before they start
    expected = slack_alert_ids(db)
    assert len(expected) >= 12  # the overdue invoices (and this week's digests, when they are due)
    fake.chaos(0.3, seed=11, retry_after=1)
    procs, logs = start_two_workers(fake, db_url, tmp_path)
    try:
        fake.wait_for(lambda: sum(posted_everywhere(fake).values()) >= 2, timeout=40, what="two alerts posted")
        leaders = [i for i, log in enumerate(logs) if "leading" in log.read_text()]
        assert len(leaders) == 1, [log.read_text() for log in logs]
        procs[leaders[0]].kill()  # SIGKILL: no cleanup, its claims stay behind until their lease runs out
        procs[leaders[0]].wait(timeout=10)
        killed_at = time.time()  # the fake's clock: calls recorded from now on are the standby's
        at_kill = delivery_states(db)
        assert at_kill["sending"] > 0, f"the leader was killed holding no claim: {at_kill}"
        fake.wait_for(lambda: Alerts(db).pending_count() == 0, timeout=LEASE.total_seconds() + 25,
                      what="the standby to deliver everything")
        standby = 1 - leaders[0]
        assert "leading" in logs[standby].read_text()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
    fake.chaos(0)
    posted = posted_everywhere(fake)
    assert set(posted) == expected == slack_alert_ids(db), "every alert, and nothing the test did not expect"
    assert set(posted.values()) == {1}, f"posted twice: {[a for a, n in posted.items() if n > 1]}"
    assert delivery_states(db) == Counter({"sent": len(expected)})  # nothing pending, nothing dead-lettered
    assert not any(Alerts(db).status(a).dead for a in accounts)  # what `/billing alerts` would list
    calls = fake.calls()
    assert sum(c.status != 200 for c in calls) >= 3, "the fake really injected failures"
    assert any(c.method == "conversations.history" and c.at > killed_at for c in calls), \
        "the standby looked in the history before re-sending what the killed leader had claimed"
    posts = [c for c in calls if c.method == "chat.postMessage"]
    for i, call in enumerate(posts):
        if call.status == 429:  # Retry-After (1 s) was honoured by whichever worker sent it next
            again = next((c for c in posts[i + 1:] if delivery_of(c) == delivery_of(call)), None)
            assert again is not None and again.at - call.at >= 1.0


def test_quiet_hours_hold_an_alert_until_they_end(db: Database, fake: FakeSlack) -> None:
    seed(db)
    alerts = Alerts(db)
    alerts.evaluate(EVALUATED)
    hour = wall().hour
    alerts.set_quiet_hours("C_FINANCE", (hour, (hour + 2) % 24), "UTC", actor="test", now=f.T0)
    assert deliverer(db, fake).run_once().sent == 0
    due = alerts.next_due()
    assert due is not None and due.hour == (hour + 2) % 24 and due > wall()
    assert fake.messages("C_FINANCE") == []
    tally = deliverer(db, fake, clock=lambda: due + timedelta(seconds=1)).run_once()  # the morning after
    assert tally.sent == 1 and len(fake.messages("C_FINANCE")) == 1


# --- mirrors: signed web-hooks and Slack incoming web-hooks ---------------------------------------------------

SECRET = "whsec_" + base64.b64encode(b"alert-webhook-test-secret-32byte").decode()


class Receiver:
    """A web-hook receiver on 127.0.0.1 that answers with scripted statuses and keeps what it got."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.got: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"nope")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


def mirrored(db: Database, fake: FakeSlack, targets: WebhookTargets) -> Deliverer:
    sender = deliverer(db, fake)
    sender.alerts = Alerts(db, mirrors=targets.mirrors)
    sender.webhooks = targets
    return sender


def test_alerts_are_mirrored_as_signed_web_hooks_retried_with_the_same_id(
        db: Database, fake: FakeSlack, receiver: Receiver) -> None:
    seed(db)
    targets = WebhookTargets(receiver.url, SECRET)
    sender = mirrored(db, fake, targets)
    sender.alerts.evaluate(EVALUATED)
    receiver.statuses = [503, 429]
    tally = sender.drain(timeout_s=20)
    assert (tally.sent, tally.retried, tally.dead) == (2, 2, 0)  # Slack once, the web-hook after two refusals
    assert len({headers["webhook-id"] for headers, _ in receiver.got}) == 1 and len(receiver.got) == 3
    headers, body = receiver.got[-1]
    event = Webhook(SECRET).verify(body, headers)
    assert event["type"] == "alert.created" and event["data"]["rule"] == "overdue"
    assert "acme: invoice INV-" in event["data"]["summary"]
    assert len(fake.messages("C_FINANCE")) == 1


def test_a_refused_web_hook_is_dead_lettered_and_incoming_web_hooks_get_text_only(
        db: Database, fake: FakeSlack, receiver: Receiver) -> None:
    account_id = seed(db)
    targets = WebhookTargets(receiver.url, SECRET, incoming_url=receiver.url)
    sender = mirrored(db, fake, targets)
    sender.alerts.evaluate(EVALUATED)
    receiver.statuses = [410]  # the first mirror to be tried is refused for good
    tally = sender.drain(timeout_s=10)
    assert (tally.sent, tally.dead) == (2, 1)
    [dead] = sender.alerts.status(account_id).dead
    assert dead.channel in ("webhook", "incoming") and "HTTP 410" in dead.error
    plain = [json.loads(body) for headers, body in receiver.got if "webhook-id" not in headers]
    assert all(set(p) == {"text", "unfurl_links", "unfurl_media"} for p in plain)


def test_web_hook_targets_come_from_the_environment_and_need_a_signing_secret() -> None:
    assert WebhookTargets.from_env({}).mirrors == ()
    both = WebhookTargets.from_env({"ALERT_WEBHOOK_URL": "https://x/hook", "ALERT_WEBHOOK_SECRET": SECRET,
                                    "ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X"})
    assert both.mirrors == ("webhook", "incoming")
    with pytest.raises(SystemExit, match="whsec_"):
        WebhookTargets.from_env({"ALERT_WEBHOOK_URL": "https://x/hook"})


def test_without_the_history_scope_an_interrupted_post_is_held_back_with_a_hint_not_repeated(
        db: Database, fake: FakeSlack) -> None:
    account_id = seed(db)
    alerts = Alerts(db, lease=timedelta(seconds=0))
    alerts.evaluate(EVALUATED)
    [job] = alerts.claim_due(wall())  # claimed, then the worker died: nobody knows whether it was posted
    fake.fail_next("conversations.history", error="missing_scope")
    tally = deliverer(db, fake).drain(timeout_s=5)
    assert (tally.sent, tally.dead) == (0, 1) and fake.calls("chat.postMessage") == []
    [dead] = alerts.status(account_id).dead
    assert dead.alert_id == job.alert.id and "channels:history" in dead.error and "retry" in dead.error


def test_worker_once_from_the_command_line_evaluates_and_delivers(
        db: Database, db_url: str, fake: FakeSlack) -> None:
    seed(db)
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake.url}
    command = [sys.executable, "-m", "bot.cli", "--database-url", db_url, "worker", "--once"]
    for _ in range(2):  # the second run finds nothing new to post
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False,
                              cwd=Path(__file__).parents[1])
        assert done.returncode == 0, done.stderr
        assert "0 still queued" in done.stdout
    assert sum("INV-" in m.text for m in fake.messages("C_FINANCE")) == 1
