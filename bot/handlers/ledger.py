"""Read-only answers: overview, invoices, invoice, usage, forecast, payments, exports — and their files."""

from __future__ import annotations

import dataclasses
import time
from datetime import date
from typing import Any

import charts
from billing_core import exports
from billing_core.errors import InvalidInput
from billing_core.periods import Granularity, Period, custom_period
from billing_core.results import InvoiceQuery, PaymentStatus
from bot.access import Grant
from bot.handlers.base import Ctx, reader_for
from bot.parsing import UsageRequest, near_grouping, parse_invoice_filters, parse_payment_filters, parse_usage
from bot.replies import Posted, Reply
from bot.views.common import message, section, working_message
from bot.views.invoices import invoice_message, invoices_message
from bot.views.overview import overview_message
from bot.views.payments import payments_message
from bot.views.usage import forecast_message, usage_message

#: Invoices in one export at most (read at call time, so a test can lower it); more are named, never dropped silently.
MAX_EXPORT = 5000
PROGRESS_EVERY_S = 1.5


def overview(ctx: Ctx, args: tuple[str, ...]) -> None:
    if args:
        raise InvalidInput("`/billing overview` takes no options.", hint="/billing")
    grant = ctx.grant()
    o = ctx.deps.billing.overview(grant.account.id, now=ctx.now)
    reader = reader_for(grant)
    reply = ctx.reply(grant)
    posted = reply.send(overview_message(o, reader, staleness=ctx.deps.billing.provider_outages(grant.account.id)))
    png = ctx.deps.render(charts.cost_trend_png, o.trend, currency=o.account.currency, locale=reader.locale)
    reply.file(posted, filename="cost-trend-30-days.png", content=png, title=f"{o.account.name}: cost, last 30 days",
               alt_text=charts.alt_text_cost_trend(o.trend, currency=o.account.currency, locale=reader.locale))


def invoices(ctx: Ctx, args: tuple[str, ...]) -> None:
    grant = ctx.grant()
    query, page_number = parse_invoice_filters(args, ctx.today(grant))
    show_invoices(ctx, grant, InvoiceQuery(query.statuses, query.issued_from, query.issued_to, query.search,
                                           query.limit, None, page_number), page_number, replace=False)


def show_invoices(ctx: Ctx, grant: Grant, query: InvoiceQuery, page_number: int, *, replace: bool) -> None:
    page = ctx.deps.billing.invoices(grant.account.id, query, now=ctx.now)
    msg = invoices_message(page, reader_for(grant), account_id=grant.account.id, page_number=page_number,
                           staleness=ctx.deps.billing.provider_outages(grant.account.id))
    (ctx.replacing(grant) if replace else ctx.reply(grant)).send(msg, replace=replace)


def invoice(ctx: Ctx, args: tuple[str, ...]) -> None:
    if len(args) != 1:
        raise InvalidInput("Which invoice? Give exactly one invoice number.", hint="/billing invoice INV-0042")
    grant = ctx.grant()
    detail = ctx.deps.billing.invoice(grant.account.id, args[0], now=ctx.now)
    # The billing period is inclusive of its last day, as printed on the invoice.
    period = custom_period(detail.summary.period_start, max(detail.summary.period_start, detail.summary.period_end))
    usage = ctx.deps.billing.usage(grant.account.id, period, group_by="resource")
    outages = ctx.deps.billing.provider_outages(grant.account.id)
    reader = reader_for(grant)
    reply = ctx.reply(grant, in_thread=ctx.message_ts is not None)
    posted = reply.send(invoice_message(detail, reader, usage=usage, staleness=outages))
    if usage.by_resource:  # the period's cost per resource as bars, beside the lines that bill it
        title = f"{detail.summary.number}: cost by resource, {usage.period.label}"
        currency = grant.account.currency
        png = ctx.deps.render(charts.breakdown_png, usage.by_resource, currency=currency, title=title,
                              locale=reader.locale)
        reply.file(posted, filename=f"{detail.summary.number}-usage.png", content=png, title=title,
                   alt_text=charts.alt_text_breakdown(usage.by_resource, currency=currency, title=title,
                                                      locale=reader.locale))


def usage(ctx: Ctx, args: tuple[str, ...]) -> None:
    grant = ctx.grant()
    request = parse_usage(args, ctx.today(grant))
    summary = ctx.deps.billing.usage(grant.account.id, request.period, group_by=request.group_by,
                                     granularity=request.granularity)
    near = near_grouping(request.group_by)
    if near and summary.untagged:  # "(no dployment) 100 %" would read as data: it is a typo
        raise InvalidInput(f"No usage is tagged with `{request.group_by[:40]}`: did you mean `by {near}`?",
                           hint=f"e.g. `/billing usage month by {near}`")
    reader = reader_for(grant)
    reply = ctx.reply(grant)
    posted = reply.send(usage_message(summary, reader, asked=request.granularity,
                                      staleness=ctx.deps.billing.provider_outages(grant.account.id)))
    png = ctx.deps.render(charts.usage_stacked_png, summary, locale=reader.locale)
    reply.file(posted, filename="usage.png", content=png, title=f"Usage {summary.period.label}",
               alt_text=charts.alt_text_usage(summary, locale=reader.locale))


