"""Many workspaces: with SLACK_CLIENT_ID/SECRET the app serves Slack's OAuth install flow from our database."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import httpx

from billing_core.db.engine import Database
from bot.app import BOT_SCOPES, build_app
from bot.config import Settings
from bot.deps import Deps
from bot.web import wsgi_app


def test_install_page_links_to_slack_authorize_with_our_scopes_and_a_stored_state(db: Database) -> None:
    settings = Settings.from_env({"SLACK_SIGNING_SECRET": "s", "SLACK_CLIENT_ID": "111.222",
                                  "SLACK_CLIENT_SECRET": "shh", "SLACK_API_URL": "http://127.0.0.1:9/"})
    deps = Deps.build(settings, db=db)
    app = build_app(settings, deps)
    with httpx.Client(transport=httpx.WSGITransport(app=wsgi_app(app, deps)), base_url="http://bot.test") as http:
        page = http.get("/slack/install")
        assert page.status_code == 200
        link = re.search(r'href="(https://[^"]+/oauth/v2/authorize[^"]*)"', page.text).group(1).replace("&amp;", "&")
        query = parse_qs(urlparse(link).query)
        assert urlparse(link).netloc == "slack.com" and query["client_id"] == ["111.222"]
        assert set(query["scope"][0].split(",")) == set(BOT_SCOPES)
        # The state is kept in our database, so a second web process can finish the flow.
        callback = http.get("/slack/oauth_redirect", params={"code": "x", "state": "forged"})
        assert callback.status_code == 400
