"""Alert messages (posted by the worker), their acknowledged/resolved forms and `/billing alerts` status.

Pure: an `AlertInfo` (payload money as exact strings) and a `Reader` in, Block Kit dicts out. Every message
has a plain-text `text` fallback (the notification) and at most 50 blocks; user-supplied names are escaped.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from billing_core.alerts.rules import AlertInfo, AlertsStatus
from bot.ids import Action
from bot.views.common import (
    Block,
    Message,
    Reader,
    actions,
    button,
    context,
    divider,
    escape,
    fields,
    header,
    message,
    pack,
    plain,
    section,
)

TITLES = {"overdue": "Overdue invoice", "budget": "Budget alert", "forecast": "Forecast overrun",
          "anomaly": "Cost anomaly", "digest": "Weekly cost digest", "invoice": "Invoice issued",
          "payment": "Payment", "reconcile": "Reconciliation"}
ICONS = {"overdue": ":red_circle:", "budget": ":warning:", "forecast": ":chart_with_upwards_trend:",
         "anomaly": ":rotating_light:", "digest": ":bar_chart:", "invoice": ":page_facing_up:",
         "payment": ":moneybag:", "reconcile": ":mag:"}
RULE_HELP = {"overdue": "the day after an invoice's due date, then reminders after 3, 7 and 14 days",
             "budget": "each budget threshold once per period (only the highest when several are crossed)",
             "forecast": "when the month-end projection's low bound is over a monthly budget (after 7 days)",
             "anomaly": "a day far above the usual cost of that weekday, with its top drivers",
             "digest": "Monday 09:00 local: last week's cost, top movers and open invoices",
             "reconcile": "daily: provider invoices that disagree with metered usage beyond the tolerance",
             "invoice": "an invoice issued by a billing provider (web-hook), with its PDF in the thread",
             "payment": "a payment received or failed (web-hook); a failure carries the Pay link"}
SNOOZE = {"snooze_1d": "Snooze 1 day", "snooze_1w": "Snooze 1 week", "mute": "Mute this rule for this channel"}


def _m(reader: Reader, alert: AlertInfo, key: str) -> str:
    return reader.money(Decimal(str(alert.payload.get(key) or 0)), alert.currency)


def _day(reader: Reader, value: object) -> str:
    return reader.day(date.fromisoformat(str(value)))


def alert_summary(alert: AlertInfo, reader: Reader) -> str:
    """One line that says it all: the notification text."""
    p, name = alert.payload, escape(alert.account)
    if alert.rule == "overdue":
        days = p.get("days_overdue")
        lead = "Reminder: " if p.get("reminder") else ""
        return (f"{lead}{name}: invoice {escape(str(p.get('number')))} is {days} day{'s' if days != 1 else ''} "
                f"overdue, {_m(reader, alert, 'amount_due')} due since {_day(reader, p.get('due_date'))}")
    if alert.rule == "budget":
        return (f"{name}: budget {escape(str(p.get('budget')))} at {p.get('used_pct')}% "
                f"({_m(reader, alert, 'spent')} of {_m(reader, alert, 'amount')}, {p.get('period')})")
    if alert.rule == "forecast":
        return (f"{name}: {p.get('period')} is heading for {_m(reader, alert, 'projected')} "
                f"(at least {_m(reader, alert, 'low')}), over the {_m(reader, alert, 'amount')} budget "
                f"{escape(str(p.get('budget')))}")
    if alert.rule == "invoice":
        return (f"{name}: invoice {escape(str(p.get('number')))} issued, {_m(reader, alert, 'total')} "
                f"due {_day(reader, p.get('due_date'))}")
    if alert.rule == "payment":
        return _payment_summary(alert, reader)
    if alert.rule == "reconcile":
        count = int(p.get("count") or 0)
        return (f"{name}: {p.get('period')} invoices disagree with metered usage on {count} "
                f"line{'s' if count != 1 else ''} (billed {_m(reader, alert, 'billed_total')}, metered "
                f"{_m(reader, alert, 'metered_total')}, tolerance {p.get('tolerance_pct')}%)")
    if alert.rule == "anomaly":
        return (f"{name}: {_day(reader, p.get('day'))} cost {_m(reader, alert, 'actual')}, "
                f"{p.get('ratio')}× the usual {_m(reader, alert, 'expected')} for that weekday")
    change = f" ({p['change_pct']}% vs the week before)" if p.get("change_pct") is not None else ""
    return (f"{name}: last week cost {_m(reader, alert, 'total')}{change}; {p.get('open_count')} open invoices, "
            f"{_m(reader, alert, 'outstanding')} outstanding")


def _payment_summary(alert: AlertInfo, reader: Reader) -> str:
    p, name = alert.payload, escape(alert.account)
    on = f" for invoice {escape(str(p['number']))}" if p.get("number") else ""
    if p.get("outcome") == "confirmed":
        return f"{name}: payment of {_m(reader, alert, 'amount')} received{on}"
    amount = _m(reader, alert, "amount") if p.get("amount") else _m(reader, alert, "amount_due")
    return f"{name}: payment of {amount} failed{on}"


def _event_details(alert: AlertInfo, reader: Reader) -> list[Block]:
    p = alert.payload
    pairs = [("Invoice", escape(str(p.get("number") or "—"))), ("Amount due", _m(reader, alert, "amount_due"))]
    if p.get("due_date"):
        pairs.append(("Due date", _day(reader, p.get("due_date"))))
    if p.get("method"):
        pairs.append(("Method", escape(str(p.get("method")))))
    blocks = [fields(*pairs)]
    if alert.rule == "invoice":
        blocks.append(context(":paperclip: The invoice PDF is in the thread."))
    if p.get("explorer_url"):
        blocks.append(context(f"<{p['explorer_url']}|View the transaction>"))
    return blocks


def _details(alert: AlertInfo, reader: Reader) -> list[Block]:
    p = alert.payload
    if alert.rule in ("invoice", "payment"):
        return _event_details(alert, reader)
    if alert.rule == "reconcile":
        lines = [f"• {escape(str(r['provider']))} · `{escape(str(r['meter']))}` · {escape(str(r['kind']))}: billed "
                 f"{reader.money(Decimal(r['billed']), alert.currency)}, metered "
                 f"{reader.money(Decimal(r['metered']), alert.currency)}" for r in p.get("lines") or []]
        return [section("*Largest differences*\n" + "\n".join(lines)),
                context("Every line, as CSV: `/billing reconcile` (billing admins).")]
    if alert.rule == "overdue":
        return [fields(("Invoice", escape(str(p.get("number")))), ("Amount due", _m(reader, alert, "amount_due")),
                       ("Due date", _day(reader, p.get("due_date"))), ("Days overdue", str(p.get("days_overdue"))))]
    if alert.rule == "budget":
        skipped = p.get("skipped") or []
        blocks = [fields(("Budget", f"{escape(str(p.get('budget')))} ({escape(str(p.get('scope')))})"),
                         ("Spent", f"{_m(reader, alert, 'spent')} ({p.get('used_pct')}%)"),
                         ("Limit", _m(reader, alert, "amount")), ("Threshold", f"{p.get('threshold')}%"))]
        if skipped:
            blocks.append(context(f"Also crossed since the last alert: {', '.join(f'{t}%' for t in skipped)}"))
        return blocks
    if alert.rule == "forecast":
        return [fields(("Projected", _m(reader, alert, "projected")),
                       ("80% interval", f"{_m(reader, alert, 'low')} – {_m(reader, alert, 'high')}"),
                       ("Budget", _m(reader, alert, "amount")), ("Spent so far", _m(reader, alert, "spent"))),
                context(f"Based on {p.get('days_elapsed')} days of {p.get('period')}; the chart is in the thread.")]
    rows = p.get("drivers") if alert.rule == "anomaly" else p.get("movers")
    lines = [f"• {escape(str(r['name']))}: {reader.money(Decimal(r['cost']), alert.currency)} "
             f"({'+' if Decimal(r['delta']) >= 0 else '−'}{reader.money(abs(Decimal(r['delta'])), alert.currency)})"
             for r in rows or []]
    label = "*Top drivers* (vs the same weekday a week before)" if alert.rule == "anomaly" else "*Top movers*"
    blocks = [section(f"{label}\n" + ("\n".join(lines) or "_none_"))]
    if alert.rule == "digest":
        blocks.append(fields(("Open invoices", str(p.get("open_count"))),
                             ("Outstanding", _m(reader, alert, "outstanding")),
                             ("Overdue", _m(reader, alert, "overdue"))))
    return blocks


def _buttons(alert: AlertInfo, *, acknowledged: bool) -> Block | None:
    ref = pack({"i": alert.id})
    elements: list[Block] = []
    payload = alert.payload
    if payload.get("outcome") == "failed" and payload.get("payment_url"):
        elements.append(button("Pay", Action.PAY, pack({"n": payload.get("number")}), style="primary",
                               url=str(payload["payment_url"])))
    if alert.rule in ("overdue", "invoice") or (alert.rule == "payment" and payload.get("number")):
        elements += [button("View invoice", Action.ALERT_VIEW_INVOICE, ref),
                     button("Download PDF", Action.ALERT_PDF, ref)]
    if not acknowledged:
        elements.append(button("Acknowledge", Action.ALERT_ACK, ref, style="primary"))
        options = [{"text": plain(label), "value": pack({"i": alert.id, "do": do})} for do, label in SNOOZE.items()]
        elements.append({"type": "overflow", "action_id": Action.ALERT_MORE, "options": options})
    return actions(*elements, block_id=f"alert:{alert.id}") if elements else None


def alert_message(alert: AlertInfo, reader: Reader) -> Message:
    """The alert as first posted (and re-rendered on chat.update once acknowledged)."""
    acknowledged = alert.acknowledged_at is not None
    test = "[TEST] " if alert.is_test else ""
    summary = alert_summary(alert, reader)
    blocks: list[Block] = [header(f"{test}{TITLES[alert.rule]}: {alert.account}"),
                           section(f"{ICONS[alert.rule]} {summary}"), *_details(alert, reader)]
    notes = [f"Rule `{alert.rule}` · {reader.moment(alert.created_at)}"]
    if alert.is_test:
        notes.insert(0, ":test_tube: *Test alert* built from current data — nothing needs doing.")
    blocks.append(context(*notes))
    if acknowledged and alert.acknowledged_at is not None:
        blocks.append(context(f":white_check_mark: Acknowledged by <@{alert.acknowledged_by}> at "
                              f"{reader.moment(alert.acknowledged_at)}"))
    buttons = _buttons(alert, acknowledged=acknowledged)
    if buttons:
        blocks.append(buttons)
    return message(f"{test}{summary}", blocks)


def resolved_reply(alert: AlertInfo, reader: Reader) -> Message:
    """The thread reply when an alert's subject is settled (paid, cancelled, forecast back on track)."""
    r: dict[str, Any] = alert.payload.get("resolution") or {}
    if r.get("kind") == "paid":
        text = f"Resolved — {escape(str(r.get('number')))} was paid on {_day(reader, r.get('on'))}."
    elif r.get("kind") == "cancelled":
        text = f"Resolved — {escape(str(r.get('number')))} was cancelled."
    elif r.get("kind") == "on_track":
        text = (f"Resolved — the forecast is back under budget: {reader.money(Decimal(r['projected']), alert.currency)}"
                f" projected, at most {reader.money(Decimal(r['high']), alert.currency)}.")
    else:
        text = f"Resolved — {escape(str(r.get('text') or 'no longer applies'))}"
    return message(text, [section(f":white_check_mark: {text}")])


