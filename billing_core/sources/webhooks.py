"""Billing events pushed by a provider: signed web-hooks (Standard Webhooks), applied exactly once.

Wire format (https://www.standardwebhooks.com): `POST /webhooks/billing` with the headers `webhook-id`,
`webhook-timestamp` (Unix seconds, accepted within 5 minutes of now) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` with the shared `whsec_…` secret). The body:

    {"type": "invoice.paid", "timestamp": "2026-11-05T10:00:01Z",
     "provider": "Helios Compute", "account": "acme-corp", "data": {...}}

`data` holds the same objects as the provider API (`billing_core.sources.provider_api`, docs/provider-api.md):

    invoice.created | invoice.finalized | invoice.voided | invoice.payment_failed   data = invoice
    invoice.paid                                     data = invoice with "payment": the payment that settled it
    payment.succeeded | payment.failed               data = payment (its invoice must be known)
    usage.recorded                                   data = {"usage": [usage item, …]} (at most 10 000)

The provider must be configured for the account (`billing-bot provider add`): its records share the sync's
source, so an event and a later sync of the same object are one row. Every event is applied in ONE
transaction together with its `webhook-id` (`webhook_deliveries`), so a duplicate delivery changes nothing
and a failed one leaves nothing behind. Events may arrive out of order: an older invoice state never
un-pays a paid invoice (the ledger settles invoices from their payments) nor announces it as issued after its
payment was, and a payment whose invoice has not arrived yet is refused with `Conflict` so the sender retries
it later.

Errors come from the core's tree; the web edge turns them into HTTP: `Forbidden` (signature, timestamp)
401, `InvalidInput` (malformed body, unknown type) 400, `NotFound` (provider not set up for the account)
404, `Conflict` (retry later) 409.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from billing_core.alerts import rules
from billing_core.alerts.rules import Candidate
from billing_core.alerts.service import Alerts
from billing_core.db.engine import Database
from billing_core.db.ingest import ingest_usage, upsert_payment
from billing_core.db.models import Account, Invoice
from billing_core.db.queries import account_info, get_account, invoice_summary, payment_info
from billing_core.db.sync_models import endpoint_configs
from billing_core.db.webhook_models import WebhookDelivery
from billing_core.errors import Conflict, Forbidden, InvalidInput, NotFound
from billing_core.periods import local_today, zone
from billing_core.results import InvoiceSummary
from billing_core.sources.provider_api import (
    Json,
    ProviderError,
    Target,
    invoice_record,
    payment_record,
    usage_record,
)
from billing_core.sources.sync import upsert_provider_invoice

MAX_BODY_BYTES = 5_000_000
MAX_USAGE_ITEMS = 10_000


@dataclass(frozen=True)
class WebhookResult:
    """What one delivery did: `duplicate` when its webhook-id was applied before (nothing changed now)."""

    event_id: str
    event_type: str
    account_id: int
    summary: str
    duplicate: bool = False


@dataclass(frozen=True)
class _Event:
    """One verified event being applied inside the delivery's transaction."""

    s: Session
    id: str
    kind: str
    data: Json
    target: Target
    now: datetime


@dataclass(frozen=True)
class _Effect:
    summary: str
    notices: tuple[Candidate, ...] = ()  # alerts to queue with it (routed like every alert)


def _stored_invoice(e: _Event, external_id: str) -> InvoiceSummary:
    row = e.s.scalar(select(Invoice).where(Invoice.source == e.target.source, Invoice.external_id == external_id))
    assert row is not None  # upserted in this transaction
    timezone = e.s.scalar(select(Account.timezone).where(Account.id == row.account_id))
    return invoice_summary(row, local_today(e.now, zone(timezone or "UTC")))


def _apply_invoice(e: _Event) -> _Effect:
    record = invoice_record(e.data, e.target)
    upsert_provider_invoice(e.s, record, e.now)
    invoice = _stored_invoice(e, record.external_id)
    found = None
    if e.kind in ("invoice.created", "invoice.finalized"):
        found = rules.invoice_issued_candidate(invoice)
    elif e.kind == "invoice.payment_failed":
        found = rules.invoice_payment_failed_candidate(invoice, e.id)
    return _Effect(f"invoice {invoice.number} ({record.external_id}) {invoice.status.value}",
                   (found,) if found else ())


def _apply_paid_invoice(e: _Event) -> _Effect:
    payment = e.data.get("payment")
    if not isinstance(payment, dict):
        raise InvalidInput("invoice.paid needs `data.payment`: the payment that settled the invoice.")
    upsert_provider_invoice(e.s, invoice_record(e.data, e.target), e.now)
    return _apply_payment(replace(e, data={"invoice_id": e.data.get("id"), **payment}))


