"""Requests that must never reach a handler: forged, stale and replayed signatures; and the ID registry."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from bot.ids import Action, View
from bot.sandbox import signing
from tests.slack_harness import SECRET, BotHarness

Build = Callable[[BotHarness, str, int | None], signing.Request]


def _command(bot: BotHarness, secret: str, timestamp: int | None) -> signing.Request:
    return signing.slash_command_request(secret, text="invoices overdue", timestamp=timestamp,
                                         response_url=bot.fake.response_url(channel="C_FINANCE", user="U_ADMIN"),
                                         trigger_id=bot.fake.issue_trigger_id())


def _click(bot: BotHarness, secret: str, timestamp: int | None) -> signing.Request:
    """*Open* on an invoice row: the invoice is posted in #finance."""
    return signing.block_action_request(secret, action_id=Action.INVOICE_OPEN, value='{"n": "INV-0003"}',
                                        message={"ts": None}, timestamp=timestamp,
                                        response_url=bot.fake.response_url(channel="C_FINANCE", user="U_ADMIN"),
                                        trigger_id=bot.fake.issue_trigger_id())


def _submit(bot: BotHarness, secret: str, timestamp: int | None) -> signing.Request:
    """The invoice filter modal, submitted empty: the list is posted in #finance."""
    return signing.view_submission_request(secret, values={}, callback_id=View.INVOICE_FILTER,
                                           private_metadata='{"c": "C_FINANCE"}', timestamp=timestamp,
                                           trigger_id=bot.fake.issue_trigger_id())


def _event(bot: BotHarness, secret: str, timestamp: int | None) -> signing.Request:
    """App Home opened: the Home tab is published."""
    return signing.event_request(secret, signing.app_home_opened("U_ADMIN"), timestamp=timestamp)


def _posted(bot: BotHarness) -> int:
    return len(bot.fake.messages("C_FINANCE"))


def _published(bot: BotHarness) -> int:
    return len(bot.fake.calls("views.publish"))


# Every kind of request Slack signs, with what a handled one visibly does.
KINDS: dict[str, tuple[Build, Callable[[BotHarness], int]]] = {
    "slash command": (_command, _posted), "block action": (_click, _posted),
    "view submission": (_submit, _posted), "event": (_event, _published),
}
kinds = pytest.mark.parametrize("kind", sorted(KINDS))


@kinds
def test_a_forged_signature_is_refused_with_401_and_reaches_no_handler(bot: BotHarness, kind: str) -> None:
    build, _ = KINDS[kind]
    response = bot.post(build(bot, "not-the-signing-secret", None))
    bot.settle()
    assert response.status_code == 401
    assert bot.fake.calls() == []  # not even users.info: no listener ran


@kinds
def test_a_tampered_body_is_refused(bot: BotHarness, kind: str) -> None:
    build, _ = KINDS[kind]
    body, headers = build(bot, SECRET, None)
    response = bot.post((body + b" ", headers))
    bot.settle()
    assert response.status_code == 401 and bot.fake.calls() == []


@kinds
def test_a_stale_request_older_than_five_minutes_is_refused(bot: BotHarness, kind: str) -> None:
    build, _ = KINDS[kind]
    response = bot.post(build(bot, SECRET, int(time.time()) - 301))
    bot.settle()
    assert response.status_code == 401 and bot.fake.calls() == []


@kinds
def test_a_replayed_request_is_refused_the_second_time(bot: BotHarness, kind: str) -> None:
    build, effect = KINDS[kind]
    request = build(bot, SECRET, None)
    assert bot.post(request).status_code == 200
    bot.settle()
    done = effect(bot)
    assert done == 1  # the first one was handled
    replay = bot.post(request)
    bot.settle()
    assert replay.status_code == 401
    assert effect(bot) == done


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
