"""Which workspace's bot posts an alert when the app is installed in many workspaces (OAuth installs).

An account's alerts go only to a workspace that may see the account (`billing_core.tenancy`), and only with
that workspace's own bot token, read from slack_sdk's installation store (the one `billing-bot web` fills when
a workspace installs the app). Slack channel ids are unique across workspaces, so the workspace to post with is
the one that can see the channel. Candidates are the workspaces that may see the account, one that linked the
channel to the account ahead of the others; the only candidate posts, or else the first whose bot finds the channel
(`conversations.info`, a read: asking never posts anything twice; a workspace whose token no longer works is
passed over). The choice is remembered per (account, channel) while that workspace stays a candidate; access
and tokens are read afresh for every delivery, so an unlink, a revoked access or a reinstall takes effect at
once. Installations are found by team id with no enterprise id, as a workspace install is stored: an install
into an Enterprise Grid organisation (stored with its enterprise id) is not found, and its alerts are
dead-lettered as "not installed".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import InstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy.engine import Engine

from billing_core.tenancy import Tenancy

#: Answers that say this workspace's bot cannot see the channel: not there, or a token that no longer works
#: (uninstalled, deactivated, scopes removed) — the installation row outlives an uninstall.
CANNOT_SEE = frozenset({"channel_not_found", "invalid_auth", "token_revoked", "account_inactive", "missing_scope",
                        "not_authed"})


class NotInstalled(Exception):
    """No workspace that may see the account has the app installed: nothing can post its alerts."""


def installation_store(client_id: str, engine: Engine) -> SQLAlchemyInstallationStore:
    """The installations of the app `client_id`, kept in the ledger's database (its tables created if missing)."""
    store = SQLAlchemyInstallationStore(client_id=client_id, engine=engine)
    store.create_tables()  # type: ignore[no-untyped-call]  # slack_sdk owns these tables' shape; idempotent
    return store


@dataclass
class InstalledWorkspaces:
    tenancy: Tenancy
    store: InstallationStore
    make_client: Callable[[str], WebClient]  # a token's client (the delivery loop's: no retry handlers)
    _chosen: dict[tuple[int, str], str] = field(default_factory=dict)  # (account, channel) → workspace
    _clients: dict[str, WebClient] = field(default_factory=dict)  # by token

    def client_for(self, account_id: int, channel: str) -> WebClient:
        """The client of the workspace that posts `channel`'s alerts of the account; NotInstalled if none can."""
        installed = [(team, token) for team in self.tenancy.workspaces_of(account_id, channel=channel)
                     if (token := self._token(team)) is not None]  # read every time: access and installs change
        if not installed:
            raise NotInstalled("no workspace that may see this account has the app installed — install it from "
                               "/slack/install, then `billing-bot workspace allow WORKSPACE ACCOUNT`")
        tokens = dict(installed)
        team = self._chosen.get((account_id, channel))
        if team not in tokens:
            team = self._chosen[(account_id, channel)] = self._workspace_for(installed, channel)
        return self._client(tokens[team])

    def _workspace_for(self, installed: list[tuple[str, str]], channel: str) -> str:
        if len(installed) > 1:
            for team, token in installed:
                if self._sees(token, channel):
                    return team
        return installed[0][0]  # none finds it: the post fails as channel_not_found, with the invite hint

    def _sees(self, token: str, channel: str) -> bool:
        try:
            self._client(token).conversations_info(channel=channel)
        except SlackApiError as error:
            if error.response.get("error") in CANNOT_SEE:
                return False  # another candidate may: one workspace's dead token must not sink the alert
            raise  # rate limits, outages: the delivery retries as for any other call
        return True

    def _token(self, team: str) -> str | None:
        installation = self.store.find_installation(enterprise_id=None, team_id=team)
        return installation.bot_token if installation is not None else None

    def _client(self, token: str) -> WebClient:
        client = self._clients.get(token)
        if client is None:
            client = self._clients[token] = self.make_client(token)
        return client
