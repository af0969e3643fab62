"""Alerts in Slack, end to end: `/billing alerts …` and signed block_actions on alert messages (real Bolt app).

The demo workspace (tests/slack_harness.py): #finance is linked to acme-corp; U_ADMIN is a billing admin,
U_VIEWER a viewer. The seeded PostgreSQL schema is shared by the session, so every test here makes its own
test alert (each one unique) and undoes the routes and mutes it sets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from billing_core.alerts.rules import AlertInfo
from billing_core.alerts.service import Alerts
from billing_core.db.alert_models import AlertDelivery
from billing_core.db.models import AuditEntry
from bot.ids import Action
from bot.jobs.delivery import EVENT_TYPE, Deliverer, delivery_client
from bot.sandbox.fake_state import Channel, Message
from bot.views.alerts import alert_message
from bot.views.common import Reader, pack
from tests.slack_harness import BotHarness

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def post_test_alert(bot: BotHarness, kind: str = "overdue") -> tuple[Message, int]:
    """`/billing alerts test KIND` by the admin in #finance: the posted alert and its id."""
    before = len(bot.fake.messages("C_FINANCE"))
    bot.command(f"alerts test {kind}")
    bot.settle()
    posted = bot.fake.messages("C_FINANCE")[before:]
    assert len(posted) == 1, bot.last_text()
    msg = posted[0]
    assert msg.metadata and msg.metadata["event_type"] == EVENT_TYPE
    return msg, int(msg.metadata["event_payload"]["alert_id"])


def audit_actions(bot: BotHarness, entity_id: str) -> list[str]:
    with bot.db.unit_of_work() as s:
        return list(s.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == entity_id)))


def status_shown(bot: BotHarness, text: str = "alerts") -> str:
    """`/billing alerts` in #finance (linked, so public): the status message as JSON text."""
    bot.command(text)
    bot.settle()
    shown = [a for a in bot.answers() if a["text"].startswith("Alerts of acme-corp")]
    assert shown, bot.last_text()
    return json.dumps(shown[-1]["blocks"], ensure_ascii=False)


def action_ids(blocks: list[dict[str, Any]]) -> set[str]:
    return {e.get("action_id", "") for b in blocks for e in b.get("elements", [])}


def test_send_test_alert_posts_a_real_alert_marked_as_a_test(bot: BotHarness) -> None:
    msg, alert_id = post_test_alert(bot, "overdue")
    assert msg.text.startswith("[TEST] ") and "acme-corp: invoice INV-" in msg.text and "overdue" in msg.text
    assert "Test alert" in json.dumps(msg.blocks)
    assert {Action.ALERT_ACK, Action.ALERT_PDF, Action.ALERT_VIEW_INVOICE, Action.ALERT_MORE} <= action_ids(
        msg.blocks or [])
    assert "Test overdue alert posted" in bot.last_text()
    assert "alert.test" in audit_actions(bot, str(alert_id))


def test_acknowledge_updates_the_message_for_everyone_and_is_audited(bot: BotHarness) -> None:
    msg, alert_id = post_test_alert(bot)
    bot.click(Action.ALERT_ACK, pack({"i": alert_id}), message=msg)
    bot.settle()
    updated = next(m for m in bot.fake.messages("C_FINANCE") if m.ts == msg.ts)
    assert "Acknowledged by <@U_ADMIN>" in json.dumps(updated.blocks)
    assert Action.ALERT_ACK not in action_ids(updated.blocks or [])
    assert audit_actions(bot, str(alert_id)).count("alert.acknowledge") == 1


def test_download_pdf_lands_in_the_alerts_thread(bot: BotHarness) -> None:
    msg, alert_id = post_test_alert(bot)
    bot.click(Action.ALERT_PDF, pack({"i": alert_id}), message=msg)
    bot.settle()
    files = [f for f in bot.fake.files() if f.channel == "C_FINANCE" and f.thread_ts == msg.ts]
    assert len(files) == 1 and files[0].filename.startswith("INV-") and files[0].filename.endswith(".pdf")
    assert "alert.invoice_pdf" in audit_actions(bot, str(alert_id))


