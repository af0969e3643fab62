"""Budget list and the budget modal."""

from __future__ import annotations

from typing import Any

from billing_core.results import BudgetStatus
from bot.ids import Action, Block, Field, View
from bot.views.common import Message, Reader, actions, button, context, header, message, pack, plain, section
from bot.views.overview import budget_line

SCOPES = (("all", "All usage"), ("deployment", "One deployment"), ("provider", "One provider"),
          ("resource", "One resource type"), ("dimension", "A dimension (e.g. model=gpt-4o)"))


def budgets_message(statuses: list[BudgetStatus], reader: Reader, *, account: str, is_admin: bool) -> Message:
    if not statuses:
        blocks = [section(f":moneybag: {account} has no budgets yet.")]
        if is_admin:
            blocks.append(actions(button("Set a budget", Action.BUDGET_SET, pack({}), style="primary")))
        return message(f"{account} has no budgets yet.", blocks)
    blocks = [header(f"Budgets — {account}")]
    for b in statuses:
        thresholds = ", ".join(f"{t}%" for t in b.thresholds)
        where = f" → <#{b.alert_channel}>" if b.alert_channel else ""
        accessory = button("Delete", Action.BUDGET_DELETE, pack({"b": b.name}), style="danger") if is_admin else None
        blocks.append(section(f"{budget_line(b, reader)}\n_{b.period.label} · alerts at {thresholds}{where}_",
                              accessory=accessory))
    if is_admin:
        blocks.append(actions(button("Set a budget", Action.BUDGET_SET, pack({}), style="primary")))
    else:
        blocks.append(context("Only billing admins can change budgets."))
    text = "; ".join(f"{b.name} {b.used_pct:.0f}% of {reader.money(b.amount, b.currency)}" for b in statuses)
    return message(f"Budgets of {account}: {text}", blocks)


def _text_input(block_id: str, label: str, *, placeholder: str, initial: str | None = None,
                optional: bool = False, max_length: int = 120) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": Field.VALUE, "max_length": max_length,
                               "placeholder": plain(placeholder)}
    if initial:
        element["initial_value"] = initial
    return {"type": "input", "block_id": block_id, "label": plain(label), "optional": optional, "element": element}


def budget_modal(*, account: str, currency: str, metadata: str) -> dict[str, Any]:
    scope_options = [{"text": plain(label), "value": value} for value, label in SCOPES]
    return {
        "type": "modal", "callback_id": View.BUDGET, "private_metadata": metadata,
        "title": plain("Set a budget"), "submit": plain("Save"), "close": plain("Cancel"),
        "blocks": [
            context(f"Budget for *{account}* in {currency}. A budget with an existing name is replaced."),
            _text_input(Block.BUDGET_NAME, "Name", placeholder="monthly-total", initial="monthly-total"),
            _text_input(Block.BUDGET_AMOUNT, f"Monthly amount ({currency})", placeholder="5000", max_length=20),
            {"type": "input", "block_id": Block.BUDGET_SCOPE, "label": plain("Scope"),
             "element": {"type": "static_select", "action_id": Field.VALUE, "options": scope_options,
                         "initial_option": scope_options[0]}},
            _text_input(Block.BUDGET_SCOPE_VALUE, "Scope value", optional=True,
                        placeholder="api-prod · gpu · model=gpt-4o"),
            _text_input(Block.BUDGET_THRESHOLDS, "Alert at (% of budget)", placeholder="50, 80, 100",
                        initial="50, 80, 100", max_length=40),
            {"type": "input", "block_id": Block.BUDGET_CHANNEL, "optional": True, "label": plain("Alert channel"),
             "element": {"type": "conversations_select", "action_id": Field.VALUE,
                         "filter": {"include": ["public", "private"], "exclude_bot_users": True}}},
        ],
    }
