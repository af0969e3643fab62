"""Billing web-hooks in: Standard Webhooks signatures, exactly one effect per event id, any order, clear 4xx."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from billing_core.alerts.service import Alerts
from billing_core.db.alert_models import Alert, AlertDelivery
from billing_core.db.engine import Database
from billing_core.db.models import Invoice, Payment, UsageRecord
from billing_core.db.sync_models import add_endpoint
from billing_core.db.webhook_models import WebhookDelivery
from billing_core.results import InvoiceStatus
from billing_core.service import Billing
from bot.app import build_app
from bot.config import Settings
from bot.deps import Deps
from bot.web import wsgi_app
from tests import factories

SECRET = "whsec_" + base64.b64encode(b"billing-webhook-test-secret-32b!").decode()

INVOICE = {"id": "in_1042", "status": "open", "issue_date": "2026-11-01", "due_date": "2026-12-01",
           "period_start": "2026-10-01", "period_end": "2026-10-31", "currency": "USD",
           "lines": [{"description": "Compute (vCPU)", "meter": "cpu", "quantity": "35712", "unit": "vCPU-h",
                      "unit_price": "0.042", "amount": "1499.90"}],
           "tax": "133.12", "fees": {"platform": "30.00"}, "payment_url": "https://pay.example/in_1042"}
PAYMENT = {"id": "py_77", "invoice_id": "in_1042", "amount": "1663.02", "currency": "USD", "status": "succeeded",
           "method": "card", "paid_at": "2026-11-05T10:00:00Z", "updated_at": "2026-11-05T10:00:01Z"}


@dataclass
class Hooks:
    http: httpx.Client
    db: Database
    sender: Webhook

    def send(self, kind: str, data: dict[str, Any], *, event_id: str | None = None, at: datetime | None = None,
             account: str = "acme", body: bytes | None = None, sender: Webhook | None = None) -> httpx.Response:
        """Deliver one event as a provider would: signed JSON with webhook-id/timestamp/signature headers."""
        event_id = event_id or f"msg_{kind}_{time.monotonic_ns()}"
        at = at or datetime.now(UTC)
        payload = body if body is not None else json.dumps({
            "type": kind, "timestamp": at.isoformat(), "provider": "Helios", "account": account, "data": data,
        }).encode()
        signature = (sender or self.sender).sign(event_id, at, payload.decode(errors="replace"))
        return self.http.post("/webhooks/billing", content=payload, headers={
            "webhook-id": event_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature,
            "content-type": "application/json"})

    def count(self, model: Any) -> int:
        with self.db.unit_of_work() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    def notices(self) -> list[tuple[str, str]]:
        """The notifications queued, oldest first, as (rule, period), e.g. ("payment", "confirmed")."""
        with self.db.unit_of_work() as s:
            return [(rule, period) for rule, period in s.execute(select(Alert.rule, Alert.period).order_by(Alert.id))]

    def route(self, channel: str) -> None:
        """Send every alert of the account to `channel`, so its notices get outbox rows (posts)."""
        account = Billing(self.db).account("acme")
        Alerts(self.db).set_route(account.id, "*", channel, actor="test", now=datetime.now(UTC))

    def invoice(self) -> Invoice:
        with self.db.unit_of_work() as s:
            row = s.scalar(select(Invoice).where(Invoice.external_id == "in_1042"))
            assert row is not None
            s.expunge(row)
            return row


@contextmanager
def served(db: Database) -> Iterator[Hooks]:
    """The web app built as `billing-bot web` builds it (the rest of its settings from the environment)."""
    settings = Settings(signing_secret="slack-secret", bot_token="xoxb-x", api_url="http://127.0.0.1:9/",
                        webhook_secret=SECRET)
    deps = Deps.build(settings, db=db)
    app = wsgi_app(build_app(settings, deps), deps)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bot.test") as http:
        yield Hooks(http, db, Webhook(SECRET))


@pytest.fixture
def hooks(db: Database) -> Iterator[Hooks]:
    with db.unit_of_work() as s:
        acct = factories.account(s, "acme")
        add_endpoint(s, provider="Helios", base_url="https://api.helios.example", token_env=None, account=acct,
                     now=factories.T0)
    with served(db) as hooks:
        yield hooks


def test_invoice_then_payment_settles_the_invoice(hooks: Hooks) -> None:
    assert hooks.send("invoice.created", INVOICE).json()["ok"] is True
    assert hooks.invoice().status == InvoiceStatus.PENDING.value
    assert hooks.invoice().total == Decimal("1663.02")
    assert hooks.send("payment.succeeded", PAYMENT).status_code == 200
    settled = hooks.invoice()
    assert settled.status == InvoiceStatus.PAID.value and settled.amount_due == 0


def test_a_thousand_replays_of_one_event_have_one_effect(hooks: Hooks) -> None:
    hooks.route("C_FINANCE")
    hooks.send("invoice.created", INVOICE)
    answers = [hooks.send("payment.succeeded", PAYMENT, event_id="msg_once").json() for _ in range(1000)]
    assert answers[0]["duplicate"] is False and all(a["duplicate"] for a in answers[1:])
    assert hooks.count(Payment) == 1 and hooks.count(WebhookDelivery) == 2
    assert hooks.invoice().amount_paid == Decimal("1663.02")
    assert hooks.notices() == [("invoice", "issued"), ("payment", "confirmed")]  # one "payment received"
    assert hooks.count(AlertDelivery) == 2  # one post each in #finance


@pytest.mark.parametrize("kind", ["invoice.created", "invoice.finalized"])
@pytest.mark.parametrize("late", ["draft", "open"])
def test_paid_before_created_ends_paid(hooks: Hooks, kind: str, late: str) -> None:
    assert hooks.send("invoice.paid", {**INVOICE, "status": "paid", "payment": PAYMENT}).status_code == 200
    assert hooks.send(kind, {**INVOICE, "status": late}).status_code == 200  # the older state, delivered late
    settled = hooks.invoice()
    assert settled.status == InvoiceStatus.PAID.value
    assert (settled.amount_paid, settled.amount_due) == (Decimal("1663.02"), Decimal(0))
    assert hooks.notices() == [("payment", "confirmed")]  # no "invoice issued" after "payment received"


def test_event_notices_are_mirrored_to_the_alert_web_hooks_like_every_alert(
        hooks: Hooks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://alerts.example/hook")
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ALERT_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/x")
    hooks.route("C_FINANCE")
    with served(hooks.db) as web:  # the web process started with the worker's mirror settings
        assert web.send("invoice.created", INVOICE).status_code == 200
        assert web.send("payment.succeeded", PAYMENT).status_code == 200
    with hooks.db.unit_of_work() as s:
        queued = sorted((rule, purpose, channel) for rule, purpose, channel in s.execute(
            select(Alert.rule, AlertDelivery.purpose, AlertDelivery.channel)
            .join(Alert, Alert.id == AlertDelivery.alert_id)))
    assert queued == [(rule, purpose, channel) for rule in ("invoice", "payment")
                      for purpose, channel in (("alert", "C_FINANCE"), ("incoming", "incoming"),
                                               ("webhook", "webhook"))]


def test_a_payment_before_its_invoice_is_refused_for_a_retry_and_then_applies(hooks: Hooks) -> None:
    early = hooks.send("payment.succeeded", PAYMENT, event_id="msg_pay")
    assert early.status_code == 409 and hooks.count(Payment) == 0
    hooks.send("invoice.created", INVOICE)
    assert hooks.send("payment.succeeded", PAYMENT, event_id="msg_pay").status_code == 200  # the sender's retry
    assert hooks.invoice().status == InvoiceStatus.PAID.value


def test_voided_invoice_is_cancelled(hooks: Hooks) -> None:
    hooks.send("invoice.created", INVOICE)
    hooks.send("invoice.voided", {**INVOICE, "status": "void"})
    assert hooks.invoice().status == InvoiceStatus.CANCELLED.value


def test_usage_batch_is_ingested_idempotently(hooks: Hooks) -> None:
    items = [{"id": f"u_{h}", "meter": "cpu", "quantity": "48", "unit": "vCPU-h", "cost": "2.016",
              "currency": "USD", "start": f"2026-10-01T{h:02d}:00:00Z", "end": f"2026-10-01T{h + 1:02d}:00:00Z"}
             for h in range(3)]
    assert "3 new" in hooks.send("usage.recorded", {"usage": items}).json()["applied"]
    assert "3 unchanged" in hooks.send("usage.recorded", {"usage": items}).json()["applied"]  # a new id, same data
    assert hooks.count(UsageRecord) == 3


@pytest.mark.parametrize(("problem", "status"), [
    ("bad signature", 401), ("stale timestamp", 401), ("future timestamp", 401), ("wrong secret", 401),
    ("truncated JSON", 400), ("unknown type", 400), ("float amount", 400), ("unknown account", 404),
    ("missing headers", 401),
])
def test_bad_deliveries_get_a_clear_4xx_and_change_nothing(hooks: Hooks, problem: str, status: int) -> None:
    now = datetime.now(UTC)
    if problem == "bad signature":
        body = json.dumps({"type": "invoice.created", "provider": "Helios", "account": "acme", "data": INVOICE})
        answer = hooks.http.post("/webhooks/billing", content=body, headers={
            "webhook-id": "msg_x", "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()})
    elif problem == "stale timestamp":
        answer = hooks.send("invoice.created", INVOICE, at=datetime.fromtimestamp(now.timestamp() - 301, UTC))
    elif problem == "future timestamp":
        answer = hooks.send("invoice.created", INVOICE, at=datetime.fromtimestamp(now.timestamp() + 301, UTC))
    elif problem == "wrong secret":
        other = Webhook("whsec_" + base64.b64encode(b"another-secret-of-32-bytes-long!").decode())
        answer = hooks.send("invoice.created", INVOICE, sender=other)
    elif problem == "truncated JSON":
        answer = hooks.send("invoice.created", INVOICE, body=b'{"type": "invoice.created", "data": {"id"')
    elif problem == "unknown type":
        answer = hooks.send("invoice.exploded", INVOICE)
    elif problem == "float amount":
        answer = hooks.send("invoice.created", {**INVOICE, "tax": 133.12})
    elif problem == "unknown account":
        answer = hooks.send("invoice.created", INVOICE, account="someone-else")
    else:
        answer = hooks.http.post("/webhooks/billing", content=b"{}")
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]
    assert hooks.count(Invoice) == 0 and hooks.count(WebhookDelivery) == 0


def test_duplicates_arriving_at_the_same_time_have_one_effect(hooks: Hooks) -> None:
    from concurrent.futures import ThreadPoolExecutor

    hooks.send("invoice.created", INVOICE)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: hooks.send("payment.succeeded", PAYMENT, event_id="msg_race"), range(16)))
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers if a.status_code != 200][:2]
    assert sum(not a.json()["duplicate"] for a in answers) == 1
    assert hooks.count(Payment) == 1 and hooks.invoice().amount_paid == Decimal("1663.02")


def test_events_post_the_notifications_their_routes_ask_for(hooks: Hooks) -> None:
    """Invoice issued → its PDF in the thread; payment failed → a Pay button; payment received → a note."""
    from bot.jobs.delivery import Deliverer, delivery_client
    from bot.sandbox.fake_slack import FakeSlack
    from tests.test_bot_commands import buttons, pdf_text

    hooks.route("C_FINANCE")
    hooks.send("invoice.created", INVOICE, event_id="msg_inv")
    hooks.send("invoice.created", INVOICE, event_id="msg_inv_again")  # the same invoice again: no second notice
    hooks.send("payment.failed", {**PAYMENT, "id": "py_76", "status": "failed"})
    hooks.send("payment.succeeded", PAYMENT)
    with FakeSlack() as fake:
        deliverer = Deliverer(Alerts(hooks.db), Billing(hooks.db), delivery_client("xoxb-test", fake.url),
                              clock=lambda: datetime.now(UTC), rng=lambda: 0.0)
        deliverer.drain(timeout_s=30)
        issued, failed, received = fake.messages("C_FINANCE")
        assert "invoice INV-0001 issued" in issued.text and "$1,663.02" in issued.text
        [pdf] = [f for f in fake.files() if f.thread_ts == issued.ts]
        assert "INV-0001" in pdf_text(pdf.content or b"")
        assert "failed" in failed.text
        assert buttons(failed.blocks or [])["pay"]["url"] == "https://pay.example/in_1042"
        assert "received" in received.text and "INV-0001" in received.text
