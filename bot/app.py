"""The Bolt app: built once per process from settings and dependencies; listeners registered explicitly."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler

from bot.config import Settings
from bot.deps import Deps
from bot.handlers import register_all

log = logging.getLogger("billing_bot")

#: The scopes OAuth installs ask for: the app manifest's, so a pasted manifest and an OAuth install agree.
BOT_SCOPES: list[str] = json.loads((Path(__file__).with_name("manifest.json")).read_text())["oauth_config"][
    "scopes"]["bot"]


def retry_handlers() -> list[RetryHandler]:
    """Retries where they are safe: 429 after Retry-After, 5xx and dropped connections a few times."""
    return [RateLimitErrorRetryHandler(max_retry_count=3), ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2)]


def web_client(settings: Settings, token: str | None = None) -> WebClient:
    return WebClient(token=token or settings.bot_token, base_url=settings.api_url, timeout=15,
                     retry_handlers=retry_handlers())


def build_app(settings: Settings, deps: Deps) -> App:
    if not settings.signing_secret:
        raise SystemExit("SLACK_SIGNING_SECRET is not set (see README: creating the Slack app).")
    client = web_client(settings)
    if settings.oauth_enabled:
        app = App(signing_secret=settings.signing_secret, client=client, oauth_settings=_oauth(settings, deps),
                  listener_executor=deps.listeners, process_before_response=True)
    else:
        if not settings.bot_token:
            raise SystemExit("Set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID/SECRET (OAuth installs).")
        app = App(signing_secret=settings.signing_secret, client=client, token_verification_enabled=False,
                  listener_executor=deps.listeners, process_before_response=True)
    # process_before_response: a listener runs on the request's own thread and the ack is its HTTP answer the moment
    # it returns. Every listener here only acks and hands off (bot.handlers.base.after_ack), so nothing slow is
    # waited for, and Bolt's 10 ms polling for the ack from another thread is gone from every request.
    app.use(_refuse_replays(deps))
    register_all(app, deps)

    @app.error
    def on_unhandled(error: Exception, body: dict[str, Any]) -> BoltResponse:
        # Listeners report their own failures; this only catches what escaped before an ack.
        log.exception("unhandled error in a listener", exc_info=error)
        return BoltResponse(status=200, body="")

    return app


def _refuse_replays(deps: Deps) -> Callable[..., BoltResponse | None]:
    """Bolt checks the signature and its 5-minute window; this refuses the same signed request twice."""

    def middleware(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        signature = req.headers.get("x-slack-signature", [""])[0]
        if signature and not deps.replays.claim(f"slack:{signature}", now=deps.clock()):
            log.warning("refused a replayed Slack request")
            return BoltResponse(status=401, body='{"error": "replayed request"}',
                                headers={"content-type": "application/json"})
        return next()

    return middleware


def _oauth(settings: Settings, deps: Deps) -> OAuthSettings:
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    from bot.jobs.workspaces import installation_store

    assert settings.client_id and settings.client_secret
    installations = installation_store(settings.client_id, deps.db.engine)  # the worker reads the same store
    states = SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=deps.db.engine)
    states.metadata.create_all(deps.db.engine)
    return OAuthSettings(client_id=settings.client_id, client_secret=settings.client_secret, scopes=BOT_SCOPES,
                         installation_store=installations, state_store=states, install_path="/slack/install",
                         redirect_uri_path="/slack/oauth_redirect")