def forecast(ctx: Ctx, args: tuple[str, ...]) -> None:
    if args:
        raise InvalidInput("`/billing forecast` takes no options; it projects the current month.",
                           hint="/billing forecast")
    grant = ctx.grant()
    projection = ctx.deps.billing.forecast(grant.account.id, now=ctx.now)
    budgets = ctx.deps.billing.budgets(grant.account.id, now=ctx.now)
    reader = reader_for(grant)
    reply = ctx.reply(grant)
    posted = reply.send(forecast_message(projection, budgets, reader, account=grant.account.name,
                                         staleness=ctx.deps.billing.provider_outages(grant.account.id)))
    budget = next((b.amount for b in budgets if b.projected is not None), None)
    png = ctx.deps.render(charts.forecast_png, projection, budget=budget, locale=reader.locale)
    reply.file(posted, filename="forecast.png", content=png, title=f"Forecast {projection.period.label}",
               alt_text=charts.alt_text_forecast(projection, budget=budget, locale=reader.locale))


def payments(ctx: Ctx, args: tuple[str, ...]) -> None:
    grant = ctx.grant()
    query = parse_payment_filters(args, ctx.today(grant))
    page = ctx.deps.billing.payments(grant.account.id, query)
    label = " ".join(args) if args else "(latest)"
    ctx.reply(grant).send(payments_message(page, reader_for(grant), period_label=label, account_id=grant.account.id,
                                           staleness=ctx.deps.billing.provider_outages(grant.account.id)))


def export(ctx: Ctx, args: tuple[str, ...]) -> None:
    """`export invoices [filters] pdf|csv`: one CSV, or a ZIP of PDFs with progress while it renders."""
    if not args or args[0].lower() != "invoices":
        raise InvalidInput("I can export invoices.", hint="/billing export invoices overdue pdf")
    words = list(args[1:])
    kind = "csv"
    if words and words[-1].lower() in ("pdf", "csv", "zip"):
        kind = "csv" if words.pop().lower() == "csv" else "pdf"
    grant = ctx.grant()
    query, _ = parse_invoice_filters(tuple(words), ctx.today(grant))
    export_invoices(ctx, grant, query, kind)


def export_invoices(ctx: Ctx, grant: Grant, query: InvoiceQuery, kind: str) -> None:
    reply = ctx.reply(grant, in_thread=ctx.message_ts is not None)
    details = ctx.deps.billing.invoice_details(grant.account.id, query, now=ctx.now, limit=MAX_EXPORT)
    if not details:
        raise InvalidInput("No invoices match that filter, so there is nothing to export.",
                           hint="/billing export invoices pdf")
    ctx.deps.tenancy.audit(actor=ctx.who.actor, action=f"export.invoices.{kind}", entity="account",
                           entity_id=str(grant.account.id), at=ctx.now, detail=f"{len(details)} invoices")
    capped = cap_note(ctx, grant, query, len(details))
    if kind == "csv":
        content = exports.invoices_csv([d.summary for d in details])
        text = f"{len(details)} invoices exported as CSV{capped}."
        posted = reply.send(message(text, [section(f":page_facing_up: {text}")]))
        reply.file(posted, filename="invoices.csv", content=content, title="Invoices (CSV)")
        return
    posted = progress_start(ctx, reply, f"Rendering 0/{len(details)} invoice PDFs…")
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.monotonic() - last[0] >= PROGRESS_EVERY_S or done == total:
            last[0] = time.monotonic()
            progress_update(ctx, posted, f"Rendering {done}/{total} invoice PDFs…")

    archive = exports.invoices_zip(details, locale=reader_for(grant).locale, progress=progress,
                                   executor=ctx.deps.render.executor())
    progress_update(ctx, posted, f":white_check_mark: {len(details)} invoice PDFs ready{capped}.")
    reply.file(posted, filename="invoices.zip", content=archive, title=f"{len(details)} invoices (PDF, zipped)")


def cap_note(ctx: Ctx, grant: Grant, query: InvoiceQuery, exported: int) -> str:
    """`: first 5,000 of 7,342 — narrow the filter` when the export stopped at MAX_EXPORT, else empty."""
    if exported < MAX_EXPORT:
        return ""
    count = dataclasses.replace(query, limit=1, cursor=None, page=1)
    matching = ctx.deps.billing.invoices(grant.account.id, count, now=ctx.now).total_matching
    return f": first {exported:,} of {matching:,} — narrow the filter" if matching > exported else ""


