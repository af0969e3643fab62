"""The alert delivery loop: posts outbox entries with chat.postMessage, exactly once, nothing lost.

Contract:
- Every message carries Slack message metadata `billing_alert` with the alert and delivery ids. Before
  re-sending a delivery whose earlier attempt ended ambiguously (a crash, a timeout, a dropped connection or
  a 5xx after the request left), the channel's history is searched for that metadata; if the message is
  there, its ts is recorded instead of posting a second time.
- 429 waits for Retry-After; 5xx and connection errors back off exponentially with jitter; permanent errors
  (`channel_not_found`, `not_in_channel`, `is_archived`, …) are dead-lettered at once with a hint; anything
  else gives up after `MAX_ATTEMPTS`. The WebClient used here has NO retry handlers: a blind SDK retry after
  a dropped connection is exactly how duplicates happen, so every retry goes through the outbox.
- At most one message per second per channel from this process (the worker is the only sender).
- A pass claims up to 50 entries, and its pacing and uploads may outlast any lease, so each claim is renewed
  (for `Alerts.lease`) right before every Slack call that could post it; a claim another worker took over after
  it lapsed is let go ("lost"), never sent a second time. So the renewal only has to cover one call, and the
  pass claims for just `CLAIM_LEASE`: a worker killed mid-pass strands what it had not reached yet for seconds.
- After an alert is posted, its chart (forecast, anomaly, digest) or document (an issued invoice's PDF) is
  uploaded into its thread, best effort.
- Mirrors (`bot.jobs.webhooks`: signed JSON, Slack incoming web-hooks) go through the same outbox and rules.
- With OAuth installs, each delivery is posted (looked up, charted) by the bot of the workspace that may see the
  account and the channel (`bot.jobs.workspaces`); an account no installed workspace may see is dead-lettered.
"""

from __future__ import annotations

import http.client
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import charts
from billing_core import exports
from billing_core.alerts.rules import AlertInfo
from billing_core.alerts.service import MIRRORS, Alerts, Delivery
from billing_core.service import Billing
from bot.jobs.webhooks import WebhookTargets, http_client, outgoing_for
from bot.jobs.workspaces import InstalledWorkspaces, NotInstalled
from bot.views.alerts import alert_message, alert_summary, resolved_reply
from bot.views.common import Reader

log = logging.getLogger("billing_bot.delivery")

EVENT_TYPE = "billing_alert"
CHANNEL_GAP_S = 1.1  # Slack allows about one message per second per channel; a margin for clock jitter
HISTORY_LIMIT = 200
MAX_BACKOFF_S = 300.0
CLAIM_LEASE = timedelta(seconds=5)  # reserves a pass's entries until it reaches them; renewed before each call
PERMANENT = frozenset({"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "account_inactive",
                       "token_revoked", "missing_scope", "invalid_blocks", "msg_too_long", "no_text",
                       "restricted_action", "thread_not_found"})
INVITE_HINT = " — invite the bot to the channel (`/invite @billing-bot`) or route the alerts elsewhere"
SCOPE_HINT = (" — the app lacks a scope (channels:history/groups:history are needed to rule out a duplicate after"
              " an interrupted post): reinstall it from the manifest, then `/billing alerts retry`")
Clock = Callable[[], datetime]


@dataclass
class Tally:
    """What one pass did; `found` counts ambiguous deliveries recovered from the channel's history, `lost` the
    lapsed claims another worker had taken over."""

    sent: int = 0
    found: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


def alert_metadata(job: Delivery) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE,
            "event_payload": {"alert_id": job.alert.id, "delivery_id": job.id, "rule": job.alert.rule}}


def reader_for(alert: AlertInfo) -> Reader:
    return Reader("en_US", ZoneInfo(alert.timezone))


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential (1, 2, 4 … s, capped at 5 min) with ±50 % jitter so many workers do not retry in step."""
    base = min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1))
    return timedelta(seconds=base * (0.5 + rng()))


def _retry_after(error: SlackApiError) -> float:
    headers = {str(k).lower(): v for k, v in (error.response.headers or {}).items()}
    value = headers.get("retry-after", "1")
    return _seconds(value[0] if isinstance(value, list) else value)


def _seconds(value: object) -> float:
    try:
        return max(0.0, float(str(value if value is not None else "1")))
    except ValueError:
        return 1.0


def interleave(jobs: list[Delivery]) -> list[Delivery]:
    """Round-robin over channels (oldest first within each), so one busy channel's pacing does not hold up
    the others: ten alerts for #a and one for #b post #b second, not eleventh."""
    rank: dict[str, int] = {}
    order = []
    for position, job in enumerate(jobs):
        rank[job.channel] = rank.get(job.channel, -1) + 1
        order.append((rank[job.channel], position, job))
    return [job for _, _, job in sorted(order, key=lambda item: (item[0], item[1]))]


