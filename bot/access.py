"""Access, decided in one place: who may see which billing account, and who may change things.

Every command, action, modal and the Home tab call `Access.grant` (read) or `Access.require_admin`
(change). Rules:
- a workspace sees only the accounts allowed for it; data of one workspace never shows in another;
- a channel linked to an account is about that account, and answers there are public;
  elsewhere the workspace's default account is used and answers are ephemeral;
- billing admins: workspace admins and owners (from `users.info`), members listed in BILLING_ADMINS,
  and members granted `admin`; viewers: members granted `viewer`. Everyone else is refused politely,
  and the refusal is audited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk import WebClient

from billing_core.errors import Forbidden
from billing_core.fmt import safe_locale
from billing_core.results import AccountInfo
from billing_core.tenancy import Role, Tenancy, WorkspaceFacts

MEMBER_TTL_SECONDS = 300.0


@dataclass(frozen=True)
class Who:
    """Who is asking, from where (a channel, a DM, a modal or the Home tab)."""

    workspace: str
    user: str
    channel: str | None = None

    @property
    def actor(self) -> str:
        return f"slack:{self.workspace}/{self.user}"


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    is_workspace_admin: bool
    locale: str
    tz: ZoneInfo


@dataclass(frozen=True)
class Grant:
    """What `who` may do with `account`; `public` when answers belong in the channel for all to see."""

    who: Who
    account: AccountInfo
    member: Member
    role: Role
    public: bool

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class Access:
    def __init__(self, tenancy: Tenancy, *, billing_admins: frozenset[str], clock: Callable[[], datetime]) -> None:
        self.tenancy = tenancy
        self.billing_admins = billing_admins
        self.clock = clock
        self._members: dict[tuple[str, str], tuple[float, Member]] = {}
        self._lock = threading.Lock()

    def member(self, client: WebClient, who: Who) -> Member:
        """The member's profile (admin flag, locale, time zone) from users.info, cached a few minutes."""
        key = (who.workspace, who.user)
        with self._lock:
            cached = self._members.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        user = client.users_info(user=who.user, include_locale=True)["user"]
        member = Member(
            id=who.user, name=user.get("real_name") or user.get("name") or who.user,
            is_workspace_admin=bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")),
            locale=safe_locale(user.get("locale")), tz=_zone(user.get("tz")),
        )
        with self._lock:
            self._members[key] = (time.monotonic() + MEMBER_TTL_SECONDS, member)
        return member

    def role_of(self, facts: WorkspaceFacts, member: Member) -> Role | None:
        if member.is_workspace_admin or member.id in self.billing_admins:
            return Role.ADMIN
        return facts.roles.get(member.id)

    def grant(self, client: WebClient, who: Who) -> Grant:
        """Read access to the account this request is about, or `Forbidden` (audited)."""
        facts = self.tenancy.facts(who.workspace)
        member = self.member(client, who)
        role = self.role_of(facts, member)
        if role is None:
            self._refuse(who, "no billing role")
        linked = facts.channel_links.get(who.channel or "")
        account = facts.account(linked) if linked is not None else facts.default_account
        if account is None:
            self._refuse(who, "workspace not connected")
        assert role is not None and account is not None
        return Grant(who, account, member, role, public=linked is not None)

    def require_admin(self, client: WebClient, who: Who) -> Grant:
        grant = self.grant(client, who)
        if not grant.is_admin:
            self._refuse(who, "needs billing admin")
        return grant

    def require_workspace_admin(self, client: WebClient, who: Who) -> tuple[WorkspaceFacts, Member]:
        """For changes that need no account yet (linking a channel, granting roles)."""
        facts = self.tenancy.facts(who.workspace)
        member = self.member(client, who)
        if self.role_of(facts, member) is not Role.ADMIN:
            self._refuse(who, "needs billing admin")
        return facts, member

    def _refuse(self, who: Who, why: str) -> NoReturn:
        self.tenancy.audit(actor=who.actor, action="access.denied", entity="channel",
                           entity_id=who.channel, at=self.clock(), detail=why)
        message, hint = _REFUSALS[why]
        raise Forbidden(message, hint=hint)


# Why a request was refused (as audited) → what the person is told, and what to do about it.
_REFUSALS = {
    "no billing role": ("You don't have access to billing data in this workspace.",
                        "Ask a billing admin to run `/billing access grant @you viewer`."),
    "needs billing admin": ("Only billing admins can do this (budgets, alert routes, links, roles, reconciliation).",
                            "Ask a workspace admin, or someone with `/billing access` admin rights."),
    "workspace not connected": ("This workspace is not connected to a billing account yet.",
                                "A billing admin can run `/billing link ACCOUNT` in a channel."),
}


def _zone(name: object) -> ZoneInfo:
    try:
        return ZoneInfo(str(name)) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
