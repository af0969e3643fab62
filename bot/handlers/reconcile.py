"""`/billing reconcile [period]`: billing admins compare the providers' invoices with metered usage."""

from __future__ import annotations

from billing_core.errors import InvalidInput
from billing_core.reconciliation import discrepancies_csv
from bot.handlers.base import Ctx, reader_for
from bot.parsing import parse_period
from bot.views.reconcile import reconcile_message

HINT = "/billing reconcile 2026-10"


def reconcile(ctx: Ctx, args: tuple[str, ...]) -> None:
    """Default period: the last complete month. The run is audited by the core; the CSV goes in the thread."""
    grant = ctx.admin()
    period = None
    if args:
        words = [a.lower() for a in args]
        parsed = parse_period(words, 0, ctx.today(grant))
        if parsed is None or parsed[1] != len(words):
            raise InvalidInput("Give one period to reconcile, e.g. a month.", hint=HINT)
        period = parsed[0]
    result = ctx.deps.billing.reconcile(grant.account.id, period, actor=ctx.who.actor, now=ctx.now)
    reader = reader_for(grant)
    reply = ctx.reply(grant)
    posted = reply.send(reconcile_message(result, reader,
                                          staleness=ctx.deps.billing.provider_outages(grant.account.id)))
    if result.discrepancies:
        reply.file(posted, filename=f"reconciliation-{result.account}-{result.period.start:%Y-%m-%d}.csv",
                   content=discrepancies_csv([result]), title=f"Reconciliation {result.period.label} (CSV)")
