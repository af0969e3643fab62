"""Settings from the environment, read once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

SLACK_API_DEFAULT = "https://slack.com/api/"


@dataclass(frozen=True)
class Settings:
    signing_secret: str
    bot_token: str | None = None  # single-workspace mode; OAuth installs store their own tokens
    app_token: str | None = None  # Socket Mode
    api_url: str = SLACK_API_DEFAULT
    database_url: str | None = None
    billing_admins: frozenset[str] = field(default_factory=frozenset)
    client_id: str | None = None
    client_secret: str | None = None
    state_secret: str | None = None
    webhook_secret: str | None = None  # whsec_…: billing providers sign POST /webhooks/billing with it

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        api_url = env.get("SLACK_API_URL") or SLACK_API_DEFAULT
        return cls(
            signing_secret=env.get("SLACK_SIGNING_SECRET", ""),
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            database_url=env.get("DATABASE_URL") or None,
            billing_admins=frozenset(u.strip() for u in env.get("BILLING_ADMINS", "").split(",") if u.strip()),
            client_id=env.get("SLACK_CLIENT_ID") or None,
            client_secret=env.get("SLACK_CLIENT_SECRET") or None,
            state_secret=env.get("SLACK_STATE_SECRET") or None,
            webhook_secret=env.get("BILLING_WEBHOOK_SECRET") or None,
        )
