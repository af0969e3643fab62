"""Alerts out of Slack: signed JSON web-hooks (PagerDuty/Teams/ticketing bridges) and Slack incoming web-hooks.

Contract:
- Configured at start-up from the environment: `ALERT_WEBHOOK_URL` with `ALERT_WEBHOOK_SECRET` (`whsec_…`) for
  signed JSON, `ALERT_SLACK_WEBHOOK_URL` for a workspace without the bot. Each configured target is an outbox
  purpose ("webhook", "incoming"): every new alert gets a delivery row for it in the alert's transaction.
- Signed JSON follows Standard Webhooks: headers `webhook-id` (`alert-<id>`, the same on every attempt, so the
  receiver de-duplicates retries), `webhook-timestamp`, `webhook-signature` (HMAC-SHA256, the `standardwebhooks`
  package). Body: `{"type": "alert.created", "timestamp": …, "data": {id, rule, account, summary, payload, …}}`.
- Same retry rules as Slack posts: 2xx delivered; 429 waits for Retry-After; 408, 5xx and connection errors back
  off with jitter; any other 4xx is a dead letter (shown by `/billing alerts status`).
- Incoming web-hooks are text only, by their nature: a fixed channel chosen at install, no `ts` (so no thread,
  no chart or PDF, no "resolved" reply, no acknowledge), about one message per second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx
from standardwebhooks.webhooks import Webhook

from billing_core.alerts.rules import AlertInfo

WEBHOOK, INCOMING = "webhook", "incoming"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class WebhookTargets:
    url: str | None = None
    secret: str | None = None
    incoming_url: str | None = None

    @property
    def mirrors(self) -> tuple[str, ...]:
        """The outbox purposes these targets add to every alert."""
        return tuple(p for p, on in ((WEBHOOK, self.url), (INCOMING, self.incoming_url)) if on)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookTargets:
        url, secret = env.get("ALERT_WEBHOOK_URL") or None, env.get("ALERT_WEBHOOK_SECRET") or None
        if url and not (secret and secret.startswith("whsec_")):
            raise SystemExit("ALERT_WEBHOOK_URL needs ALERT_WEBHOOK_SECRET, a whsec_… secret to sign alerts with.")
        return cls(url, secret, env.get("ALERT_SLACK_WEBHOOK_URL") or None)


@dataclass(frozen=True)
class Outgoing:
    url: str
    body: bytes
    headers: dict[str, str]


def signed_alert(url: str, secret: str, alert: AlertInfo, summary: str, *, now: datetime) -> Outgoing:
    """The alert as a Standard Webhooks request; `webhook-id` is stable across retries of the same alert."""
    body = json.dumps({"type": "alert.created", "timestamp": now.isoformat(), "data": {
        "id": alert.id, "rule": alert.rule, "account": alert.account, "currency": alert.currency,
        "summary": summary, "payload": alert.payload, "test": alert.is_test,
        "created_at": alert.created_at.isoformat()}}, separators=(",", ":"))
    msg_id = f"alert-{alert.id}"
    headers = {"content-type": "application/json", "webhook-id": msg_id,
               "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(secret).sign(msg_id, now, body)}
    return Outgoing(url, body.encode(), headers)


def incoming_alert(url: str, alert: AlertInfo, summary: str) -> Outgoing:
    text = ("[TEST] " if alert.is_test else "") + summary
    body = json.dumps({"text": text, "unfurl_links": False, "unfurl_media": False})
    return Outgoing(url, body.encode(), {"content-type": "application/json"})


def outgoing_for(targets: WebhookTargets, purpose: str, alert: AlertInfo, summary: str, *,
                 now: datetime) -> Outgoing | None:
    """The request for a mirror delivery, or None when that target is not configured (any more)."""
    if purpose == WEBHOOK and targets.url and targets.secret:
        return signed_alert(targets.url, targets.secret, alert, summary, now=now)
    if purpose == INCOMING and targets.incoming_url:
        return incoming_alert(targets.incoming_url, alert, summary)
    return None


def http_client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
