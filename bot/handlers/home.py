"""The App Home tab, published on `app_home_opened` with the overview and the trend chart."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import charts
from billing_core.errors import BillingError
from billing_core.results import AccountOverview
from bot.access import Who
from bot.deps import Deps
from bot.handlers.base import Ctx, after_ack, reader_for
from bot.replies import Posted, Reply
from bot.views.common import Reader
from bot.views.overview import home_view, home_without_access

STALE_FILE_ERRORS = {"invalid_arguments", "invalid_blocks"}


def publish_home(ctx: Ctx) -> None:
    try:
        grant = ctx.grant()
    except BillingError as refused:
        ctx.client.views_publish(user_id=ctx.who.user, view=home_without_access(refused.message, refused.hint))
        return
    o = ctx.deps.billing.overview(grant.account.id, now=ctx.now)
    reader = reader_for(grant)
    # The image block needs a shared file: upload the chart to the member's DM once a day, not per visit.
    key = (ctx.who.workspace, ctx.who.user, grant.account.id, o.trend[-1].day.isoformat())
    cached = ctx.deps.home_charts.get(key)
    outages = ctx.deps.billing.provider_outages(grant.account.id)
    try:
        ctx.client.views_publish(user_id=ctx.who.user, view=home_view(
            o, reader, chart_file_id=cached or _upload_chart(ctx, o, reader, key), staleness=outages))
    except SlackApiError as error:
        if cached is None or error.response.get("error") not in STALE_FILE_ERRORS:
            raise
        # The cached file is gone (deleted from the DM, or another workspace's): upload it again, once.
        ctx.client.views_publish(user_id=ctx.who.user, view=home_view(
            o, reader, chart_file_id=_upload_chart(ctx, o, reader, key), staleness=outages))


def _upload_chart(ctx: Ctx, o: AccountOverview, reader: Reader, key: tuple[str, str, int, str]) -> str | None:
    png = ctx.deps.render(charts.cost_trend_png, o.trend, currency=o.account.currency, locale=reader.locale)
    file_id = Reply(ctx.client, ctx.who, public=False, respond=None).file(
        Posted("", None), filename="home-cost-trend.png", content=png, title=f"{o.account.name}: cost, last 30 days",
        alt_text=charts.alt_text_cost_trend(o.trend, currency=o.account.currency, locale=reader.locale))
    ctx.deps.home_charts[key] = file_id
    return file_id or None


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        ctx = Ctx(deps, client, Who(body.get("team_id") or "", event["user"], None))
        after_ack(ctx, lambda: publish_home(ctx))
