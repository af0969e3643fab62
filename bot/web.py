"""The `web` process: Slack events, OAuth install and health on one WSGI app, served by waitress."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import text

from bot.deps import Deps

StartResponse = Callable[..., Any]
SLACK_PATHS = ("/slack/events", "/slack/install", "/slack/oauth_redirect")


def wsgi_app(app: App, deps: Deps) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    slack = SlackRequestHandler(app)

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in SLACK_PATHS:
            return slack(environ, start_response)
        if path == "/healthz":
            return _health(deps, start_response)
        return _json(start_response, "404 Not Found", {"error": "not found"})

    return application


def _health(deps: Deps, start_response: StartResponse) -> Iterable[bytes]:
    try:
        with deps.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return _json(start_response, "503 Service Unavailable", {"ok": False, "database": str(exc)[:200]})
    return _json(start_response, "200 OK", {"ok": True})


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def serve(application: Callable[..., Iterable[bytes]], *, host: str, port: int, threads: int = 16) -> None:
    import waitress

    waitress.serve(application, host=host, port=port, threads=threads, ident="billing-bot")