def progress_start(ctx: Ctx, reply: Reply, text: str) -> Posted:
    """A progress message we can edit: in the channel when public, in the DM otherwise (no response_url limit)."""
    msg = working_message(text.rstrip("…"))
    if reply.public:
        return reply.send(msg)
    channel = reply.dm()
    result = ctx.client.chat_postMessage(channel=channel, **msg)
    return Posted(channel, str(result["ts"]))


def progress_update(ctx: Ctx, posted: Posted, text: str) -> None:
    if posted.ts:
        ctx.client.chat_update(channel=posted.channel, ts=posted.ts, **message(text, [section(text)]))


# --- files behind buttons --------------------------------------------------------------------------


def invoice_pdf(ctx: Ctx, grant: Grant, number: str) -> None:
    detail = ctx.deps.billing.invoice(grant.account.id, number, now=ctx.now)
    reply = ctx.reply(grant, in_thread=True)
    pdf = ctx.deps.render(exports.invoice_pdf, detail, locale=reader_for(grant).locale)
    reply.file(Posted(ctx.who.channel or "", ctx.message_ts), filename=f"{detail.summary.number}.pdf", content=pdf,
               title=f"Invoice {detail.summary.number}")


def invoice_csv(ctx: Ctx, grant: Grant, number: str) -> None:
    detail = ctx.deps.billing.invoice(grant.account.id, number, now=ctx.now)
    ctx.reply(grant, in_thread=True).file(Posted(ctx.who.channel or "", ctx.message_ts),
                                          filename=f"{detail.summary.number}.csv",
                                          content=exports.invoice_lines_csv(detail),
                                          title=f"Invoice {detail.summary.number} (CSV)")


def receipt_pdf(ctx: Ctx, grant: Grant, number: str, payment_id: int) -> None:
    detail = ctx.deps.billing.invoice(grant.account.id, number, now=ctx.now)
    payment = next((p for p in detail.payments if p.id == payment_id and p.status is PaymentStatus.CONFIRMED), None)
    if payment is None or not payment.receipt_number:
        raise InvalidInput(f"That payment on {number} has no receipt.", hint=f"/billing invoice {number}")
    pdf = ctx.deps.render(exports.receipt_pdf, payment, detail, locale=reader_for(grant).locale)
    ctx.reply(grant, in_thread=True).file(Posted(ctx.who.channel or "", ctx.message_ts),
                                          filename=f"{payment.receipt_number}.pdf", content=pdf,
                                          title=f"Receipt {payment.receipt_number}")


def invoices_csv(ctx: Ctx, grant: Grant, query: InvoiceQuery) -> None:
    details = ctx.deps.billing.invoice_details(grant.account.id, query, now=ctx.now, limit=MAX_EXPORT)
    content = exports.invoices_csv([d.summary for d in details])
    capped = cap_note(ctx, grant, query, len(details))
    ctx.reply(grant, in_thread=True).file(Posted(ctx.who.channel or "", ctx.message_ts), filename="invoices.csv",
                                          content=content, title=f"{len(details)} invoices (CSV)",
                                          comment=f"{len(details)} invoices{capped}." if capped else None)


def report_request(state: dict[str, Any]) -> UsageRequest:
    """The usage question an *Export usage report* button stands for: the period, grouping and buckets the
    message answered (see `usage_message`)."""
    try:
        period = Period(date.fromisoformat(str(state["s"])), date.fromisoformat(str(state["e"])), str(state["l"]))
        return UsageRequest(period, str(state["g"]), Granularity(str(state["b"])))
    except (KeyError, ValueError):
        raise InvalidInput("That export button is from an older message.",
                           hint="Ask again with `/billing usage …` and export from the new answer.") from None


def usage_report(ctx: Ctx, grant: Grant, request: UsageRequest) -> None:
    summary = ctx.deps.billing.usage(grant.account.id, request.period, group_by=request.group_by,
                                     granularity=request.granularity)
    locale = reader_for(grant).locale
    png = ctx.deps.render(charts.usage_stacked_png, summary, locale=locale)
    reply = ctx.reply(grant, in_thread=True)
    posted = Posted(ctx.who.channel or "", ctx.message_ts)
    reply.file(posted, filename="usage.csv", content=exports.usage_csv(summary), title="Usage report (CSV)")
    pdf = ctx.deps.render(exports.usage_report_pdf, summary, chart_png=png, locale=locale)
    reply.file(posted, filename="usage-report.pdf", content=pdf, title=f"Usage report {summary.period.label}")


