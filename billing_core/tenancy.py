"""Who may see which account: workspaces, channel links and member roles, stored in the ledger.

The decision itself (combining these with a chat platform's own admin flags) is made in one place in the
bot (`bot.access`); this module only stores and reads the facts, and audits every change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, select

from billing_core.db.audit import record
from billing_core.db.engine import Database
from billing_core.db.models import Account, ChannelLink, MemberRole, WorkspaceAccount
from billing_core.db.queries import account_info, get_account
from billing_core.errors import InvalidInput, NotFound
from billing_core.results import AccountInfo


class Role(StrEnum):
    VIEWER = "viewer"
    ADMIN = "admin"


@dataclass(frozen=True)
class WorkspaceFacts:
    """Everything access decisions need about one workspace, read in one unit of work."""

    workspace: str
    accounts: tuple[AccountInfo, ...]
    default_account: AccountInfo | None
    channel_links: dict[str, int]  # channel → account id
    roles: dict[str, Role]  # member → role

    def account(self, account_id: int) -> AccountInfo | None:
        return next((a for a in self.accounts if a.id == account_id), None)


class Tenancy:
    def __init__(self, db: Database) -> None:
        self.db = db

    def facts(self, workspace: str) -> WorkspaceFacts:
        with self.db.unit_of_work() as s:
            rows = s.execute(
                select(Account, WorkspaceAccount.is_default)
                .join(WorkspaceAccount, WorkspaceAccount.account_id == Account.id)
                .where(WorkspaceAccount.workspace == workspace).order_by(Account.name)
            ).all()
            accounts = tuple(account_info(a) for a, _ in rows)
            default = next((account_info(a) for a, d in rows if d), accounts[0] if accounts else None)
            links = {c.channel: c.account_id for c in s.scalars(
                select(ChannelLink).where(ChannelLink.workspace == workspace))}
            roles = {r.member: Role(r.role) for r in s.scalars(
                select(MemberRole).where(MemberRole.workspace == workspace))}
            return WorkspaceFacts(workspace, accounts, default, links, roles)

    def workspaces_of(self, account_id: int, *, channel: str | None = None) -> list[str]:
        """The workspaces that may see the account (so may receive its alerts): those that linked `channel` to
        it ahead of the others, then those holding it as their default, then by id."""
        with self.db.unit_of_work() as s:
            rows = s.execute(select(WorkspaceAccount.workspace, WorkspaceAccount.is_default)
                             .where(WorkspaceAccount.account_id == account_id)).all()
            linked = set(s.scalars(select(ChannelLink.workspace).where(
                ChannelLink.account_id == account_id, ChannelLink.channel == channel))) if channel else set()
        ranked = sorted(rows, key=lambda row: (row[0] not in linked, not row[1], row[0]))
        return [workspace for workspace, _default in ranked]

    def allow_account(self, workspace: str, account: str, *, default: bool, actor: str, now: datetime) -> AccountInfo:
        """Let `workspace` see `account` (installation and demo set-up)."""
        with self.db.unit_of_work() as s:
            acct = get_account(s, account)
            row = s.get(WorkspaceAccount, (workspace, acct.id))
            if row is None:
                s.add(WorkspaceAccount(workspace=workspace, account_id=acct.id, is_default=default))
            elif default:
                row.is_default = True
            record(s, actor=actor, action="workspace.allow", entity="workspace", entity_id=workspace, at=now,
                   after={"account": acct.name, "default": default})
            return account_info(acct)

    def link_channel(self, workspace: str, channel: str, account: str, *, actor: str, now: datetime) -> AccountInfo:
        with self.db.unit_of_work() as s:
            acct = get_account(s, account)
            if s.get(WorkspaceAccount, (workspace, acct.id)) is None:
                raise NotFound(f"No billing account {account[:60]!r} in this workspace.",
                               hint="`/billing link` with one of the accounts listed by `/billing access`.")
            link = s.get(ChannelLink, (workspace, channel))
            before = {"account_id": link.account_id} if link else None
            if link is None:
                link = ChannelLink(workspace=workspace, channel=channel, account_id=acct.id, linked_by=actor,
                                   linked_at=now)
                s.add(link)
            else:
                link.account_id, link.linked_by, link.linked_at = acct.id, actor, now
            record(s, actor=actor, action="channel.link", entity="channel", entity_id=f"{workspace}/{channel}",
                   at=now, before=before, after={"account_id": acct.id, "account": acct.name})
            return account_info(acct)

    def unlink_channel(self, workspace: str, channel: str, *, actor: str, now: datetime) -> None:
        with self.db.unit_of_work() as s:
            link = s.get(ChannelLink, (workspace, channel))
            if link is None:
                raise NotFound("This channel is not linked to a billing account.")
            record(s, actor=actor, action="channel.unlink", entity="channel", entity_id=f"{workspace}/{channel}",
                   at=now, before={"account_id": link.account_id})
            s.delete(link)

    def grant(self, workspace: str, member: str, role: Role, *, actor: str, now: datetime) -> None:
        with self.db.unit_of_work() as s:
            row = s.get(MemberRole, (workspace, member))
            before = {"role": row.role} if row else None
            if row is None:
                s.add(MemberRole(workspace=workspace, member=member, role=role.value, granted_by=actor, granted_at=now))
            else:
                row.role, row.granted_by, row.granted_at = role.value, actor, now
            record(s, actor=actor, action="role.grant", entity="member", entity_id=f"{workspace}/{member}", at=now,
                   before=before, after={"role": role.value})

    def revoke(self, workspace: str, member: str, *, actor: str, now: datetime) -> None:
        with self.db.unit_of_work() as s:
            row = s.get(MemberRole, (workspace, member))
            if row is None:
                raise InvalidInput("That member has no billing role to revoke.", hint="`/billing access` lists roles.")
            record(s, actor=actor, action="role.revoke", entity="member", entity_id=f"{workspace}/{member}", at=now,
                   before={"role": row.role})
            s.execute(delete(MemberRole).where(MemberRole.workspace == workspace, MemberRole.member == member))

    def audit(self, *, actor: str, action: str, entity: str, entity_id: str | None, at: datetime,
              detail: str | None = None) -> None:
        """Record something that changed nothing but must be known (a refused attempt, an export)."""
        with self.db.unit_of_work() as s:
            record(s, actor=actor, action=action, entity=entity, entity_id=entity_id, at=at, detail=detail)
