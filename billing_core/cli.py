"""`billing-bot`: the command line. Reads the wall clock and the environment; everything else is passed in.

Bad arguments print one line and exit 2; a failed command leaves nothing half-written (each runs in
one unit of work). Slack-facing commands (web, socket, worker, sandbox) are added through `extend` by
`bot.cli`, whose `main` is the installed `billing-bot` script; the core never imports the bot.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import NoReturn

from billing_core import fmt, invoicing
from billing_core.db.engine import Database
from billing_core.db.migrate import current_revision, upgrade
from billing_core.errors import BillingError, InvalidInput, NotFound
from billing_core.service import Billing

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"billing-bot: {message} (see `billing-bot --help`)\n")


Handler = Callable[[argparse.Namespace], int]
_EXTENSIONS: list[Callable[[argparse._SubParsersAction[OneLineParser]], None]] = []


def extend(register: Callable[[argparse._SubParsersAction[OneLineParser]], None]) -> None:
    """Let other packages (the bot) add subcommands without the core importing them."""
    _EXTENSIONS.append(register)


def now() -> datetime:
    return datetime.now(UTC)


def actor() -> str:
    """Who made a change from the command line, as the audit log records it."""
    return f"cli:{os.environ.get('USER', 'operator')}"


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="billing-bot", description="Billing chat-ops bot: ledger, reports and Slack app.")
    parser.add_argument("--database-url", help="overrides DATABASE_URL (default: SQLite under ./var/)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, parser_class=OneLineParser)
    db_sub.add_parser("upgrade", help="apply Alembic migrations").set_defaults(handler=cmd_db_upgrade)
    db_sub.add_parser("current", help="show the schema revision").set_defaults(handler=cmd_db_current)

    seed = sub.add_parser("seed", help="load data")
    seed.add_argument("--demo", action="store_true", required=True, help="deterministic demo data relative to today")
    seed.set_defaults(handler=cmd_seed)

    accounts = sub.add_parser("accounts", help="list billing accounts (`accounts add` creates one)")
    accounts.set_defaults(handler=cmd_accounts)
    add = accounts.add_subparsers(dest="accounts_command", parser_class=OneLineParser).add_parser(
        "add", help="create a billing account: imports, provider syncs and workspaces then take its name")
    add.add_argument("name", help="unique name, e.g. acme-corp")
    add.add_argument("--currency", required=True, help="ISO 4217 code (USD, EUR, JPY…) or a token such as USDC")
    add.add_argument("--timezone", required=True, help="IANA zone of its days and months, e.g. Europe/Berlin")
    add.add_argument("--email", help="billing e-mail address")
    add.add_argument("--credit", default="0", help="credit balance, e.g. 250.00 (default 0)")
    add.set_defaults(handler=cmd_accounts_add)

    report = sub.add_parser("report", help="overview numbers of one account (read-only)")
    report.add_argument("account", help="account name or id")
    report.set_defaults(handler=cmd_report)

    backtest = sub.add_parser("backtest", help="month-end projection error vs the naive run-rate")
    backtest.add_argument("account", nargs="?", help="account name or id (default: all)")
    backtest.set_defaults(handler=cmd_backtest)

    demo = sub.add_parser("demo", help="migrate, seed the demo data if empty, and print every account's report")
    demo.set_defaults(handler=cmd_demo)
    from billing_core.sources import sync_cli  # here, not at the top: sync_cli uses this module's helpers
    sync_cli.register(sub)
    from billing_core.sources import cli as import_cli  # here, not at the top: it uses this module's helpers

    import_cli.register(sub)
    for register in _EXTENSIONS:
        register(sub)
    return parser


def database(args: argparse.Namespace) -> Database:
    return Database(args.database_url)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    db = database(args)
    upgrade(db)
    print(f"Database at {_safe_url(db.url)} is at revision {current_revision(db)}.")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    print(current_revision(database(args)) or "empty (run `billing-bot db upgrade`)")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from billing_core.demo import seed_demo

    db = database(args)
    started = time.perf_counter()
    with db.unit_of_work() as session:
        report = seed_demo(session, now=now())
    took = time.perf_counter() - started
    u = report.usage
    print(f"Demo data: {report.accounts} accounts, usage rows {u.inserted:,} new / {u.updated:,} updated / "
          f"{u.unchanged:,} unchanged, {report.invoices} invoices, {report.payments} payments, "
          f"{report.budgets} budgets in {took:.1f} s.")
    return 0


def cmd_accounts(args: argparse.Namespace) -> int:
    accounts = Billing(database(args)).accounts()
    if not accounts:
        print("No accounts yet. Create one with `billing-bot accounts add NAME --currency USD --timezone "
              "America/New_York`, or try the demo: `billing-bot seed --demo`.")
    for a in accounts:
        print(f"{a.id:>4}  {a.name:<24} {a.currency:<5} {a.timezone:<22} {a.status}")
    return 0


def cmd_accounts_add(args: argparse.Namespace) -> int:
    account = Billing(database(args)).add_account(
        args.name, currency=args.currency, timezone=args.timezone, email=args.email, credit=args.credit,
        actor=actor(), now=now())
    print(f"Account {account.name} (id {account.id}) created: {account.currency}, {account.timezone}. "
          f"Next: `billing-bot import focus FILE --account {account.name}` or `billing-bot provider add …`.")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    print(render_report(Billing(database(args)), args.account, now()))
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    billing = Billing(database(args))
    names = [args.account] if args.account else [a.name for a in billing.accounts()]
    results = {name: billing.backtest(name, now=now()) for name in names}  # an unknown account fails first
    print(f"{'account':<18} {'day':>4} {'months':>6} {'MAPE model':>11} {'MAPE run-rate':>14}")
    for name, rows in results.items():
        if not rows:
            print(f"{name:<18} not enough history: a backtest needs a complete month after two weeks of usage")
        for row in rows:
            print(f"{name:<18} {row.checkpoint_day:>4} {row.months:>6} {row.mape_model:>10.2f}% "
                  f"{row.mape_naive:>13.2f}%")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    cmd_db_upgrade(args)
    billing = Billing(database(args))
    if not billing.accounts():
        cmd_seed(args)
    for account in billing.accounts():
        print()
        print(render_report(billing, account.name, now()))
    return 0


def render_report(billing: Billing, ref: str, at: datetime) -> str:
    o = billing.overview(ref, now=at)
    cur = o.account.currency

    def m(x: object) -> str:
        from decimal import Decimal

        assert isinstance(x, Decimal)
        return fmt.money(x, cur)

    p = o.projection
    lines = [
        f"{o.account.name} — {o.month.label} ({o.account.timezone}, {cur})",
        f"  Cost to date          {m(o.cost_to_date)}",
        f"  Projected month end   {m(p.projected_total)}  (80 %: {m(p.low)} – {m(p.high)}; "
        f"{p.trend.value}{_pct(p.change_pct)} vs {m(p.previous_period_total)} last month)",
        f"  Next month estimate   {m(p.next_period_estimate)}",
        f"  Outstanding           {m(o.balance.outstanding)} in {o.balance.open_count} open invoice(s)"
        + (f"  ⚠ {m(o.balance.overdue)} OVERDUE ({o.balance.overdue_count})" if o.balance.overdue_count else ""),
        f"  Credit balance        {m(o.account.credit_balance)}",
        f"  Active deployments    {', '.join(d.name for d in o.deployments) or '—'}",
    ]
    for meter in o.plan:
        lines.append(f"  Plan {meter.meter:<16} {fmt.quantity(meter.used, meter.unit)} of "
                     f"{fmt.quantity(meter.included, meter.unit)} ({fmt.percent(meter.used_share)})"
                     + (f", overage {m(meter.overage_cost)}" if meter.overage_cost else ""))
    for b in o.budgets:
        lines.append(f"  Budget {b.name:<14} {m(b.spent)} of {m(b.amount)} ({b.used_pct:.0f} %, {b.scope})")
    lines.append("  Recent invoices:")
    for inv in o.recent_invoices:
        owed = m(inv.amount_due) if invoicing.is_owed(inv.status) else "—"
        lines.append(f"    {inv.number:<10} {inv.status.value:<9} issued {inv.issue_date}  due {inv.due_date}  "
                     f"total {m(inv.total):>14}  due now {owed:>14}")
    return "\n".join(lines)


def _pct(value: object) -> str:
    return f" {value:+}%" if value is not None else ""


def _safe_url(url: str) -> str:
    """The URL without its password, for printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except BillingError as exc:
        print(f"billing-bot: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        # A bad argument (an unknown account, a malformed value) is a usage error, as argparse's own are.
        return EXIT_USAGE if isinstance(exc, InvalidInput | NotFound) else 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
