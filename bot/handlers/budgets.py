"""Budgets: list for everyone with access; set (modal) and delete for billing admins only."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from billing_core.errors import BillingError, InvalidInput
from billing_core.fmt import safe_locale
from billing_core.service import BudgetSpec, validate_budget
from bot.access import Who
from bot.deps import Deps
from bot.handlers.base import Ctx, after_ack, reader_for
from bot.ids import Block, Field, View
from bot.parsing import parse_money
from bot.replies import Reply
from bot.views.admin import done_message
from bot.views.budgets import budget_modal, budgets_message

FIELD_OF = {"name": Block.BUDGET_NAME, "amount": Block.BUDGET_AMOUNT, "scope": Block.BUDGET_SCOPE_VALUE,
            "thresholds": Block.BUDGET_THRESHOLDS, "period": Block.BUDGET_SCOPE}


def budget(ctx: Ctx, args: tuple[str, ...]) -> None:
    words = [a.lower() for a in args]
    if not words:
        grant = ctx.grant()
        statuses = ctx.deps.billing.budgets(grant.account.id, now=ctx.now)
        ctx.reply(grant).send(budgets_message(statuses, reader_for(grant), account=grant.account.name,
                                              is_admin=grant.is_admin))
    elif words == ["set"]:
        open_budget_modal(ctx)
    elif words[0] == "delete" and len(args) == 2:
        delete_budget(ctx, args[1])
    else:
        raise InvalidInput("I can list, set or delete budgets.",
                           hint="/billing budget · /billing budget set · /billing budget delete monthly-total")


def open_budget_modal(ctx: Ctx) -> None:
    grant = ctx.admin()
    if not ctx.trigger_id:
        raise InvalidInput("Open the budget form from a command or a button.", hint="/billing budget set")
    # The reader's locale rides along: the amount is read in it when the form comes back.
    metadata = json.dumps({"a": grant.account.id, "c": ctx.who.channel, "r": _respond_url(ctx),
                           "l": reader_for(grant).locale})
    ctx.client.views_open(trigger_id=ctx.trigger_id, view=budget_modal(
        account=grant.account.name, currency=grant.account.currency, metadata=metadata))


def _respond_url(ctx: Ctx) -> str | None:
    return getattr(ctx.respond, "response_url", None)


def delete_budget(ctx: Ctx, name: str) -> None:
    grant = ctx.admin()
    ctx.deps.billing.delete_budget(grant.account.id, name, actor=ctx.who.actor, now=ctx.now)
    ctx.reply(grant).send(done_message(f"Budget *{name}* deleted by <@{ctx.who.user}>."))


def spec_from_view(values: dict[str, Any], locale: str) -> BudgetSpec:
    """The modal's state → a BudgetSpec (amount in `locale`); `InvalidInput.field` names the field to show
    the error on."""
    def value(block: str) -> Any:
        return values.get(block, {}).get(Field.VALUE, {})

    name = (value(Block.BUDGET_NAME).get("value") or "").strip()
    amount = parse_money(value(Block.BUDGET_AMOUNT).get("value") or "", locale, field="amount")
    scope = (value(Block.BUDGET_SCOPE).get("selected_option") or {}).get("value", "all")
    raw_scope = (value(Block.BUDGET_SCOPE_VALUE).get("value") or "").strip()
    key, scope_value = None, raw_scope or None
    if scope == "dimension":
        key, _, scope_value = raw_scope.partition("=")
        if not scope_value:
            raise InvalidInput("A dimension budget is written as key=value.", hint="model=gpt-4o", field="scope")
    thresholds = _thresholds(value(Block.BUDGET_THRESHOLDS).get("value") or "")
    channel = value(Block.BUDGET_CHANNEL).get("selected_conversation")
    return BudgetSpec(name=name, amount=Decimal(amount), scope_kind=scope, scope_value=scope_value,
                      scope_key=key or None, thresholds=thresholds, alert_channel=channel)


def _thresholds(text: str) -> tuple[int, ...]:
    parts = [p for p in re.split(r"[,\s%]+", text) if p]
    if not parts or not all(p.isdigit() and len(p) <= 4 for p in parts):
        raise InvalidInput("Thresholds are whole percentages separated by commas.", hint="50, 80, 100",
                           field="thresholds")
    return tuple(int(p) for p in parts)


def save_budget(ctx: Ctx, spec: BudgetSpec, account_id: object) -> None:
    """After the ack: access, the write and the answer (a refusal or failure is reported by `after_ack`)."""
    grant = ctx.admin()
    if grant.account.id != account_id:
        raise InvalidInput("This channel now belongs to another account; open the form again.",
                           hint="/billing budget set")
    status = ctx.deps.billing.set_budget(grant.account.id, spec, actor=ctx.who.actor, now=ctx.now)
    text = (f"Budget *{status.name}* set to {reader_for(grant).money(status.amount, status.currency)} "
            f"({status.scope}, alerts at {', '.join(f'{t}%' for t in status.thresholds)}) by <@{ctx.who.user}>.")
    Reply(ctx.client, ctx.who, public=grant.public, respond=None).send(done_message(text))


def register(app: App, deps: Deps) -> None:
    @app.view(View.BUDGET)
    def on_budget_submit(ack: Ack, body: dict[str, Any], client: WebClient, view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        # Before the ack only checks without I/O (the form's fields, then the core's own pure budget rules):
        # Slack gives 3 s, and users.info and the database can take longer.
        try:
            spec = spec_from_view(view["state"]["values"], safe_locale(meta.get("l")))
            validate_budget(spec)
        except BillingError as error:
            block = FIELD_OF.get(error.field or "", Block.BUDGET_NAME)
            shown = f"{error.message} Try: {error.hint}" if error.hint else error.message
            ack(response_action="errors", errors={block: shown[:150]})
            return
        ack()
        who = Who(body["team"]["id"] if body.get("team") else body["user"]["team_id"], body["user"]["id"],
                  meta.get("c"))
        ctx = Ctx(deps, client, who)
        after_ack(ctx, lambda: save_budget(ctx, spec, meta.get("a")))
