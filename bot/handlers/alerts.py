"""`/billing alerts …` and the buttons on alert messages: acknowledge, snooze, mute, invoice and its PDF.

Every button is a request of its own: access is checked again (`ctx.grant()`, `ctx.admin()` for muting), the
alert must be about an account this workspace may see, and every change is audited by the alert service.
Routes, quiet hours and test alerts are for billing admins; the status (rules, routes, dead letters) for
anyone with billing access.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from billing_core.alerts.rules import RULES, AlertInfo
from billing_core.alerts.service import Alerts
from billing_core.errors import Forbidden, InvalidInput
from billing_core.periods import zone
from bot.access import Grant
from bot.deps import Deps
from bot.handlers import ledger
from bot.handlers.base import Ctx, on_action, reader_for
from bot.ids import Action
from bot.jobs.delivery import Deliverer, delivery_client
from bot.jobs.delivery import reader_for as alert_reader
from bot.parsing import parse_channel
from bot.views.admin import done_message
from bot.views.alerts import alert_message, alerts_status_message, snoozed_message
from bot.views.invoices import invoice_message

SNOOZES = {"snooze_1d": timedelta(days=1), "snooze_1w": timedelta(weeks=1)}
KIND_WORDS = {**{r: r for r in RULES}, "all": "*", "default": "*", "invoices": "overdue", "budgets": "budget",
              "anomalies": "anomaly", "forecasts": "forecast", "digests": "digest"}
_HOURS = re.compile(r"^(\d{1,2})(?::00)?-(\d{1,2})(?::00)?$")
USAGE = ("/billing alerts · /billing alerts route overdue #finance · /billing alerts quiet 22-7 · "
         "/billing alerts test budget · /billing alerts unmute overdue · /billing alerts retry")


def service(ctx: Ctx) -> Alerts:
    return ctx.deps.alerts


# --- /billing alerts ---------------------------------------------------------------------------------


def alerts(ctx: Ctx, args: tuple[str, ...]) -> None:
    words = [a.lower() for a in args]
    if not words or words == ["status"]:
        status(ctx)
    elif words[0] == "route" and len(args) == 3:
        route(ctx, _kind(words[1]), args[2])
    elif words[0] == "quiet" and len(args) in (2, 3, 4):
        quiet(ctx, list(args[1:]))
    elif words[0] == "test" and len(args) <= 2:
        send_test(ctx, _kind(words[1]) if len(words) == 2 else "budget")
    elif words == ["retry"]:
        retry_dead(ctx)
    elif words[0] == "unmute" and len(args) in (2, 3):
        unmute(ctx, _kind(words[1]), args[2] if len(args) == 3 else None)
    else:
        raise InvalidInput("I can show alert routes, change them, set quiet hours or send a test alert.", hint=USAGE)


def _kind(word: str) -> str:
    kind = KIND_WORDS.get(word)
    if kind is None:
        raise InvalidInput(f"`{word[:20]}` is not a kind of alert.", hint="overdue · budget · forecast · anomaly · "
                           "digest · all")
    return kind


def status(ctx: Ctx) -> None:
    grant = ctx.grant()
    report = service(ctx).status(grant.account.id)
    ctx.reply(grant).send(alerts_status_message(report, reader_for(grant), is_admin=grant.is_admin))


def route(ctx: Ctx, kind: str, target: str) -> None:
    grant = ctx.admin()
    channel = None if target.lower() in ("off", "none", "remove") else parse_channel(target)
    warning = _membership_warning(ctx, channel) if channel else ""
    service(ctx).set_route(grant.account.id, kind, channel, actor=ctx.who.actor, now=ctx.now)
    what = "All alerts" if kind == "*" else f"{kind.capitalize()} alerts"
    where = f"now go to <#{channel}>" if channel else "go to the default channel again"
    ctx.reply(grant).send(done_message(f"{what} of {grant.account.name} {where}.{warning}"))


def _membership_warning(ctx: Ctx, channel: str) -> str:
    """Routing to a channel the bot cannot post in would only fill the dead letters: say so now."""
    try:
        info = ctx.client.conversations_info(channel=channel)["channel"]
    except SlackApiError as error:
        if error.response.get("error") == "channel_not_found":
            raise InvalidInput("I can't see that channel.", hint="Invite the bot first: `/invite @billing-bot`") \
                from None
        return ""
    if info.get("is_member") or info.get("is_im"):
        return ""
    return " The bot is not in that channel yet: invite it with `/invite @billing-bot` there."


def quiet(ctx: Ctx, words: list[str]) -> None:
    """`quiet [#channel] 22-7 [Time/Zone]` or `quiet [#channel] off`: alerts wait until the quiet hours end."""
    grant = ctx.admin()
    channel = parse_channel(words.pop(0)) if words and words[0].startswith(("<#", "#", "C", "G")) and \
        not _HOURS.match(words[0]) else ctx.who.channel
    if not channel or not words:
        raise InvalidInput("Give the quiet hours, e.g. 22-7, or `off`.", hint="/billing alerts quiet 22-7")
    if words[0].lower() == "off":
        service(ctx).set_quiet_hours(channel, None, "UTC", actor=ctx.who.actor, now=ctx.now)
        ctx.reply(grant).send(done_message(f"No quiet hours in <#{channel}> any more."))
        return
    hours = _hours(words[0])
    tz = zone(words[1]).key if len(words) > 1 else grant.member.tz.key
    service(ctx).set_quiet_hours(channel, hours, tz, actor=ctx.who.actor, now=ctx.now)
    ctx.reply(grant).send(done_message(f"Alerts for <#{channel}> wait between {hours[0]:02d}:00 and "
                                       f"{hours[1]:02d}:00 ({tz}) and are posted when the quiet hours end."))


def _hours(word: str) -> tuple[int, int]:
    match = _HOURS.match(word)
    if not match or not all(0 <= int(h) <= 23 for h in match.groups()) or match[1] == match[2]:
        raise InvalidInput(f"`{word[:20]}` is not a range of hours.", hint="22-7 (from 22:00 to 07:00)")
    return int(match[1]), int(match[2])


def send_test(ctx: Ctx, kind: str) -> None:
    """A real alert of `kind` from the account's current data, marked as a test, posted where it is routed."""
    if kind == "*":
        raise InvalidInput("Name one kind of alert to test.", hint="/billing alerts test overdue")
    grant = ctx.admin()
    alerts_service = service(ctx)
    channel = alerts_service.route_for(grant.account.id, kind) or ctx.who.channel
    if not channel:
        raise InvalidInput("Run this in a channel, or route the alerts first.", hint=USAGE)
    alert_id = alerts_service.send_test(grant.account.id, kind, channel, actor=ctx.who.actor, now=ctx.now)
    sender = Deliverer(alerts_service, ctx.deps.billing, delivery_client(ctx.client.token, ctx.client.base_url),
                       clock=ctx.deps.clock)
    tally = sender.drain(timeout_s=20, alert_id=alert_id)
    if tally.sent or tally.found:
        ctx.private().private(done_message(f"Test {kind} alert posted in <#{channel}>."))
        return
    report = alerts_service.status(grant.account.id)
    error = next((d.error for d in report.dead if d.alert_id == alert_id), "it is queued and will be retried")
    # Core errors are shown escaped (no mentions), so the channel is named in words here.
    raise InvalidInput(f"The test alert could not be posted in the {kind} channel: {error}.",
                       hint="/billing alerts status")