def test_view_invoice_answers_in_the_thread(bot: BotHarness) -> None:
    msg, alert_id = post_test_alert(bot)
    bot.click(Action.ALERT_VIEW_INVOICE, pack({"i": alert_id}), message=msg)
    bot.settle()
    replies = [m for m in bot.fake.replies("C_FINANCE", msg.ts) if m.ts != msg.ts]
    number = msg.text.split("invoice ")[1].split(" ")[0]
    assert len(replies) == 1 and number in replies[0].text


def test_snooze_is_confirmed_privately_and_mute_needs_an_admin(bot: BotHarness) -> None:
    msg, alert_id = post_test_alert(bot)
    bot.click(Action.ALERT_MORE, pack({"i": alert_id, "do": "snooze_1w"}), message=msg, action_type="overflow",
              user="U_VIEWER")
    bot.settle()
    assert "snoozed until" in bot.last_text(user="U_VIEWER")
    assert "alert.snooze" in audit_actions(bot, str(alert_id))
    bot.click(Action.ALERT_MORE, pack({"i": alert_id, "do": "mute"}), message=msg, action_type="overflow",
              user="U_VIEWER")
    bot.settle()
    assert "Only billing admins" in bot.last_text(user="U_VIEWER")
    bot.click(Action.ALERT_MORE, pack({"i": alert_id, "do": "mute"}), message=msg, action_type="overflow")
    bot.settle()
    assert "muted in <#C_FINANCE>" in bot.last_text()
    assert "Muted: *overdue* in <#C_FINANCE>" in status_shown(bot)
    bot.command("alerts unmute overdue")
    bot.settle()
    assert "posted in <#C_FINANCE> again" in bot.last_text()


def test_route_takes_a_channel_mention_and_warns_when_the_bot_is_not_there(bot: BotHarness) -> None:
    bot.command("alerts route budget <#C_ENG|eng-costs>")
    bot.settle()
    assert "Budget alerts of acme-corp now go to <#C_ENG>." in bot.last_text()
    assert "*budget* → <#C_ENG>" in status_shown(bot, "alerts status")
    bot.command("alerts route anomaly <#C_NOTIN|random>")
    bot.settle()
    assert "invite it" in bot.last_text()
    for kind in ("budget", "anomaly"):
        bot.command(f"alerts route {kind} off")
        bot.settle()
    assert "go to the default channel again" in bot.last_text()


@pytest.mark.parametrize(("text", "user", "expected"), [
    ("alerts route nonsense #finance", "U_ADMIN", "is not a kind of alert"),
    ("alerts quiet 25-7", "U_ADMIN", "is not a range of hours"),
    ("alerts quiet 22-7 Mars/Olympus", "U_ADMIN", "Unknown time zone"),
    ("alerts route overdue <#C_ENG|eng-costs>", "U_VIEWER", "Only billing admins"),
    ("alerts test overdue", "U_VIEWER", "Only billing admins"),
    ("alerts frobnicate", "U_ADMIN", "I can show alert routes"),
])
def test_bad_requests_get_one_friendly_private_message(bot: BotHarness, text: str, user: str, expected: str) -> None:
    before = len(bot.fake.messages("C_FINANCE"))
    bot.command(text, user=user)
    bot.settle()
    assert expected in bot.last_text(user=user)
    assert len(bot.fake.messages("C_FINANCE")) == before  # nothing posted for everyone


def test_quiet_hours_are_set_and_listed(bot: BotHarness) -> None:
    bot.command("alerts quiet 22-7 Europe/Berlin")
    bot.settle()
    assert "between 22:00 and 07:00 (Europe/Berlin)" in bot.last_text()
    assert "Quiet hours: <#C_FINANCE> 22:00–07:00 Europe/Berlin" in status_shown(bot)
    bot.command("alerts quiet off")
    bot.settle()
    assert "No quiet hours" in bot.last_text()


def test_a_forecast_alert_carries_its_chart_in_the_thread(bot: BotHarness) -> None:
    msg, _ = post_test_alert(bot, "forecast")
    assert msg.text.startswith("[TEST] acme-corp: ") and "heading for" in msg.text
    files = [f for f in bot.fake.files() if f.channel == "C_FINANCE" and f.thread_ts == msg.ts]
    assert [f.filename for f in files] == ["forecast.png"] and files[0].content is not None
    assert files[0].content.startswith(b"\x89PNG")


@pytest.mark.parametrize(("kind", "chart"), [("budget", None), ("anomaly", "cost-trend-30-days.png"),
                                             ("digest", "cost-trend-30-days.png")])
