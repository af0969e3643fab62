"""`/billing …` end to end: signed slash commands to the real Bolt app, answers read back from the fake Slack."""

from __future__ import annotations

from tests.slack_harness import BotHarness


def test_overview_in_a_linked_channel_is_public_with_the_trend_chart_in_its_thread(bot: BotHarness) -> None:
    ack = bot.command("")
    assert ack.status_code == 200
    bot.settle()
    posted = bot.fake.messages("C_FINANCE")
    assert posted, "the overview was not posted in #finance"
    overview = posted[0]
    assert "acme-corp" in overview.text
    chart = [f for f in bot.fake.files() if f.thread_ts == overview.ts]
    assert chart and chart[0].content is not None and chart[0].content.startswith(b"\x89PNG")