def snoozed_message(alert: AlertInfo, until: datetime, reader: Reader) -> Message:
    text = f"{TITLES[alert.rule]} alerts about this are snoozed until {reader.moment(until)}."
    return message(text, [section(f":zzz: {text}")])


def _target(channel: str) -> str:
    return {"webhook": "the alert web-hook", "incoming": "the Slack incoming web-hook"}.get(channel, f"<#{channel}>")


def _channel(channel: str | None) -> str:
    return f"<#{channel}>" if channel else "_nowhere (link a channel or add a route)_"


def alerts_status_message(status: AlertsStatus, reader: Reader, *, is_admin: bool) -> Message:
    """Rules, where each goes, quiet hours, mutes, queue and dead letters for one account."""
    routes = {r.kind: r.channel for r in status.routes}
    default = routes.get("*", status.default_channel)
    rule_lines = [f"• *{rule}* → {_channel(routes.get(rule, default))} — {what}" for rule, what in RULE_HELP.items()]
    blocks: list[Block] = [header(f"Alerts — {status.account.name}"), section("\n".join(rule_lines))]
    extra = [f"Quiet hours: <#{q.channel}> {q.start_hour:02d}:00–{q.end_hour:02d}:00 {q.timezone}"
             for q in status.quiet]
    extra += [f"Muted: *{rule}* in <#{channel}>" for rule, channel in status.mutes]
    if extra:
        blocks.append(context(*extra))
    blocks.append(divider())
    blocks.append(section(f"*Queue:* {status.pending} waiting to be posted"))
    if status.dead:
        lines = [f"• alert {d.alert_id} ({d.rule}) to {_target(d.channel)}: `{escape(d.error[:150])}`"
                 for d in status.dead]
        hint = " Invite the bot with `/invite @billing-bot` in that channel, then `/billing alerts retry`." \
            if any(("not_in_channel" in d.error or "channel_not_found" in d.error) for d in status.dead) else ""
        blocks.append(section(":skull: *Not delivered* (dead letters)\n" + "\n".join(lines) + hint))
    else:
        blocks.append(context("No undelivered alerts."))
    if status.recent:
        blocks.append(section("*Latest alerts*\n" + "\n".join(
            f"• {'[TEST] ' if a.is_test else ''}{a.rule} · {a.status} · {reader.moment(a.created_at)}"
            for a in status.recent)))
    blocks.append(context("Admins: `/billing alerts route overdue #finance` · `/billing alerts route budget "
                          "#eng-costs` · `/billing alerts quiet 22-7` · `/billing alerts test budget` · "
                          "`/billing alerts unmute overdue` · `/billing alerts retry`" if is_admin else
                          "Only billing admins can change routes and quiet hours."))
    return message(f"Alerts of {status.account.name}: {len(status.dead)} undelivered, {status.pending} queued", blocks)
