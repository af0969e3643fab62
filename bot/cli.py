"""`billing-bot` with the Slack side: the core's commands plus web, socket and workspace set-up.

This module's `main` is the installed console script; it adds its subcommands to the core's parser
through `billing_core.cli.extend`, so the core never imports the bot.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from collections.abc import Sequence
from types import FrameType

from billing_core import cli as core_cli
from billing_core.cli import OneLineParser, actor, database, now
from billing_core.tenancy import Role, Tenancy
from bot.config import Settings


def cmd_web(args: argparse.Namespace) -> int:
    from bot.app import build_app
    from bot.deps import Deps
    from bot.web import serve, wsgi_app

    settings = Settings.from_env()
    deps = Deps.build(settings, db=database(args))
    app = build_app(settings, deps)
    print(f"billing-bot web on http://{args.host}:{args.port}/slack/events (Slack API {settings.api_url})",
          flush=True)
    # The platform stops a web process with SIGTERM: leave through `finally`, so the render processes stop too
    # instead of outliving us as orphans.
    signal.signal(signal.SIGTERM, _exit_on_term)
    deps.render.warm()
    try:
        serve(wsgi_app(app, deps), host=args.host, port=args.port)
    finally:
        deps.render.shutdown()
    return 0


def _exit_on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def cmd_socket(args: argparse.Namespace) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import build_app
    from bot.deps import Deps

    settings = Settings.from_env()
    if not settings.app_token:
        raise SystemExit("Socket Mode needs SLACK_APP_TOKEN (xapp-…), an app-level token with connections:write.")
    deps = Deps.build(settings, db=database(args))
    SocketModeHandler(build_app(settings, deps), settings.app_token).start()  # type: ignore[no-untyped-call]
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox.runner import run_sandbox

    return run_sandbox(args.database_url, port=args.port)


def cmd_worker(args: argparse.Namespace) -> int:
    from bot.deps import wall_clock
    from bot.jobs.scheduler import RuleTuning, WorkerDeps, run_once, run_worker
    from bot.jobs.webhooks import WebhookTargets
    from bot.jobs.workspaces import installation_store

    settings = Settings.from_env()
    if not settings.bot_token and not settings.oauth_enabled:
        raise SystemExit("The worker posts alerts with SLACK_BOT_TOKEN (xoxb-…, one workspace), or with each "
                         "workspace's own token when SLACK_CLIENT_ID/SECRET are set (OAuth installs); neither is set.")
    db = database(args)
    oauth = settings.client_id if settings.oauth_enabled else None
    installations = installation_store(oauth, db.engine) if oauth else None  # each workspace posts with its own bot
    deps = WorkerDeps.build(db, token=settings.bot_token, api_url=settings.api_url, clock=wall_clock,
                            webhooks=WebhookTargets.from_env(os.environ), tuning=RuleTuning.from_env(os.environ),
                            installations=installations)
    return run_once(deps) if args.once else run_worker(deps)


def cmd_workspace(args: argparse.Namespace) -> int:
    tenancy = Tenancy(database(args))
    who = actor()
    if args.ws_command == "allow":
        account = tenancy.allow_account(args.workspace, args.account, default=args.default, actor=who, now=now())
        print(f"Workspace {args.workspace} may now see {account.name}" + (" (default)." if args.default else "."))
    elif args.ws_command == "link":
        account = tenancy.link_channel(args.workspace, args.channel, args.account, actor=who, now=now())
        print(f"Channel {args.channel} in {args.workspace} is linked to {account.name}.")
    elif args.ws_command == "grant":
        tenancy.grant(args.workspace, args.member, Role(args.role), actor=who, now=now())
        print(f"{args.member} in {args.workspace} is now a billing {args.role}.")
    else:
        facts = tenancy.facts(args.workspace)
        print(f"accounts: {', '.join(a.name for a in facts.accounts) or '—'}; "
              f"default: {facts.default_account.name if facts.default_account else '—'}")
        for channel, account_id in sorted(facts.channel_links.items()):
            linked = facts.account(account_id)
            print(f"  channel {channel} → {linked.name if linked else account_id}")
        for member, role in sorted(facts.roles.items()):
            print(f"  member {member}: {role.value}")
    return 0


def register(sub: argparse._SubParsersAction[OneLineParser]) -> None:
    web = sub.add_parser("web", help="serve the Slack app over HTTP (/slack/events, /slack/install, /healthz)")
    web.add_argument("--host", default="0.0.0.0")
    web.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3001")))
    web.set_defaults(handler=cmd_web)
    sub.add_parser("socket", help="run the Slack app over Socket Mode (development)").set_defaults(handler=cmd_socket)
    worker = sub.add_parser("worker", help="run the alert scheduler (one leader; further workers stand by)")
    worker.add_argument("--once", action="store_true", help="evaluate the rules, deliver what is due, then exit")
    worker.set_defaults(handler=cmd_worker)
    sandbox = sub.add_parser("sandbox", help="the real bot against a local Slack in your browser (no Slack account)")
    sandbox.add_argument("--port", type=int, default=3000, help="where the local Slack listens (default 3000)")
    # SUPPRESS: without the option here, the global `billing-bot --database-url … sandbox` stays in effect.
    sandbox.add_argument("--database-url", default=argparse.SUPPRESS, help="overrides DATABASE_URL")
    sandbox.set_defaults(handler=cmd_sandbox)

    ws = sub.add_parser("workspace", help="which accounts a Slack workspace may see, channel links, roles")
    ws_sub = ws.add_subparsers(dest="ws_command", required=True, parser_class=OneLineParser)
    allow = ws_sub.add_parser("allow", help="let a workspace see an account")
    allow.add_argument("workspace")
    allow.add_argument("account")
    allow.add_argument("--default", action="store_true", help="the account used outside linked channels")
    link = ws_sub.add_parser("link", help="link a channel to an account")
    link.add_argument("workspace")
    link.add_argument("channel")
    link.add_argument("account")
    grant = ws_sub.add_parser("grant", help="grant a member a billing role")
    grant.add_argument("workspace")
    grant.add_argument("member")
    grant.add_argument("role", choices=[r.value for r in Role])
    show = ws_sub.add_parser("show", help="what a workspace may see")
    show.add_argument("workspace")
    for parser in (allow, link, grant, show):
        parser.set_defaults(handler=cmd_workspace)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    core_cli.extend(register)
    return core_cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
