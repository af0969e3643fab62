"""Listeners: ack → parse → authorize → ask the core → render → send. Registered explicitly by `register_all`."""

from __future__ import annotations

from slack_bolt import App

from bot.deps import Deps


def register_all(app: App, deps: Deps) -> None:
    from bot.handlers import actions, alerts, budgets, command, home

    command.register(app, deps)
    actions.register(app, deps)
    budgets.register(app, deps)
    home.register(app, deps)
    alerts.register(app, deps)
