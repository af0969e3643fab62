"""The request context every handler works with, and the guard that reports failures after the ack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from billing_core.errors import Forbidden
from bot.access import Grant, Who
from bot.deps import Deps
from bot.ids import Action
from bot.replies import Reply, Respond, report_error
from bot.views.common import Reader, unpack


@dataclass(frozen=True)
class Ctx:
    """One request: who asks, from where, and how to answer them."""

    deps: Deps
    client: WebClient
    who: Who
    respond: Respond | None = None
    trigger_id: str | None = None
    message_ts: str | None = None  # the message a button was on (files thread under it, pages replace it)
    ephemeral_source: bool = False  # the button was on an ephemeral message: keep answers private

    @property
    def now(self) -> datetime:
        return self.deps.clock()

    def grant(self) -> Grant:
        return self.deps.access.grant(self.client, self.who)

    def admin(self) -> Grant:
        return self.deps.access.require_admin(self.client, self.who)

    def today(self, grant: Grant) -> date:
        return self.deps.billing.today(grant.account.id, now=self.now)

    def reply(self, grant: Grant, *, in_thread: bool = False) -> Reply:
        public = grant.public and not self.ephemeral_source
        return Reply(self.client, self.who, public=public, respond=self.respond,
                     thread_ts=self.message_ts if in_thread else None)

    def replacing(self, grant: Grant) -> Reply:
        """Answers that replace the message the button was on (pagination, filters)."""
        return Reply(self.client, self.who, public=grant.public and not self.ephemeral_source,
                     respond=self.respond, thread_ts=self.message_ts)

    def private(self) -> Reply:
        return Reply(self.client, self.who, public=False, respond=self.respond)

    def with_respond(self, respond: Respond | None) -> Ctx:
        return replace(self, respond=respond)


def reader_for(grant: Grant) -> Reader:
    return Reader(grant.member.locale, grant.member.tz)


def same_account(grant: Grant, account_id: object) -> None:
    """A button carries the account it was about; refuse it if access now resolves another one."""
    if account_id is not None and account_id != grant.account.id:
        raise Forbidden("That button belongs to another billing account than this channel's.",
                        hint="Ask again with `/billing` here.")


def guarded(ctx: Ctx, work: Callable[[], object]) -> None:
    ctx.deps.acks.wait_for_quiet()  # acks first (bot.acks): the answer can wait a few ms, Slack's deadline can't
    try:
        work()
    except BaseException as error:
        report_error(ctx.private(), error)


def after_ack(ctx: Ctx, work: Callable[[], object]) -> None:
    """Run `work` on the bot's worker pool so Bolt's listener threads stay free to ack."""
    ctx.deps.workers.submit(guarded, ctx, work)


def action_ctx(deps: Deps, body: dict[str, Any], client: WebClient, respond: Respond | None) -> Ctx:
    """The request behind a click: who, in which channel, on which message (its thread takes the files)."""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    team = (body.get("team") or {}).get("id") or body["user"].get("team_id", "")
    message = body.get("message") or {}
    return Ctx(deps, client, Who(team, body["user"]["id"], channel),
               respond=respond if body.get("response_url") else None, trigger_id=body.get("trigger_id"),
               message_ts=message.get("thread_ts") or container.get("message_ts"),
               ephemeral_source=bool(container.get("is_ephemeral")))


def action_state(body: dict[str, Any]) -> dict[str, Any]:
    """What the clicked element carries: a button's value or a menu's selected option (packed JSON)."""
    clicked = (body.get("actions") or [{}])[0]
    return unpack((clicked.get("selected_option") or {}).get("value") or clicked.get("value"))


def on_action(app: App, deps: Deps, action: Action, work: Callable[[Ctx, dict[str, Any]], object]) -> None:
    """Register `work(ctx, state)` for `action`: acked at once, run after the ack, failures reported."""

    @app.action(action)
    def handler(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        ctx = action_ctx(deps, body, client, respond)
        state = action_state(body)
        after_ack(ctx, lambda: work(ctx, state))