@dataclass
class Deliverer:
    alerts: Alerts
    billing: Billing
    client: WebClient
    clock: Clock
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    rng: Callable[[], float] = random.random
    with_charts: bool = True
    webhooks: WebhookTargets = field(default_factory=WebhookTargets)
    http: httpx.Client = field(default_factory=http_client)
    workspaces: InstalledWorkspaces | None = None  # OAuth installs: each alert posted by its workspace's own bot
    _last_post: dict[str, float] = field(default_factory=dict)

    def run_once(self, *, alert_id: int | None = None) -> Tally:
        """Claim what is due now and deliver it; returns what happened."""
        tally = Tally()
        for job in interleave(self.alerts.claim_due(self.clock(), alert_id=alert_id, lease=CLAIM_LEASE)):
            tally.add(self.deliver(job))
        return tally

    def drain(self, *, timeout_s: float = 60.0, alert_id: int | None = None) -> Tally:
        """Deliver until the outbox is empty (or `timeout_s`), sleeping until the next entry is due."""
        total, deadline = Tally(), self.monotonic() + timeout_s
        while self.monotonic() < deadline:
            tally = self.run_once(alert_id=alert_id)
            for name in ("sent", "found", "retried", "dead", "lost"):
                setattr(total, name, getattr(total, name) + getattr(tally, name))
            due = self.alerts.next_due()
            if due is None:
                break
            self.sleep(min(1.0, max(0.05, (due - self.clock()).total_seconds())))
        return total

    # --- one delivery ------------------------------------------------------------------------------

    def deliver(self, job: Delivery) -> str:
        """Post one claimed delivery; returns "sent", "found", "retried", "dead" or "lost"."""
        if job.purpose in MIRRORS:
            return self._send_mirror(job)
        try:
            client = self._slack_for(job)
        except NotInstalled as missing:
            self.alerts.give_up(job.id, str(missing))
            return "dead"
        except SlackApiError as error:
            return self._failed(job, error)
        except (OSError, http.client.HTTPException) as error:
            return self._retry(job, f"workspace lookup failed: {error!r}"[:300], ambiguous=job.ambiguous)
        if job.ambiguous:
            if not self._still_mine(job):
                return "lost"
            try:
                found = self._find_posted(job, client)
            except SlackApiError as error:
                return self._failed(job, error)
            except (OSError, http.client.HTTPException) as error:
                return self._retry(job, f"history lookup failed: {error!r}"[:300], ambiguous=True)
            if found is not None:
                self.alerts.record_sent(job.id, found, now=self.clock())
                log.info("delivery %s was already posted (ts %s): recorded, not re-sent", job.id, found)
                return "found"
        self._pace(job.channel)
        if not self._still_mine(job):
            return "lost"
        try:
            result = client.chat_postMessage(**self.message_for(job))
        except SlackApiError as error:
            return self._failed(job, error)
        except (OSError, http.client.HTTPException) as error:
            # The request may have reached Slack before the connection broke: look before the next attempt.
            return self._retry(job, f"connection error: {error!r}"[:300], ambiguous=True)
        ts = str(result["ts"])
        self.alerts.record_sent(job.id, ts, now=self.clock())
        if job.purpose == "alert" and self.with_charts:
            self._chart(job.alert, ts, client)
        return "sent"

    def _slack_for(self, job: Delivery) -> WebClient:
        """The client that posts this delivery: the one workspace's, or (OAuth) that of the channel's workspace."""
        if self.workspaces is None:
            return self.client
        return self.workspaces.client_for(job.alert.account_id, job.channel)

    def message_for(self, job: Delivery) -> dict[str, Any]:
        reader = reader_for(job.alert)
        body = alert_message(job.alert, reader) if job.purpose == "alert" else resolved_reply(job.alert, reader)
        kwargs: dict[str, Any] = {"channel": job.channel, "metadata": alert_metadata(job), "unfurl_links": False,
                                  "unfurl_media": False, **body}
        if job.purpose != "alert":
            kwargs["thread_ts"] = job.alert.message_ts
        return kwargs

    def _still_mine(self, job: Delivery) -> bool:
        """Renew the claim for the call about to be made; False when another worker owns the delivery now."""
        if self.alerts.renew_claim(job.id, job.attempts, now=self.clock()):
            return True
        log.warning("delivery %s (alert %s) was taken over by another worker after its lease lapsed: not sent here",
                    job.id, job.alert.id)
        return False

    def _pace(self, channel: str) -> None:
        last = self._last_post.get(channel)
        if last is not None:
            wait = last + CHANNEL_GAP_S - self.monotonic()
            if wait > 0:
                self.sleep(wait)
        self._last_post[channel] = self.monotonic()

    def _find_posted(self, job: Delivery, client: WebClient) -> str | None:
        """The ts of this delivery's message if an earlier attempt posted it (found by its metadata)."""
        if job.purpose == "alert":
            page = client.conversations_history(channel=job.channel, limit=HISTORY_LIMIT,
                                                     include_all_metadata=True)
        else:
            page = client.conversations_replies(channel=job.channel, ts=job.alert.message_ts or "",
                                                     limit=HISTORY_LIMIT, include_all_metadata=True)
        for msg in page.get("messages") or []:
            meta = msg.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == EVENT_TYPE and payload.get("delivery_id") == job.id:
                return str(msg["ts"])
        return None

    def _failed(self, job: Delivery, error: SlackApiError) -> str:
        status = error.response.status_code
        code = str(error.response.get("error") or f"http_{status}")
        if status == 429:
            wait = timedelta(seconds=_retry_after(error))
            return self._retry(job, "ratelimited", ambiguous=False, wait=wait)
        if status >= 500:
            return self._retry(job, f"Slack answered {status}", ambiguous=True)
        if code in PERMANENT:
            hint = INVITE_HINT if code in ("not_in_channel", "channel_not_found", "is_archived") else \
                SCOPE_HINT if code == "missing_scope" else ""
            self.alerts.give_up(job.id, f"{code}{hint}")
            log.warning("alert %s to %s dead-lettered: %s", job.alert.id, job.channel, code)
            return "dead"
        return self._retry(job, code, ambiguous=False)

    def _retry(self, job: Delivery, error: str, *, ambiguous: bool, wait: timedelta | None = None) -> str:
        now = self.clock()
        at = now + (wait if wait is not None else backoff(job.attempts, self.rng))
        if self.alerts.retry(job.id, error, at=at, ambiguous=ambiguous, now=now):
            return "retried"
        return "dead"

    # --- mirrors: signed web-hook, Slack incoming web-hook ---------------------------------------------

    def _send_mirror(self, job: Delivery) -> str:
        """POST the alert to a mirror; its receiver de-duplicates on `webhook-id`, so retries are safe."""
        request = outgoing_for(self.webhooks, job.purpose, job.alert, alert_summary(job.alert, reader_for(job.alert)),
                               now=self.clock())
        if request is None:
            self.alerts.give_up(job.id, f"no {job.purpose} URL is configured for this worker")
            return "dead"
        self._pace(job.purpose)
        if not self._still_mine(job):
            return "lost"
        try:
            response = self.http.post(request.url, content=request.body, headers=request.headers)
        except httpx.HTTPError as error:
            return self._retry(job, f"connection error: {error!r}"[:300], ambiguous=False)
        status = response.status_code
        if 200 <= status < 300:
            self.alerts.record_sent(job.id, "", now=self.clock())
            return "sent"
        if status == 429:
            wait = timedelta(seconds=_seconds(response.headers.get("retry-after")))
            return self._retry(job, "rate limited by the receiver", ambiguous=False, wait=wait)
        if status == 408 or status >= 500:
            return self._retry(job, f"the receiver answered {status}", ambiguous=False)
        self.alerts.give_up(job.id, f"the receiver refused it: HTTP {status} {response.text[:120]}".strip())
        return "dead"

    # --- the chart in the thread -------------------------------------------------------------------

    def _chart(self, alert: AlertInfo, ts: str, client: WebClient) -> None:
        try:
            chart = self._render(alert)
            if chart is None:
                return
            png, filename, title, alt = chart
            client.files_upload_v2(channel=alert.channel or "", thread_ts=ts, content=png, filename=filename,
                                        title=title, alt_txt=alt[:1000])
        except Exception:
            # The alert itself is delivered; a missing chart must not make it look undelivered.
            log.exception("could not upload the chart of alert %s", alert.id)

    def _render(self, alert: AlertInfo) -> tuple[bytes, str, str, str] | None:
        now = self.clock()
        if alert.rule == "forecast":
            projection = self.billing.forecast(alert.account_id, now=now)
            budget = Decimal(str(alert.payload["amount"]))
            return (charts.forecast_png(projection, budget=budget), "forecast.png",
                    f"{alert.account}: forecast {projection.period.label}",
                    charts.alt_text_forecast(projection, budget=budget))
        if alert.rule == "invoice":
            detail = self.billing.invoice(alert.account_id, str(alert.payload["number"]), now=now)
            return (exports.invoice_pdf(detail, locale=None), f"{detail.summary.number}.pdf",
                    f"Invoice {detail.summary.number}", f"Invoice {detail.summary.number} of {alert.account}")
        if alert.rule in ("anomaly", "digest"):
            days = self.billing.trend(alert.account_id, now=now, days=30)
            return (charts.cost_trend_png(days, currency=alert.currency), "cost-trend-30-days.png",
                    f"{alert.account}: cost, last 30 days", charts.alt_text_cost_trend(days, currency=alert.currency))
        return None


def delivery_client(token: str | None, api_url: str) -> WebClient:
    """A WebClient without retry handlers: the outbox decides every retry (see the module docstring)."""
    return WebClient(token=token, base_url=api_url, timeout=15, retry_handlers=[])