def _apply_payment(e: _Event) -> _Effect:
    record = payment_record(e.data, e.target)
    try:
        row, _ = upsert_payment(e.s, record, now=e.now)
    except NotFound:
        raise Conflict(f"Payment {record.external_id} is for an invoice not received yet.",
                       hint="Deliver it again after the invoice event (senders retry non-2xx answers).") from None
    invoice = _stored_invoice(e, row.invoice.external_id) if row.invoice and row.invoice.external_id else None
    found = rules.payment_candidate(payment_info(row), invoice)
    return _Effect(f"payment {record.external_id} {record.status.value}", (found,) if found else ())


def _apply_usage(e: _Event) -> _Effect:
    items = e.data.get("usage")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidInput("usage.recorded needs `data.usage`: a list of usage items.")
    if len(items) > MAX_USAGE_ITEMS:
        raise InvalidInput(f"usage.recorded carries at most {MAX_USAGE_ITEMS:,} items; split the batch.")
    result = ingest_usage(e.s, [usage_record(i, e.target) for i in items])
    return _Effect(f"usage: {result.inserted} new, {result.updated} updated, {result.unchanged} unchanged")


EVENTS: dict[str, Callable[[_Event], _Effect]] = {
    "invoice.created": _apply_invoice,
    "invoice.finalized": _apply_invoice,
    "invoice.voided": _apply_invoice,
    "invoice.payment_failed": _apply_invoice,
    "invoice.paid": _apply_paid_invoice,
    "payment.succeeded": _apply_payment,
    "payment.failed": _apply_payment,
    "usage.recorded": _apply_usage,
}


class WebhookReceiver:
    def __init__(self, db: Database, secret: str, alerts: Alerts) -> None:
        """`alerts` queues the notices: built with the process's alert mirrors, so they reach them too."""
        self.db = db
        self.webhook = Webhook(secret)
        self.alerts = alerts

    def receive(self, body: bytes, headers: Mapping[str, str], *, now: datetime) -> WebhookResult:
        """Verify, parse and apply one delivery (exactly once per webhook-id)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        event = self._verified(body, lowered)
        event_id = lowered["webhook-id"]  # present: the signature check needs it
        kind, data = _event_type(event), _object(event.get("data"), "`data`")
        try:
            with self.db.unit_of_work() as s:
                target = _target(s, event)
                previous = s.get(WebhookDelivery, event_id[:200])
                if previous is not None:
                    return WebhookResult(event_id, kind, previous.account_id, previous.summary, duplicate=True)
                # Claim the id before applying: a concurrent delivery of the same id blocks on this row and then
                # fails on its key, instead of applying the event a second time beside this one.
                delivery = WebhookDelivery(id=event_id[:200], event_type=kind, provider_id=target.provider_id,
                                           account_id=target.account_id, received_at=now, summary="")
                s.add(delivery)
                s.flush()
                effect = _applied(EVENTS[kind], _Event(s, event_id, kind, data, target, now))
                account = account_info(get_account(s, target.account_id))
                for notice in effect.notices:
                    self.alerts.notify(s, account, notice, now)
                delivery.summary = summary = effect.summary[:300]
        except IntegrityError:  # the same id applied by a concurrent delivery: this one changed nothing
            return WebhookResult(event_id, kind, 0, "applied by a concurrent delivery", duplicate=True)
        return WebhookResult(event_id, kind, target.account_id, summary)

    def _verified(self, body: bytes, headers: Mapping[str, str]) -> Json:
        if len(body) > MAX_BODY_BYTES:
            raise InvalidInput(f"The body is larger than {MAX_BODY_BYTES:,} bytes.")
        try:
            self.webhook.verify(body, dict(headers), json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:  # ValueError: a garbled signature header
            raise Forbidden(f"Web-hook signature refused: {exc}.") from None
        try:
            return _object(json.loads(body), "the body")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InvalidInput("The body is not valid JSON.") from None


def _applied(apply: Callable[[_Event], _Effect], event: _Event) -> _Effect:
    try:
        return apply(event)
    except ProviderError as exc:  # a malformed object: name the field, change nothing
        raise InvalidInput(exc.message) from None


def _object(value: Any, what: str) -> Json:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object.")
    return value


def _event_type(event: Json) -> str:
    kind = event.get("type")
    if kind not in EVENTS:
        raise InvalidInput(f"Unknown event type {str(kind)[:60]!r}.", hint=", ".join(EVENTS))
    return str(kind)


def _target(s: Session, event: Json) -> Target:
    provider, account = event.get("provider"), event.get("account")
    if not isinstance(provider, str) or not isinstance(account, str):
        raise InvalidInput("The event must name its `provider` and `account`.")
    for config in endpoint_configs(s, provider):
        if config.account.lower() == account.lower():
            return Target(config.account_id, config.provider_id, config.source, dict(config.deployments))
    raise NotFound(f"Provider {provider[:60]!r} is not set up for account {account[:60]!r}.",
                   hint="billing-bot provider add NAME URL --account ACCOUNT")
