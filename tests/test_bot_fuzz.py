"""Arbitrary text after every subcommand: always acked fast, always answered helpfully, never a crash."""

from __future__ import annotations

import logging
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.parsing import SUBCOMMANDS
from tests.slack_harness import BotHarness

ACK_DEADLINE_S = 3.0
WORDS = st.sampled_from(["overdue", "paid", "from", "to", "page", "last", "days", "by", "model", "hourly",
                         "2026-13-45", "INV-0003", "-1", "99999999999", "set", "delete", "grant", "<@U_X>",
                         "..", "2026-01-01..2025-01-01", "pdf", "csv", "`", "*", "<!channel>", "ü", "\u202e"])
TEXT = st.one_of(st.text(max_size=60), st.lists(WORDS, max_size=6).map(" ".join), st.just("x" * 10_000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subcommand=st.sampled_from(sorted(SUBCOMMANDS)), rest=TEXT)
def test_any_text_is_acked_within_3_s_and_answered_without_a_crash(
        bot: BotHarness, caplog: pytest.LogCaptureFixture, subcommand: str, rest: str) -> None:
    caplog.clear()
    # #general is not linked: every answer is ephemeral to the asker, so none can escape to a channel.
    before = len(bot.answers("C_GENERAL", "U_VIEWER"))
    started = time.monotonic()
    ack = bot.command(f"{subcommand} {rest}", channel="C_GENERAL", user="U_VIEWER")
    assert time.monotonic() - started < ACK_DEADLINE_S
    assert ack.status_code == 200
    bot.settle()
    assert len(bot.answers("C_GENERAL", "U_VIEWER")) > before, f"no answer to {subcommand} {rest!r}"
    assert bot.fake.messages("C_GENERAL") == []
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR and "unexpected" in r.getMessage()]
    assert not crashes, crashes[0].getMessage()
