"""The request context every handler works with, and the guard that reports failures after the ack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime

from slack_sdk import WebClient

from billing_core.errors import Forbidden
from bot.access import Grant, Who
from bot.deps import Deps
from bot.replies import Reply, Respond, report_error
from bot.views.common import Reader


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
    try:
        work()
    except BaseException as error:
        report_error(ctx.private(), error)


def after_ack(ctx: Ctx, work: Callable[[], object]) -> None:
    """Run `work` on the bot's worker pool so Bolt's listener threads stay free to ack."""
    ctx.deps.workers.submit(guarded, ctx, work)
