"""`/billing …`: ack at once, then parse and answer on the worker pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.access import Who
from bot.deps import Deps
from bot.handlers import admin, alerts, budgets, ledger, reconcile
from bot.handlers.base import Ctx, after_ack
from bot.ids import COMMAND
from bot.parsing import parse_command

Subcommand = Callable[[Ctx, tuple[str, ...]], None]

SUBCOMMANDS: dict[str, Subcommand] = {
    "overview": ledger.overview,
    "invoices": ledger.invoices,
    "invoice": ledger.invoice,
    "usage": ledger.usage,
    "forecast": ledger.forecast,
    "payments": ledger.payments,
    "export": ledger.export,
    "budget": budgets.budget,
    "link": admin.link,
    "unlink": admin.unlink,
    "access": admin.access,
    "help": admin.help_,
    "reconcile": reconcile.reconcile,
    "alerts": alerts.alerts,
}
SLOW = {"overview", "usage", "forecast", "export", "reconcile"}  # charts, files or a scan of a period


def run(ctx: Ctx, text: str) -> None:
    command = parse_command(text)
    SUBCOMMANDS[command.name](ctx, command.args)


def register(app: App, deps: Deps) -> None:
    @app.command(COMMAND)
    def on_billing(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        text = command.get("text") or ""
        first = text.split()[0].lower() if text.split() else "overview"
        # The ack is the only thing done inline: Slack gives us 3 seconds, charts and PDFs take longer.
        ack(response_type="ephemeral", text=":hourglass_flowing_sand: Working on it…") if first in SLOW else ack()
        who = Who(command["team_id"], command["user_id"], command.get("channel_id"))
        ctx = Ctx(deps, client, who, respond=respond, trigger_id=command.get("trigger_id"))
        after_ack(ctx, lambda: run(ctx, text))
