"""`billing-bot import focus|stripe FILE… --account NAME`: file imports from the command line, and
`billing-bot import stripe --api-url URL --customer cus_… --account NAME [--since YYYY-MM-DD]`: one Stripe
customer's objects from a Stripe-compatible API, the secret key from $STRIPE_API_KEY (an argument would
show in `ps`).

Prints what each file (or the fetch) did (rows read, inserted, updated, unchanged, rejected — and every
rejected row with its line, column and reason), progress on stderr. Exit code 0 when everything was
imported, 1 when some rows or objects were rejected (the good ones are kept) or the API could not be
read (then nothing is imported), 2 for bad arguments (unknown account, missing file, files and --api-url
together, no key in the environment, bad option).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from billing_core import fmt
from billing_core.cli import EXIT_USAGE, OneLineParser, database, now
from billing_core.db.engine import Database
from billing_core.errors import NotFound
from billing_core.imports import FileReport, StripeReport, import_focus, import_stripe, import_stripe_api
from billing_core.results import IngestResult
from billing_core.service import Billing
from billing_core.sources.focus import COST_COLUMNS
from billing_core.sources.provider_api import ProviderError
from billing_core.sources.stripe_api import api_base

STRIPE_KEY_ENV = "STRIPE_API_KEY"


def register(sub: argparse._SubParsersAction[OneLineParser]) -> None:
    parser = sub.add_parser("import", help="import cost-and-usage (FOCUS) or Stripe files into an account")
    kinds = parser.add_subparsers(dest="import_kind", required=True, parser_class=OneLineParser)

    focus = kinds.add_parser("focus", help="FOCUS 1.x cost-and-usage files (CSV, plain or gzip, or Parquet) → usage")
    focus.add_argument("files", nargs="+", metavar="FILE", type=Path)
    focus.add_argument("--account", required=True, help="account name or id the costs belong to")
    focus.add_argument("--cost", choices=sorted(COST_COLUMNS), default="billed",
                       help="which FOCUS cost column is the cost (default: billed = BilledCost; all are kept)")
    focus.add_argument("--provider", help="provider for rows that name none (default: no provider)")
    focus.add_argument("--batch-rows", type=int, default=20_000, help="rows per transaction (default 20000)")
    focus.set_defaults(handler=cmd_import_focus)

    stripe = kinds.add_parser("stripe", help="Stripe invoice, charge, payment intent or event JSON (files, or "
                                             "fetched from a Stripe-compatible API) → invoices")
    stripe.add_argument("files", nargs="*", metavar="FILE", type=Path, help="Stripe JSON files (or --api-url)")
    stripe.add_argument("--account", required=True, help="account name or id the Stripe customer is")
    stripe.add_argument("--api-url", metavar="URL", help="fetch from this API instead of files, e.g. "
                                                         f"https://api.stripe.com (secret key from ${STRIPE_KEY_ENV})")
    stripe.add_argument("--customer", metavar="CUS_ID", help="with --api-url: the Stripe customer to fetch")
    stripe.add_argument("--since", type=_day, metavar="YYYY-MM-DD",
                        help="with --api-url: only objects created from this day on (the account's time zone)")
    stripe.set_defaults(handler=cmd_import_stripe)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a day like 2025-10-01") from None


def cmd_import_focus(args: argparse.Namespace) -> int:
    db = database(args)
    problem = _bad_arguments(args, db)
    if problem is None and args.batch_rows < 1:
        problem = "--batch-rows must be at least 1"
    if problem:
        return _usage_error(problem)
    progress = _Progress()
    reports = import_focus(db, args.account, args.files, now=now(), cost=args.cost, default_provider=args.provider,
                           batch_rows=args.batch_rows, progress=progress)
    progress.done()
    currency = Billing(db).account(args.account).currency
    for report in reports:
        _print_focus(report, currency, args.cost)
    if len(reports) > 1:
        total = sum((r.result for r in reports), IngestResult())
        print(f"All {len(reports)} files: {sum(r.rows + r.rejected for r in reports):,} rows read — "
              f"{_counts(total)}, {sum(r.rejected for r in reports):,} rejected; "
              f"cost {fmt.money(sum((r.cost for r in reports), Decimal(0)), currency)}")
    return 1 if any(r.rejected for r in reports) else 0


def cmd_import_stripe(args: argparse.Namespace) -> int:
    db = database(args)
    problem = _stripe_source_problem(args) or _bad_arguments(args, db)
    if problem:
        return _usage_error(problem)
    if args.api_url is not None:
        return _import_stripe_api(args, db)
    reports = import_stripe(db, args.account, args.files, now=now())
    for report in reports:
        _print_stripe(report)
    return 1 if any(r.rejections for r in reports) else 0


def _stripe_source_problem(args: argparse.Namespace) -> str | None:
    """Files, or the API with a customer and a key in the environment: what is wrong with the choice."""
    if args.api_url is None:
        if not args.files:
            return "give Stripe JSON files, or --api-url URL --customer cus_…"
        return "--customer and --since go with --api-url" if args.customer or args.since else None
    if args.files:
        return "give Stripe JSON files or --api-url, not both"
    if not args.customer:
        return "--api-url needs --customer cus_… (whose objects to fetch)"
    url = urlsplit(args.api_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        return "--api-url must be an http:// or https:// URL, e.g. https://api.stripe.com"
    if url.username or url.password:
        return f"put the secret key in ${STRIPE_KEY_ENV}, not in --api-url (a command line shows in `ps`)"
    if not os.environ.get(STRIPE_KEY_ENV):
        return f"set ${STRIPE_KEY_ENV} to the Stripe secret key (it is never taken on the command line)"
    return None


def _import_stripe_api(args: argparse.Namespace, db: Database) -> int:
    try:
        report = import_stripe_api(db, args.account, url=args.api_url, key=os.environ[STRIPE_KEY_ENV],
                                   customer=args.customer, since=args.since, now=now())
    except ProviderError as exc:
        print(f"billing-bot: Stripe API at {api_base(args.api_url)}: {exc.message}; nothing was imported",
              file=sys.stderr)
        return 1
    _print_stripe(report)
    return 1 if report.rejections else 0


def _bad_arguments(args: argparse.Namespace, db: Database) -> str | None:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        return f"no such file: {', '.join(missing)}"
    try:
        Billing(db).account(args.account)
    except NotFound as exc:
        return exc.message
    return None


def _usage_error(problem: str) -> int:
    print(f"billing-bot: {problem} (see `billing-bot import --help`)", file=sys.stderr)
    return EXIT_USAGE


def _counts(result: IngestResult) -> str:
    return f"{result.inserted:,} inserted, {result.updated:,} updated, {result.unchanged:,} unchanged"


def _print_focus(report: FileReport, currency: str, cost: str) -> None:
    span = f" charged {report.first_day} … {report.last_day}" if report.first_day else ""
    print(f"{report.path}: {report.rows + report.rejected:,} rows read — {_counts(report.result)}, "
          f"{report.rejected:,} rejected; cost {fmt.money(report.cost, currency)} ({COST_COLUMNS[cost]}){span}")
    for rejection in report.rejections:
        print(f"  rejected {rejection}")
    if report.rejected > len(report.rejections):
        print(f"  … and {report.rejected - len(report.rejections):,} more rejected rows")


def _print_stripe(report: StripeReport) -> None:
    print(f"{report.path}: invoices {_counts(report.invoices)}; payments {_counts(report.payments)}; "
          f"{len(report.rejections)} rejected, {report.skipped} other objects skipped")
    for rejection in report.rejections:
        print(f"  rejected {rejection}")


class _Progress:
    """Rows and bytes read so far, on stderr: redrawn in place on a terminal, every 10 s into a log."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._name = ""
        self._started = self._last = 0.0
        self._drawn = False

    def __call__(self, name: str, rows: int, done: int, size: int) -> None:
        moment = time.monotonic()
        if name != self._name:
            self.done()
            self._name, self._started, self._drawn = name, moment, False
        if not self._tty and moment - max(self._last, self._started) < 10:
            return  # a log file gets a line every 10 s of a long import, nothing for a quick one
        self._last = moment
        rate = rows / max(moment - self._started, 1e-6)
        line = (f"import {name}: {rows:,} rows, {done / max(size, 1):.0%} of {size / 1e6:,.1f} MB, "
                f"{rate:,.0f} rows/s")
        print(("\r" + line) if self._tty else line, end="" if self._tty else "\n", file=sys.stderr, flush=True)
        self._drawn = True

    def done(self) -> None:
        if self._tty and self._drawn:
            print(file=sys.stderr)
        self._drawn = False
