"""help, link, unlink and access: who may see what, changed only by billing admins (and audited)."""

from __future__ import annotations

from billing_core.errors import InvalidInput, NotFound
from billing_core.tenancy import Role
from bot.handlers.base import Ctx
from bot.parsing import parse_member
from bot.replies import Reply
from bot.views.admin import access_message, done_message, help_message, linked_message


def help_(ctx: Ctx, args: tuple[str, ...]) -> None:
    ctx.private().private(help_message())


def link(ctx: Ctx, args: tuple[str, ...]) -> None:
    if len(args) != 1:
        raise InvalidInput("Name the billing account to link this channel to.", hint="/billing link acme-corp")
    if not ctx.who.channel or ctx.who.channel.startswith("D"):
        raise InvalidInput("Link a channel, not a direct message.", hint="Run `/billing link ACCOUNT` in #finance.")
    ctx.deps.access.require_workspace_admin(ctx.client, ctx.who)
    account = ctx.deps.tenancy.link_channel(ctx.who.workspace, ctx.who.channel, args[0], actor=ctx.who.actor,
                                            now=ctx.now)
    Reply(ctx.client, ctx.who, public=True, respond=ctx.respond).send(linked_message(account, ctx.who.channel))


def unlink(ctx: Ctx, args: tuple[str, ...]) -> None:
    if args:
        raise InvalidInput("`/billing unlink` takes no options.", hint="/billing unlink")
    ctx.deps.access.require_workspace_admin(ctx.client, ctx.who)
    try:
        ctx.deps.tenancy.unlink_channel(ctx.who.workspace, ctx.who.channel or "", actor=ctx.who.actor, now=ctx.now)
    except NotFound as error:  # say what would help here: this channel has nothing to unlink
        raise NotFound(error.message, hint="`/billing link acme-corp` links it (`/billing access` lists the "
                                            "accounts).") from None
    ctx.private().private(done_message("This channel is no longer linked; answers here are private again."))


def access(ctx: Ctx, args: tuple[str, ...]) -> None:
    """`access` shows roles (anyone with access); `access grant @u viewer|admin` / `revoke @u` (admins)."""
    words = [a.lower() for a in args]
    if not words:
        ctx.grant()  # only people with billing access see who else has it
        facts = ctx.deps.tenancy.facts(ctx.who.workspace)
        note = "Workspace admins and owners are billing admins by default"
        if ctx.deps.settings.billing_admins:
            note += ", and so are: " + ", ".join(f"<@{u}>" for u in sorted(ctx.deps.settings.billing_admins))
        ctx.private().private(access_message(facts, channel=ctx.who.channel, admins_note=note + "."))
        return
    if words[0] == "grant" and len(words) == 3:
        member, role = parse_member(args[1]), _role(words[2])
        ctx.deps.access.require_workspace_admin(ctx.client, ctx.who)
        ctx.deps.tenancy.grant(ctx.who.workspace, member, role, actor=ctx.who.actor, now=ctx.now)
        ctx.private().private(done_message(f"<@{member}> is now a billing {role.value}."))
        return
    if words[0] == "revoke" and len(words) == 2:
        member = parse_member(args[1])
        ctx.deps.access.require_workspace_admin(ctx.client, ctx.who)
        ctx.deps.tenancy.revoke(ctx.who.workspace, member, actor=ctx.who.actor, now=ctx.now)
        ctx.private().private(done_message(f"<@{member}> no longer has a billing role."))
        return
    raise InvalidInput("I can show, grant or revoke billing roles.",
                       hint="/billing access grant @jane viewer · /billing access revoke @jane")


def _role(word: str) -> Role:
    try:
        return Role(word)
    except ValueError:
        raise InvalidInput(f"`{word[:20]}` is not a role.", hint="viewer or admin") from None