def retry_dead(ctx: Ctx) -> None:
    """Requeue the account's undelivered alerts; the worker posts them on its next pass."""
    grant = ctx.admin()
    count = service(ctx).requeue_dead(grant.account.id, actor=ctx.who.actor, now=ctx.now)
    if not count:
        raise InvalidInput("There are no undelivered alerts to retry.", hint="/billing alerts status")
    ctx.private().private(done_message(f"{count} undelivered alert{'s' if count != 1 else ''} queued again; "
                                       "the worker posts them within seconds."))


def unmute(ctx: Ctx, kind: str, target: str | None) -> None:
    ctx.admin()
    channel = parse_channel(target) if target else ctx.who.channel
    service(ctx).unmute(kind, channel or "", actor=ctx.who.actor, now=ctx.now)
    ctx.private().private(done_message(f"{kind.capitalize()} alerts are posted in <#{channel}> again."))


# --- buttons on alert messages -----------------------------------------------------------------------


def alert_grant(ctx: Ctx, alert_id: int, *, admin: bool = False) -> tuple[Grant, AlertInfo]:
    """The clicker's grant, re-aimed at the alert's account — if this workspace may see that account."""
    grant = ctx.admin() if admin else ctx.grant()
    alert = service(ctx).alert(alert_id)
    account = ctx.deps.tenancy.facts(ctx.who.workspace).account(alert.account_id)
    if account is None:
        raise Forbidden("That alert is about an account this workspace cannot see.")
    # The alert is already public in its channel, so what belongs to it (its invoice, its PDF) may go there too.
    return replace(grant, account=account, public=grant.public or ctx.who.channel == alert.channel), alert


