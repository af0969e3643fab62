"""Buttons and the invoice filter modal. Every action goes through access again: a button is a request."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from billing_core.errors import BillingError, InvalidInput
from billing_core.results import InvoiceQuery, InvoiceStatus
from bot.access import Grant, Who
from bot.deps import Deps
from bot.handlers import budgets, ledger
from bot.handlers.base import Ctx, after_ack, on_action, same_account
from bot.ids import Action, Block, Field, View
from bot.parsing import PAGE_SIZE
from bot.replies import Respond
from bot.views.invoices import filter_modal


def query_from(state: dict[str, Any], *, cursor: str | None = None) -> InvoiceQuery:
    try:
        statuses = tuple(InvoiceStatus(s) for s in state.get("s") or ())
        start = date.fromisoformat(state["f"]) if state.get("f") else None
        end = date.fromisoformat(state["t"]) if state.get("t") else None
    except ValueError:
        raise InvalidInput("That button's filter is not valid any more.", hint="/billing invoices") from None
    return InvoiceQuery(statuses, start, end, state.get("q") or None, PAGE_SIZE, cursor)


def on_page(ctx: Ctx, state: dict[str, Any]) -> None:
    grant = ctx.grant()
    same_account(grant, state.get("a"))
    ledger.show_invoices(ctx, grant, query_from(state, cursor=state.get("c")), int(state.get("p") or 1),
                         replace=True)


def open_filter(ctx: Ctx, state: dict[str, Any]) -> None:
    grant = ctx.grant()
    same_account(grant, state.get("a"))
    metadata = json.dumps({"a": grant.account.id, "c": ctx.who.channel, "ts": ctx.message_ts,
                           "r": getattr(ctx.respond, "response_url", None), "e": ctx.ephemeral_source})
    ctx.client.views_open(trigger_id=ctx.trigger_id or "", view=filter_modal(query_from(state), metadata=metadata))


def filter_from_view(values: dict[str, Any]) -> InvoiceQuery:
    def field(block: str) -> dict[str, Any]:
        found: dict[str, Any] = values.get(block, {}).get(Field.VALUE, {})
        return found

    statuses = tuple(InvoiceStatus(o["value"]) for o in field(Block.FILTER_STATUS).get("selected_options") or [])
    start = field(Block.FILTER_FROM).get("selected_date")
    end = field(Block.FILTER_TO).get("selected_date")
    search = (field(Block.FILTER_SEARCH).get("value") or "").strip() or None
    first = date.fromisoformat(start) if start else None
    last = date.fromisoformat(end) if end else None
    if first and last and last < first:
        raise InvalidInput(f"The end date ({last}) is before the start date ({first}).", field=Block.FILTER_TO)
    return InvoiceQuery(statuses, first, last, search, PAGE_SIZE)


def register(app: App, deps: Deps) -> None:
    def on(action: Action, work: Callable[[Ctx, dict[str, Any]], object]) -> None:
        on_action(app, deps, action, work)

    on(Action.INVOICES_PAGE, on_page)
    on(Action.INVOICES_FILTER, open_filter)
    on(Action.INVOICES_EXPORT_CSV, lambda ctx, s: ledger.invoices_csv(ctx, _checked(ctx, s), query_from(s)))
    on(Action.INVOICE_OPEN, lambda ctx, s: ledger.invoice(ctx, (str(s.get("n", "")),)))
    on(Action.INVOICE_PDF, lambda ctx, s: ledger.invoice_pdf(ctx, _checked(ctx, s), str(s.get("n", ""))))
    on(Action.INVOICE_CSV, lambda ctx, s: ledger.invoice_csv(ctx, _checked(ctx, s), str(s.get("n", ""))))
    on(Action.RECEIPT_PDF, lambda ctx, s: ledger.receipt_pdf(ctx, _checked(ctx, s), str(s.get("n", "")),
                                                              int(s.get("p") or 0)))
    on(Action.PAY, lambda ctx, s: _audit_pay(ctx, s))
    on(Action.OVERVIEW_INVOICES, lambda ctx, s: _then(_checked(ctx, s), ledger.invoices, ctx))
    on(Action.OVERVIEW_USAGE, lambda ctx, s: _then(_checked(ctx, s), ledger.usage, ctx))
    on(Action.USAGE_EXPORT, lambda ctx, s: ledger.usage_report(ctx, _checked(ctx, s), ledger.report_request(s)))
    on(Action.BUDGET_SET, lambda ctx, s: budgets.open_budget_modal(ctx))
    on(Action.BUDGET_DELETE, lambda ctx, s: budgets.delete_budget(ctx, str(s.get("b", ""))))

    @app.view(View.INVOICE_FILTER)
    def on_filter_submit(ack: Ack, body: dict[str, Any], client: WebClient, view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        try:
            query = filter_from_view(view["state"]["values"])
        except BillingError as error:
            ack(response_action="errors", errors={error.field or Block.FILTER_FROM: error.message[:150]})
            return
        ack()
        who = Who(body["user"].get("team_id", ""), body["user"]["id"], meta.get("c"))
        respond = _respond_for(meta.get("r"))
        ctx = Ctx(deps, client, who, respond=respond, message_ts=meta.get("ts"), ephemeral_source=bool(meta.get("e")))

        def show() -> None:
            grant = ctx.grant()
            same_account(grant, meta.get("a"))
            ledger.show_invoices(ctx, grant, query, 1, replace=True)

        after_ack(ctx, show)


def _checked(ctx: Ctx, state: dict[str, Any]) -> Grant:
    """The clicker's grant here, refused when the button was made for another account (see `same_account`)."""
    grant = ctx.grant()
    same_account(grant, state.get("a"))
    return grant


def _then(_grant: object, subcommand: Any, ctx: Ctx) -> None:
    """Run a subcommand once the button's account was checked (its grant is computed again inside)."""
    subcommand(ctx, ())


def _audit_pay(ctx: Ctx, state: dict[str, Any]) -> None:
    """The Pay button is a link; what we record is who followed it, for the audit trail."""
    grant = ctx.grant()
    ctx.deps.tenancy.audit(actor=ctx.who.actor, action="invoice.pay_clicked", entity="invoice",
                           entity_id=str(state.get("n")), at=ctx.now, detail=grant.account.name)


def _respond_for(url: str | None) -> Respond | None:
    if not url:
        return None
    from slack_bolt.context.respond import Respond as BoltRespond

    return BoltRespond(response_url=url)
