"""Benchmark of the Slack side: acks under load, time to chart, invoice PDF, bulk PDF export — end to end.

The real `billing-bot web` app (waitress, real HTTP on 127.0.0.1) runs against the local fake Slack
(`bot.sandbox.fake_slack`) on the seeded demo ledger, as in production but offline:

- ack latency: 50 signed slash commands sent at once (a mix of every read subcommand), time from sending to
  the HTTP ack, p50/p99 — and the time until every answer (messages, charts) reached Slack;
- time to chart: the 30-day cost trend and the usage stack rendered to PNG (median of 7 warm runs);
- invoice PDF: one invoice rendered with WeasyPrint, per page (median of 7 warm runs);
- bulk export: `/billing export invoices pdf` over 500 invoices, from the command to the ZIP in the thread,
  with the CPU time of the bot and its render processes divided by wall time (2.0 = both cores busy).

    python -m bench.bot [--database-url URL] [--invoices 500] [--concurrent 50]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import waitress
from pypdf import PdfReader

import charts
from billing_core import exports
from billing_core.db.engine import Database
from billing_core.db.ingest import upsert_invoice
from billing_core.db.migrate import upgrade
from billing_core.demo import seed_demo
from billing_core.periods import last_days
from billing_core.records import InvoiceIn, LineIn
from billing_core.results import InvoiceStatus
from bot.app import build_app
from bot.config import Settings
from bot.deps import Deps
from bot.sandbox import signing
from bot.sandbox.fake_slack import FakeSlack
from bot.web import wsgi_app

SECRET = "bench-signing-secret"
COMMANDS = ["invoices overdue", "invoices", "invoice INV-0003", "payments last 90 days", "budget", "help",
            "usage month by provider", "forecast", "", "usage last 7 days by deployment hourly"]


def timed_ms(fn: Callable[[], object], repeat: int = 7) -> float:
    fn()  # warm: fonts, templates, matplotlib caches
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def add_invoices(db: Database, account: str, count: int, now: datetime) -> None:
    """`count` monthly-style invoices with three lines each, as a provider would send them."""
    from billing_core.service import Billing

    account_id = Billing(db).account(account).id
    today = now.date()
    with db.unit_of_work() as session:
        for i in range(count):
            issued = today - timedelta(days=i + 1)
            lines = tuple(LineIn(f"{meter} usage", Decimal(100 + i % 37), unit, Decimal("0.0425"),
                                 Decimal(100 + i % 37) * Decimal("0.0425"), meter)
                          for meter, unit in (("cpu", "vCPU-h"), ("memory", "GB-h"), ("storage", "GB-mo")))
            upsert_invoice(session, InvoiceIn(
                account_id=account_id, source="bench", external_id=f"bulk-{i}", status=InvoiceStatus.PAID,
                issue_date=issued, due_date=issued + timedelta(days=30), period_start=date(issued.year, 1, 1),
                period_end=issued, currency="USD", lines=lines, tax=Decimal("1.25")), now=now)


class Bot:
    """The web app on waitress against the fake Slack."""

    def __init__(self, db: Database, fake: FakeSlack) -> None:
        self.fake = fake
        settings = Settings(signing_secret=SECRET, bot_token="xoxb-bench", api_url=fake.url)
        self.deps = Deps.build(settings, db=db)
        self.server = waitress.create_server(wsgi_app(build_app(settings, self.deps), self.deps),
                                             host="127.0.0.1", port=0, threads=16)
        self.url = f"http://127.0.0.1:{self.server.effective_port}/slack/events"
        threading.Thread(target=self.server.run, daemon=True).start()

    def command(self, http: httpx.Client, text: str, channel: str = "C_FINANCE") -> float:
        """Send `/billing text`; the seconds until the HTTP ack."""
        body, headers = signing.slash_command_request(
            SECRET, text=text, channel_id=channel, response_url=self.fake.response_url(channel=channel, user="U_ADMIN"),
            trigger_id=self.fake.issue_trigger_id())
        started = time.perf_counter()
        response = http.post(self.url, content=body, headers=headers)
        took = time.perf_counter() - started
        assert response.status_code == 200, response.text
        return took

    def answered(self, n: int, timeout: float) -> None:
        self.fake.wait_for(lambda: len(self.fake.calls("chat.postMessage")) + len(self.fake.calls("response_url"))
                           >= n, timeout, f"{n} answers")


def ack_latency(bot: Bot, concurrent: int) -> tuple[float, float, float]:
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=concurrent)) as http:
        bot.command(http, "help")  # warm the connection pool, users.info cache and the app
        bot.answered(1, 30)
        bot.fake.reset()
        barrier = threading.Barrier(concurrent)

        def one(i: int) -> float:
            barrier.wait()
            return bot.command(http, COMMANDS[i % len(COMMANDS)])

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrent) as pool:
            acks = sorted(pool.map(one, range(concurrent)))
        bot.answered(concurrent, 300)
        all_answered = time.perf_counter() - started
    p99 = acks[min(len(acks) - 1, int(len(acks) * 0.99))]
    return statistics.median(acks) * 1000, p99 * 1000, all_answered


def bulk_export(bot: Bot, invoices: int) -> tuple[float, float, int]:
    bot.fake.reset()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    with httpx.Client(timeout=30) as http:
        bot.command(http, "export invoices pdf")
    bot.fake.wait_for(lambda: any(f.filename == "invoices.zip" and f.channel for f in bot.fake.files()), 900,
                      "the ZIP of PDFs shared in the thread")
    wall = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    [archive] = [f for f in bot.fake.files() if f.filename == "invoices.zip"]
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive.content or b"")) as zipped:
        count = len(zipped.namelist())
    return wall, cpu / wall, count


def _cpu_seconds() -> float:
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary folder")
    parser.add_argument("--invoices", type=int, default=500)
    parser.add_argument("--concurrent", type=int, default=50)
    args = parser.parse_args()
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(var, None)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        now = datetime.now(UTC)
        upgrade(db)
        with db.unit_of_work() as session:
            seed_demo(session, now=now)
        with FakeSlack() as fake:
            fake.rate_limit_per_channel = None  # measure the bot, not Slack's 1 message/s/channel
            bot = Bot(db, fake)
            p50, p99, answered = ack_latency(bot, args.concurrent)
            billing = bot.deps.billing
            overview = billing.overview("acme-corp", now=now)
            usage = billing.usage("acme-corp", last_days(now.date(), 30), group_by="deployment")
            trend_ms = timed_ms(lambda: charts.cost_trend_png(overview.trend, currency="USD"))
            usage_ms = timed_ms(lambda: charts.usage_stacked_png(usage))
            detail = billing.invoice("acme-corp", "INV-0003", now=now)
            pages = len(PdfReader(io.BytesIO(exports.invoice_pdf(detail))).pages)
            pdf_ms = timed_ms(lambda: exports.invoice_pdf(detail)) / pages
            add_invoices(db, "acme-corp", args.invoices - 5, now)  # the demo account already has 5
            wall, cores, count = bulk_export(bot, args.invoices)
    print()
    print(f"| database | {db.engine.dialect.name} |")
    print("|---|---:|")
    print(f"| ack latency, {args.concurrent} concurrent slash commands | p50 {p50:.0f} ms, p99 {p99:.0f} ms |")
    print(f"| all {args.concurrent} answers (messages and charts) in Slack | {answered:.1f} s |")
    print(f"| time to chart, warm: 30-day cost trend / usage stack | {trend_ms:.0f} ms / {usage_ms:.0f} ms |")
    print(f"| invoice PDF, warm, per page | {pdf_ms:.0f} ms ({pages} page{'s' if pages > 1 else ''}) |")
    print(f"| bulk export: {count} invoices as PDFs in a ZIP | {wall:.1f} s, {cores:.2f} cores busy |")


if __name__ == "__main__":
    main()