def acknowledge(ctx: Ctx, state: dict[str, Any]) -> None:
    _grant, alert = alert_grant(ctx, _id(state))
    done = service(ctx).acknowledge(alert.id, member=ctx.who.user, actor=ctx.who.actor, now=ctx.now)
    if done.channel and done.message_ts:
        ctx.client.chat_update(channel=done.channel, ts=done.message_ts, **alert_message(done, alert_reader(done)))
    else:
        ctx.private().private(done_message("Acknowledged."))


def more(ctx: Ctx, state: dict[str, Any]) -> None:
    choice = str(state.get("do"))
    if choice == "mute":
        grant, alert = alert_grant(ctx, _id(state), admin=True)
        channel = alert.channel or ctx.who.channel or ""
        service(ctx).mute(alert.rule, channel, actor=ctx.who.actor, now=ctx.now)
        ctx.private().private(done_message(f"{alert.rule.capitalize()} alerts are muted in <#{channel}>. "
                                           f"Undo: `/billing alerts unmute {alert.rule}`"))
        return
    if choice not in SNOOZES:
        raise InvalidInput("That menu choice is not known any more.", hint="/billing alerts status")
    grant, alert = alert_grant(ctx, _id(state))
    until = ctx.now + SNOOZES[choice]
    service(ctx).snooze(alert.id, until=until, actor=ctx.who.actor, now=ctx.now)
    ctx.private().private(snoozed_message(alert, until, reader_for(grant)))


def view_invoice(ctx: Ctx, state: dict[str, Any]) -> None:
    grant, alert = alert_grant(ctx, _id(state))
    detail = ctx.deps.billing.invoice(alert.account_id, str(alert.payload.get("number")), now=ctx.now)
    _audit(ctx, "alert.view_invoice", alert)
    ctx.reply(grant, in_thread=True).send(invoice_message(detail, reader_for(grant)))


def invoice_pdf(ctx: Ctx, state: dict[str, Any]) -> None:
    grant, alert = alert_grant(ctx, _id(state))
    _audit(ctx, "alert.invoice_pdf", alert)
    ledger.invoice_pdf(ctx, grant, str(alert.payload.get("number")))


def _audit(ctx: Ctx, action: str, alert: AlertInfo) -> None:
    """Reading changes nothing, but who opened which invoice from an alert belongs in the audit trail."""
    ctx.deps.tenancy.audit(actor=ctx.who.actor, action=action, entity="alert", entity_id=str(alert.id), at=ctx.now,
                           detail=str(alert.payload.get("number")))


def _id(state: dict[str, Any]) -> int:
    value = state.get("i")
    if not isinstance(value, int):
        raise InvalidInput("That button is not valid any more.", hint="/billing alerts status")
    return value


def register(app: App, deps: Deps) -> None:
    for action, work in ((Action.ALERT_ACK, acknowledge), (Action.ALERT_MORE, more),
                         (Action.ALERT_VIEW_INVOICE, view_invoice), (Action.ALERT_PDF, invoice_pdf)):
        on_action(app, deps, action, work)