def test_every_kind_of_test_alert_is_built_from_real_data(bot: BotHarness, kind: str, chart: str | None) -> None:
    msg, _ = post_test_alert(bot, kind)
    assert msg.text.startswith("[TEST] acme-corp: ") and len(msg.blocks or []) <= 50
    files = [f.filename for f in bot.fake.files() if f.channel == "C_FINANCE" and f.thread_ts == msg.ts]
    assert files == ([chart] if chart else [])


def _info(rule: str, payload: dict[str, Any]) -> AlertInfo:
    return AlertInfo(id=7, rule=rule, subject="1/x", account_id=1, account="<!channel> & co", currency="EUR",
                     timezone="Europe/Berlin", payload=payload, status="open", is_test=False,
                     created_at=datetime(2026, 11, 23, 8, tzinfo=UTC), channel="C1", message_ts=None,
                     acknowledged_by=None, acknowledged_at=None, snoozed_until=None)


def test_alert_views_escape_names_keep_a_text_fallback_and_fit_slack_limits() -> None:
    overdue = _info("overdue", {"number": "INV-0042", "amount_due": "1234.5", "total": "1234.5",
                                "due_date": "2026-11-10", "days_overdue": 13, "reminder": True})
    msg = alert_message(overdue, Reader("de_DE", ZoneInfo("Europe/Berlin")))
    assert msg["text"].startswith("Reminder: &lt;!channel&gt; &amp; co: invoice INV-0042 is 13 days overdue, ")
    assert "1.234,50" in msg["text"] and msg["text"].endswith("due since 10.11.2026")  # the reader's locale
    mrkdwn = [b["text"]["text"] for b in msg["blocks"] if b.get("text", {}).get("type") == "mrkdwn"]
    assert mrkdwn and not any("<!channel>" in m for m in mrkdwn) and len(msg["blocks"]) <= 50
    movers = [{"name": f"deployment d{i}", "cost": "10", "delta": "-2.5"} for i in range(3)]
    digest = _info("digest", {"week_start": "2026-11-16", "week_end": "2026-11-22", "total": "700", "previous": "600",
                              "change_pct": "16.7", "open_count": 2, "outstanding": "50", "overdue": "0",
                              "movers": movers})
    text = json.dumps(alert_message(digest, Reader())["blocks"], ensure_ascii=False)
    assert "deployment d0: €10.00 (−€2.50)" in text and "Open invoices" in text


def test_an_alert_to_a_channel_without_the_bot_is_reported_and_can_be_retried_after_an_invite(
        bot: BotHarness) -> None:
    bot.command("alerts route overdue <#C_NOTIN|random>")
    bot.settle()
    bot.command("alerts test overdue")
    bot.settle()
    assert "could not be posted in the overdue channel: not_in_channel — invite the bot" in bot.last_text()
    assert "then `/billing alerts retry`" in status_shown(bot)
    bot.fake.add_channel(Channel("C_NOTIN", "random", ["U_ADMIN", "U_VIEWER", "U_NOBODY", "U_BOT"]))  # /invite
    bot.command("alerts retry")
    bot.settle()
    assert "1 undelivered alert queued again" in bot.last_text()
    sender = Deliverer(Alerts(bot.db), bot.deps.billing, delivery_client("xoxb-harness", bot.fake.url),
                       clock=bot.deps.clock, with_charts=False)
    assert sender.drain(timeout_s=10).sent == 1  # what the worker does on its next pass
    assert [m.text[:7] for m in bot.fake.messages("C_NOTIN")] == ["[TEST] "]
    bot.command("alerts route overdue off")
    bot.settle()
    assert "No undelivered alerts." in status_shown(bot)


def test_a_test_alert_is_mirrored_to_the_alert_web_hook_like_every_alert(bot: BotHarness) -> None:
    """The web process's one alert service carries the mirrors (bot.deps reads them like the worker)."""
    bot.deps.alerts = Alerts(bot.db, bot.deps.billing, mirrors=("webhook",))
    _, alert_id = post_test_alert(bot, "budget")
    with bot.db.unit_of_work() as s:
        purposes = set(s.scalars(select(AlertDelivery.purpose).where(AlertDelivery.alert_id == alert_id)))
    assert purposes == {"alert", "webhook"}
