"""When Slack misbehaves: rate limits and server errors are retried, refusals are explained to the user."""

from __future__ import annotations

import pytest

from tests.slack_harness import BotHarness

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_a_rate_limited_post_is_retried_after_retry_after(bot: BotHarness) -> None:
    bot.fake.fail_next("chat.postMessage", status=429, retry_after=1)
    bot.command("invoices overdue")
    bot.settle()
    assert [c.status for c in bot.fake.calls("chat.postMessage")] == [429, 200]
    assert "INV-0003" in bot.fake.messages("C_FINANCE")[-1].text


def test_server_errors_are_retried(bot: BotHarness) -> None:
    bot.fake.fail_next("chat.postMessage", status=503, times=2)
    bot.command("invoices overdue")
    bot.settle()
    assert len(bot.fake.messages("C_FINANCE")) == 1


def test_a_refusal_from_slack_is_explained_privately(bot: BotHarness) -> None:
    bot.fake.fail_next("chat.postMessage", error="not_in_channel")
    bot.command("invoices overdue")
    bot.settle()
    assert bot.fake.messages("C_FINANCE") == []
    answer = bot.last_text()
    assert "not_in_channel" in answer and "invite" in answer.lower()


def test_a_failed_file_upload_is_reported_not_swallowed(bot: BotHarness) -> None:
    bot.command("invoice INV-0003")
    bot.settle()
    detail = bot.fake.messages("C_FINANCE")[-1]
    from bot.ids import Action
    from tests.test_bot_commands import buttons

    bot.fake.fail_next("upload", status=500, times=2)  # one failure is retried; two are reported
    bot.click(Action.INVOICE_PDF, buttons(detail.blocks or [])[Action.INVOICE_PDF]["value"], message=detail)
    bot.settle()
    answer = bot.last_text()
    assert "upload of INV-0003.pdf" in answer and "try again" in answer.lower()


def test_one_failed_upload_is_retried(bot: BotHarness) -> None:
    bot.fake.fail_next("upload", status=500)
    bot.command("forecast")
    bot.settle()
    answer = bot.fake.messages("C_FINANCE")[-1]
    assert [f.filename for f in bot.fake.files() if f.thread_ts == answer.ts and f.channel] == ["forecast.png"]
