"""`billing-bot provider …`, `billing-bot sync` and `billing-bot reconcile`: provider APIs from the command line.

- `provider add NAME URL --account ACCOUNT [--token-env VAR]` points the sync at a provider's API for an
  account (the provider is created when new); the bearer token is read from the environment variable
  VAR at sync time and never stored. `provider list` shows every endpoint and its sync state;
  `provider remove NAME --account ACCOUNT` stops syncing it (what was synced stays in the ledger).
- `sync [PROVIDER] [--full]` syncs now and prints one line per endpoint; exit 1 when any endpoint
  failed or only partly synced, so cron and CI notice.
- `reconcile [--account NAME] [--period YYYY-MM] [--tolerance PCT] [--csv FILE]` compares invoices with
  metered usage; exit 1 when a discrepancy exceeds the tolerance.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from billing_core.cli import OneLineParser, actor, database, now
from billing_core.db.queries import get_account
from billing_core.db.sync_models import add_endpoint, list_endpoints, remove_endpoint
from billing_core.periods import Period, month_period
from billing_core.reconcile import DEFAULT_TOLERANCE, Reconciliation, discrepancies_csv, exact, reconcile, summary_line
from billing_core.service import Billing
from billing_core.sources.sync import ProviderSyncStatus, SyncOptions, sync_all


def register(sub: argparse._SubParsersAction[OneLineParser]) -> None:
    provider = sub.add_parser("provider", help="provider API endpoints the sync reads")
    p_sub = provider.add_subparsers(dest="provider_command", required=True, parser_class=OneLineParser)
    add = p_sub.add_parser("add", help="sync an account's data from a provider's API")
    add.add_argument("name", help="provider name, e.g. 'Helios Compute'")
    add.add_argument("url", help="base URL of its API, e.g. https://api.helios.example")
    add.add_argument("--account", required=True, help="the billing account this API's data belongs to")
    add.add_argument("--token-env", help="environment variable holding the bearer token (never stored)")
    add.set_defaults(handler=cmd_provider_add)
    p_sub.add_parser("list", help="endpoints and their sync state").set_defaults(handler=cmd_provider_list)
    remove = p_sub.add_parser("remove", help="stop syncing a provider for an account")
    remove.add_argument("name")
    remove.add_argument("--account", required=True)
    remove.set_defaults(handler=cmd_provider_remove)

    sync = sub.add_parser("sync", help="fetch usage, invoices and payments from the provider APIs now")
    sync.add_argument("provider", nargs="?", help="only this provider (default: all)")
    sync.add_argument("--full", action="store_true", help="ignore the stored high-water marks and re-fetch")
    sync.set_defaults(handler=cmd_sync)

    rec = sub.add_parser("reconcile", help="compare provider invoices with metered usage")
    rec.add_argument("--account", help="account name or id (default: every account)")
    rec.add_argument("--period", type=_month, help="month as YYYY-MM (default: the last complete month)")
    rec.add_argument("--tolerance", type=_percent, default=DEFAULT_TOLERANCE,
                     help="allowed difference in percent (default 0.5)")
    rec.add_argument("--csv", type=Path, help="also write the discrepancies to this CSV file")
    rec.set_defaults(handler=cmd_reconcile)


def _month(text: str) -> Period:
    try:
        return month_period(date.fromisoformat(text + "-01"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a month like 2026-10") from None


def _percent(text: str) -> Decimal:
    try:
        value = Decimal(text.rstrip("%").strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a percentage like 0.5") from None
    if not value.is_finite() or not 0 <= value < 100:
        raise argparse.ArgumentTypeError("the tolerance is a percentage from 0 to 100")
    return value / 100


def cmd_provider_add(args: argparse.Namespace) -> int:
    db = database(args)
    with db.unit_of_work() as s:
        account = get_account(s, args.account)
        endpoint, created = add_endpoint(s, provider=args.name, base_url=args.url, token_env=args.token_env,
                                         account=account, now=now())
        name = account.name
    verb = "will now be synced" if created else "now points"
    print(f"Provider {args.name} for {name} {verb} at {endpoint.base_url}"
          + (f" (token from ${args.token_env})." if args.token_env else " (no token)."))
    return 0


def cmd_provider_list(args: argparse.Namespace) -> int:
    with database(args).unit_of_work() as s:
        rows = list_endpoints(s)
    if not rows:
        print("No provider API endpoints yet. Add one: billing-bot provider add NAME URL --account ACCOUNT "
              "--token-env VAR")
    for provider, account, e in rows:
        state = e.last_status or "never synced"
        if e.unreachable_since:
            state += f", unreachable since {_when(e.unreachable_since)} ({e.consecutive_failures} failed run(s)): " \
                     f"{e.last_error or ''}"
        elif e.last_success_at:
            state += f", last success {_when(e.last_success_at)}"
        print(f"{provider:<20} {account:<20} {e.base_url:<40} ${e.token_env or '-':<18} "
              f"{'' if e.enabled else '(disabled) '}{state}")
    return 0


def cmd_provider_remove(args: argparse.Namespace) -> int:
    with database(args).unit_of_work() as s:
        remove_endpoint(s, provider=args.name, account=get_account(s, args.account))
    print(f"Provider {args.name} is no longer synced for {args.account}; what was synced stays in the ledger.")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    statuses = sync_all(database(args), now(), provider=args.provider, options=SyncOptions(full=args.full))
    print(status_table(statuses))
    return 0 if all(s.ok for s in statuses) else 1


def status_table(statuses: list[ProviderSyncStatus]) -> str:
    if not statuses:
        return "No provider API endpoints to sync. Add one: billing-bot provider add NAME URL --account ACCOUNT"
    lines = [f"{'provider':<20} {'account':<18} {'status':<8} {'rows':>7} {'changed':>7} {'requests':>8} "
             f"{'time':>8}  detail"]
    for s in statuses:
        detail = s.reason or ""
        if s.unreachable_since:
            detail += f" — unreachable since {_when(s.unreachable_since)}"
        lines.append(f"{s.provider[:20]:<20} {s.account[:18]:<18} {s.status:<8} {s.rows:>7} {s.changed:>7} "
                     f"{s.requests:>8} {s.duration_s:>7.2f}s  {detail}".rstrip())
    return "\n".join(lines)


def cmd_reconcile(args: argparse.Namespace) -> int:
    db = database(args)
    refs = [args.account] if args.account else [a.id for a in Billing(db).accounts()]
    results = [reconcile(db, ref, args.period, actor=actor(), now=now(), tolerance=args.tolerance) for ref in refs]
    for r in results:
        print(report(r))
    if args.csv:
        args.csv.write_bytes(discrepancies_csv(results))
        print(f"Discrepancies written to {args.csv}.")
    return 0 if all(r.clean for r in results) else 1


def report(r: Reconciliation) -> str:
    lines = [summary_line(r)]
    for d in r.discrepancies:
        pct = f" ({d.difference_pct:+}%)" if d.difference_pct is not None else ""
        lines.append(f"  {d.kind.value:<17} {d.provider[:20]:<20} {d.meter[:24]:<24} billed {exact(d.billed.amount)} "
                     f"vs metered {exact(d.metered.amount)} {r.currency}{pct}")
    return "\n".join(lines)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
