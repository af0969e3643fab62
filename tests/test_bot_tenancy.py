"""One workspace never sees another's billing data: the same user ids, channel ids and buttons, sent from a
workspace the ledger has not allowed, get a polite refusal and nothing else (the real app, signed requests)."""

from __future__ import annotations

import json

from sqlalchemy import select

from billing_core.db.models import AuditEntry
from bot.ids import Action
from bot.sandbox import signing
from tests.slack_harness import SECRET, BotHarness

OTHER = "T0OTHER"  # a workspace that installed the app but was never allowed any account


def _command(bot: BotHarness, text: str, *, team: str) -> None:
    response = bot.post(signing.slash_command_request(
        SECRET, text=text, team_id=team, user_id="U_ADMIN", channel_id="C_FINANCE",
        response_url=bot.fake.response_url(channel="C_FINANCE", user="U_ADMIN"),
        trigger_id=bot.fake.issue_trigger_id("U_ADMIN")))
    assert response.status_code == 200
    bot.settle()


def _shown(bot: BotHarness) -> str:
    return json.dumps(bot.answers())


def test_the_same_channel_and_admin_in_another_workspace_see_no_billing_data(bot: BotHarness) -> None:
    for text in ("", "invoices overdue", "invoice INV-0003", "usage month", "forecast", "payments", "budget"):
        _command(bot, text, team=OTHER)
    shown = _shown(bot)
    assert "INV-0003" not in shown and "acme-corp" not in shown and "$" not in shown
    assert bot.fake.messages("C_FINANCE") == []  # nothing posted for the channel
    assert "not connected to a billing account" in bot.last_text()
    assert bot.fake.files() == []
    with bot.db.unit_of_work() as s:
        denied = s.scalars(select(AuditEntry.actor).where(AuditEntry.action == "access.denied")).all()
    assert f"slack:{OTHER}/U_ADMIN" in denied


def test_another_workspace_cannot_link_itself_to_an_account_it_was_not_allowed(bot: BotHarness) -> None:
    _command(bot, "link acme-corp", team=OTHER)
    _command(bot, "invoices", team=OTHER)
    assert "INV-" not in _shown(bot)
    assert bot.fake.messages("C_FINANCE") == []


def test_a_button_replayed_from_another_workspace_sends_no_file(bot: BotHarness) -> None:
    bot.command("invoice INV-0003")
    bot.settle()
    [answer] = bot.fake.messages("C_FINANCE")
    pdf = next(e for b in answer.blocks or [] if b.get("type") == "actions" for e in b["elements"]
               if e.get("action_id") == Action.INVOICE_PDF)
    response = bot.post(signing.block_action_request(
        SECRET, action_id=Action.INVOICE_PDF, value=pdf["value"], team_id=OTHER, user_id="U_ADMIN",
        channel_id="C_FINANCE", message={"ts": answer.ts, "blocks": answer.blocks or []},
        trigger_id=bot.fake.issue_trigger_id("U_ADMIN"),
        response_url=bot.fake.response_url(channel="C_FINANCE", user="U_ADMIN", message_ts=answer.ts)))
    assert response.status_code == 200
    bot.settle()
    assert [f for f in bot.fake.files() if f.filename.endswith(".pdf")] == []
