"""Arbitrary text after every subcommand, from a viewer and an admin, in a linked and an unlinked channel:
always acked fast, always answered with a result or with an example to try, never a crash."""

from __future__ import annotations

import logging
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.parsing import SUBCOMMANDS
from bot.sandbox.fake_state import BOT_USER_ID, Channel
from tests.slack_harness import BotHarness

ACK_DEADLINE_S = 3.0
# A channel of the fuzz's own, linked to nordlicht-gmbh: admin subcommands (unlink included) change only it.
LINKED = "C_FUZZ"
WORDS = st.sampled_from(["overdue", "paid", "from", "to", "page", "last", "days", "by", "model", "hourly",
                         "2026-13-45", "INV-0003", "-1", "99999999999", "set", "delete", "grant", "<@U_X>",
                         "..", "2026-01-01..2025-01-01", "pdf", "csv", "`", "*", "<!channel>", "ü", "\u202e",
                         "viewer", "revoke", "route", "quiet", "off", "test"])
TEXT = st.one_of(st.text(max_size=60), st.lists(WORDS, max_size=6).map(" ".join), st.just("x" * 10_000))
# (user, channel): a viewer and an admin where nothing is linked (answers are private), an admin in a linked one.
ASKERS = st.sampled_from([("U_VIEWER", "C_GENERAL"), ("U_ADMIN", "C_GENERAL"), ("U_ADMIN", LINKED)])


def is_result_or_shows_an_example(answer: dict[str, object]) -> bool:
    """Errors are written `:warning: what was wrong … Try: an example`; anything else is a result."""
    text = str(answer["text"])
    return not text.startswith(":warning:") or "Try:" in text


def shown_to(bot: BotHarness, channel: str, user: str) -> dict[str, list[dict[str, object]]]:
    """What `user` was shown in `channel` so far, posts and ephemerals apart (each only grows)."""
    return {"posted": [{"text": m.text} for m in bot.fake.messages(channel)],
            "ephemeral": [{"text": m.text} for m in bot.fake.ephemeral(channel, user)]}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subcommand=st.sampled_from(sorted(SUBCOMMANDS)), rest=TEXT, asker=ASKERS)
# Admin paths past the refusal, every run (the draws above find them only now and then):
@example(subcommand="unlink", rest="", asker=("U_ADMIN", "C_GENERAL"))
@example(subcommand="link", rest="no-such-account", asker=("U_ADMIN", "C_GENERAL"))
@example(subcommand="budget", rest="delete no-such-budget", asker=("U_ADMIN", LINKED))
@example(subcommand="access", rest="revoke <@U_X>", asker=("U_ADMIN", "C_GENERAL"))
@example(subcommand="access", rest="grant <@U_X> owner", asker=("U_ADMIN", LINKED))
@example(subcommand="alerts", rest="route overdue", asker=("U_ADMIN", LINKED))
@example(subcommand="alerts", rest="quiet 25-7 Mars/Olympus", asker=("U_ADMIN", LINKED))
@example(subcommand="reconcile", rest="2026-13", asker=("U_ADMIN", "C_GENERAL"))
def test_any_text_is_acked_within_3_s_and_answered_without_a_crash(
        bot: BotHarness, caplog: pytest.LogCaptureFixture, subcommand: str, rest: str,
        asker: tuple[str, str]) -> None:
    user, channel = asker
    if channel == LINKED:  # (again: an earlier example may have unlinked it)
        bot.fake.add_channel(Channel(LINKED, "fuzz", ["U_ADMIN", "U_VIEWER", BOT_USER_ID]))
        bot.command("link nordlicht-gmbh", channel=LINKED)
        bot.settle()
    caplog.clear()
    before = shown_to(bot, channel, user)
    started = time.monotonic()
    ack = bot.command(f"{subcommand} {rest}", channel=channel, user=user)
    assert time.monotonic() - started < ACK_DEADLINE_S
    assert ack.status_code == 200
    bot.settle()
    answers = [answer for kind, seen in shown_to(bot, channel, user).items() for answer in seen[len(before[kind]):]]
    assert answers, f"no answer to {subcommand} {rest!r}"
    unhelpful = [a["text"] for a in answers if not is_result_or_shows_an_example(a)]
    assert not unhelpful, f"{subcommand} {rest!r} as {user}: {unhelpful[0]!r} shows nothing to try"
    # #general is not linked: every answer is ephemeral to the asker, so none can escape to a channel.
    assert bot.fake.messages("C_GENERAL") == []
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR and "unexpected" in r.getMessage()]
    assert not crashes, crashes[0].getMessage()
