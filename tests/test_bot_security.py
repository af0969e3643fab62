"""Requests that must never reach a handler: forged, stale and replayed signatures; and the ID registry."""

from __future__ import annotations

import time

import pytest

from bot.ids import Action, View
from bot.sandbox import signing
from tests.slack_harness import SECRET, BotHarness


def _signed_command(bot: BotHarness, *, secret: str = SECRET, timestamp: int | None = None) -> signing.Request:
    return signing.slash_command_request(secret, text="invoices overdue", timestamp=timestamp,
                                         response_url=bot.fake.response_url(channel="C_FINANCE", user="U_ADMIN"),
                                         trigger_id=bot.fake.issue_trigger_id())


def test_a_forged_signature_is_refused_with_401_and_reaches_no_handler(bot: BotHarness) -> None:
    response = bot.post(_signed_command(bot, secret="not-the-signing-secret"))
    bot.settle()
    assert response.status_code == 401
    assert bot.fake.calls() == []  # not even users.info: no listener ran


def test_a_tampered_body_is_refused(bot: BotHarness) -> None:
    body, headers = _signed_command(bot)
    response = bot.post((body.replace(b"overdue", b"paid"), headers))
    assert response.status_code == 401


def test_a_stale_request_older_than_five_minutes_is_refused(bot: BotHarness) -> None:
    response = bot.post(_signed_command(bot, timestamp=int(time.time()) - 301))
    bot.settle()
    assert response.status_code == 401 and bot.fake.calls() == []


def test_a_replayed_request_is_refused_the_second_time(bot: BotHarness) -> None:
    request = _signed_command(bot)
    assert bot.post(request).status_code == 200
    bot.settle()
    answered = len(bot.fake.messages("C_FINANCE"))
    assert answered == 1
    replay = bot.post(request)
    bot.settle()
    assert replay.status_code == 401
    assert len(bot.fake.messages("C_FINANCE")) == answered


def test_health_endpoint_checks_the_database(bot: BotHarness) -> None:
    assert bot.http.get("/healthz").json() == {"ok": True}


@pytest.mark.parametrize("action_id", [a.value for a in Action])
def test_every_action_id_has_a_listener(bot: BotHarness, action_id: str) -> None:
    """A button whose action has no listener would answer 404 (Slack shows the user an error)."""
    response = bot.click(action_id, "{}", channel="C_GENERAL")
    bot.settle()
    assert response.status_code == 200


@pytest.mark.parametrize("callback_id", [v.value for v in View])
def test_every_modal_has_a_submission_listener(bot: BotHarness, callback_id: str) -> None:
    response = bot.submit({"callback_id": callback_id, "private_metadata": "{}"}, {})
    assert response.status_code == 200
