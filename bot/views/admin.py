"""Help, access and link messages."""

from __future__ import annotations

from billing_core.results import AccountInfo
from billing_core.tenancy import WorkspaceFacts
from bot.parsing import EXAMPLES, SUBCOMMANDS
from bot.views.common import Message, context, divider, escape, header, message, section


def help_message() -> Message:
    lines = [f"• `/billing {name}` — {what}\n   e.g. `{EXAMPLES[name]}`" for name, what in SUBCOMMANDS.items()]
    blocks = [header("Billing bot — what you can ask"), section("\n".join(lines)),
              context("Periods: today · week · month · year · last 90 days · 2026-10 · 2026-10-01..2026-10-15. "
                      "Groups: by deployment · provider · resource · model · region. "
                      "In a channel linked to an account, answers are posted for everyone; "
                      "elsewhere only you see them."),
              context("Alerts: `/billing alerts` · `alerts route overdue #finance` · `alerts quiet 22-7` · "
                      "`alerts test budget` (admins)")]
    return message("Billing bot commands: " + ", ".join(SUBCOMMANDS), blocks)


def access_message(facts: WorkspaceFacts, *, channel: str | None, admins_note: str) -> Message:
    linked = facts.channel_links.get(channel or "")
    account = facts.account(linked) if linked is not None else None
    lines = [f"• <@{member}> — {role.value}" for member, role in sorted(facts.roles.items())]
    accounts = ", ".join(escape(a.name) + (" (default)" if facts.default_account == a else "") for a in facts.accounts)
    blocks = [
        header("Billing access"),
        section(f"*Accounts in this workspace:* {accounts or '—'}\n*This channel:* "
                + (f"linked to *{escape(account.name)}* — answers here are public" if account else
                   "not linked — answers are private to whoever asks")),
        divider(),
        section("*Roles*\n" + ("\n".join(lines) if lines else "_No roles granted yet._")),
        context(admins_note),
        context("Admins: `/billing access grant @jane viewer|admin` · `/billing access revoke @jane`"),
    ]
    return message(f"Billing access: {len(lines)} roles; accounts {accounts}", blocks)


def linked_message(account: AccountInfo, channel: str) -> Message:
    text = f"This channel (<#{channel}>) is now linked to *{escape(account.name)}*: billing answers here are public."
    return message(text, [section(f":link: {text}")])


def done_message(text: str) -> Message:
    return message(text, [section(f":white_check_mark: {text}")])
