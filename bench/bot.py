"""Benchmark of the Slack side: acks under load, time to chart, invoice PDF, bulk PDF export — end to end.

The real `billing-bot web` process (waitress, real HTTP on 127.0.0.1) runs against the local fake Slack
(`bot.sandbox.fake_slack`) on the seeded demo ledger, on SQLite and on PostgreSQL, as in production but offline:

- ack latency: 50 signed slash commands sent at once (a mix of every read subcommand), time from sending to
  the HTTP ack, p50/p99 — and the time until every answer (messages, charts) reached Slack;
- time to chart: the 30-day cost trend and the usage stack rendered to PNG (median of 7 warm runs);
- invoice PDF: one invoice rendered with WeasyPrint, per page (median of 7 warm runs);
- bulk export: `/billing export invoices pdf` over 500 invoices, from the command to the ZIP in the thread,
  with the CPU time of the bot and its render processes divided by wall time (2.0 = both cores busy).

    python -m bench.bot [--only sqlite|postgresql] [--invoices 500] [--concurrent 50] [--acks-only]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from pypdf import PdfReader
from sqlalchemy import create_engine, text

import charts
from bench.core import PG_URL
from billing_core import exports
from billing_core.db.engine import Database
from billing_core.db.ingest import upsert_invoice
from billing_core.db.migrate import upgrade
from billing_core.demo import seed_demo
from billing_core.periods import last_days
from billing_core.records import InvoiceIn, LineIn
from billing_core.results import InvoiceStatus
from billing_core.service import Billing
from bot.sandbox import signing
from bot.sandbox.fake_slack import FakeSlack

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
    """`billing-bot web` in a process of its own (as in production), talking to the fake Slack in this one."""

    def __init__(self, database_url: str, fake: FakeSlack) -> None:
        self.fake = fake
        port = _free_port()
        env = {**os.environ, "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "xoxb-bench",
               "SLACK_API_URL": fake.url, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
        self.process = subprocess.Popen([sys.executable, "-m", "bot.cli", "web", "--host", "127.0.0.1",
                                         "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}/slack/events"
        self._wait_ready(f"http://127.0.0.1:{port}/healthz")

    def _wait_ready(self, health: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("billing-bot web did not start")

    def cpu_seconds(self) -> float:
        """CPU time of the bot's whole process tree from /proc: the web process, its forkserver and the render
        processes under it (alive for the web process's lifetime, so their time is not in its `cutime` yet)."""
        stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, own + reaped children's CPU seconds)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # exited while we looked
                stats[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK"))

        def in_tree(pid: int) -> bool:
            while pid > 1:
                if pid == self.process.pid:
                    return True
                pid = stats.get(pid, (0, 0.0))[0]
            return False

        return sum(cpu for pid, (_, cpu) in stats.items() if in_tree(pid))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

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


class RawBurst:
    """Slack's side of a burst: `n` keep-alive connections, each sending one pre-built signed request the moment
    a barrier lets them all go, timed from its first byte sent to the last byte of the ack read.

    Sockets and bytes, not httpx: Slack's servers do not share our two cores and our interpreter lock, and an
    HTTP client in Python under 50 threads spent more CPU building and parsing requests than the bot did acking
    them — the latency measured was largely the client's own queue for the lock.
    """

    def __init__(self, bot: Bot, n: int) -> None:
        host, port = bot.url.split("//", 1)[1].split("/", 1)[0].split(":")
        self.address = (host, int(port))
        self.sockets = [socket.create_connection(self.address) for _ in range(n)]

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()

    def run(self, bot: Bot, texts: list[str]) -> list[float]:
        requests = [self._request(bot, text) for text in texts]
        barrier = threading.Barrier(len(requests))
        took: list[float] = [0.0] * len(requests)

        def one(i: int) -> None:
            sock = self.sockets[i]
            barrier.wait()
            started = time.perf_counter()
            sock.sendall(requests[i])
            status = _read_response(sock)
            took[i] = time.perf_counter() - started
            assert status == 200, status

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(took)

    def _request(self, bot: Bot, text: str) -> bytes:
        body, headers = signing.slash_command_request(
            SECRET, text=text, channel_id="C_FINANCE",
            response_url=bot.fake.response_url(channel="C_FINANCE", user="U_ADMIN"),
            trigger_id=bot.fake.issue_trigger_id())
        lines = ["POST /slack/events HTTP/1.1", f"Host: {self.address[0]}:{self.address[1]}",
                 f"Content-Length: {len(body)}", "Connection: keep-alive",
                 *(f"{key}: {value}" for key, value in headers.items() if key.lower() != "content-length")]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _read_response(sock: socket.socket) -> int:
    """Read one HTTP/1.1 response (status line, headers, Content-Length body) off a keep-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the bot closed the connection")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the bot closed the connection")
        rest += chunk
    return int(lines[0].split()[1])


def ack_latency(bot: Bot, concurrent: int) -> tuple[float, float, float]:
    burst = RawBurst(bot, concurrent)
    try:
        # A first burst of the same mix warms what a running web process has warm: threads, database and HTTP
        # connections, each answer's first query plan, locale data and templates. Its answers are awaited first.
        mix = [COMMANDS[i % len(COMMANDS)] for i in range(concurrent)]
        burst.run(bot, mix)
        bot.answered(concurrent, 300)
        time.sleep(2)  # its charts and uploads finish too
        bot.fake.reset()
        started = time.perf_counter()
        acks = burst.run(bot, mix)
        bot.answered(concurrent, 300)
        all_answered = time.perf_counter() - started
    finally:
        burst.close()
    p99 = acks[min(len(acks) - 1, int(len(acks) * 0.99))]
    return statistics.median(acks) * 1000, p99 * 1000, all_answered


def bulk_export(bot: Bot, invoices: int) -> tuple[float, float, int]:
    bot.fake.reset()
    cpu_before = bot.cpu_seconds()
    started = time.perf_counter()
    with httpx.Client(timeout=30) as http:
        bot.command(http, "export invoices pdf")
    bot.fake.wait_for(lambda: any(f.filename == "invoices.zip" and f.channel for f in bot.fake.files()), 900,
                      "the ZIP of PDFs shared in the thread")
    wall = time.perf_counter() - started
    cpu = bot.cpu_seconds() - cpu_before
    [archive] = [f for f in bot.fake.files() if f.filename == "invoices.zip"]
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive.content or b"")) as zipped:
        count = len(zipped.namelist())
    return wall, cpu / wall, count


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(url: str, invoices: int, concurrent: int, acks_only: bool = False) -> dict[str, str]:
    """Every figure of the table for the database at `url` (or only the ack rows)."""
    now = datetime.now(UTC)
    db = Database(url)
    upgrade(db)
    with db.unit_of_work() as session:
        seed_demo(session, now=now)
    with FakeSlack() as fake:
        fake.rate_limit_per_channel = None  # measure the bot, not Slack's 1 message/s/channel
        bot = Bot(url, fake)
        p50, p99, answered = ack_latency(bot, concurrent)
        acks = {f"ack latency, {concurrent} concurrent slash commands": f"p50 {p50:.0f} ms, p99 {p99:.0f} ms",
                f"all {concurrent} answers (messages and charts) in Slack": f"{answered:.1f} s"}
        if acks_only:
            bot.stop()
            db.dispose()
            return acks
        billing = Billing(db)
        overview = billing.overview("acme-corp", now=now)
        usage = billing.usage("acme-corp", last_days(now.date(), 30), group_by="deployment")
        trend_ms = timed_ms(lambda: charts.cost_trend_png(overview.trend, currency="USD"))
        usage_ms = timed_ms(lambda: charts.usage_stacked_png(usage))
        detail = billing.invoice("acme-corp", "INV-0003", now=now)
        pages = len(PdfReader(io.BytesIO(exports.invoice_pdf(detail))).pages)
        pdf_ms = timed_ms(lambda: exports.invoice_pdf(detail)) / pages
        add_invoices(db, "acme-corp", invoices - 5, now)  # the demo account already has 5
        wall, cores, count = bulk_export(bot, invoices)
        bot.stop()
    db.dispose()
    return acks | {
        "time to chart, warm: 30-day cost trend / usage stack": f"{trend_ms:.0f} ms / {usage_ms:.0f} ms",
        "invoice PDF, warm, per page": f"{pdf_ms:.0f} ms ({pages} page{'s' if pages > 1 else ''})",
        f"bulk export: {count} invoices as PDFs in a ZIP": f"{wall:.1f} s, {cores:.2f} cores busy",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--invoices", type=int, default=500)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--acks-only", action="store_true", help="measure the ack latency only")
    args = parser.parse_args()
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(var, None)
    columns: dict[str, dict[str, str]] = {}
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            columns["SQLite"] = measure(f"sqlite:///{Path(tmp) / 'bench.db'}", args.invoices, args.concurrent,
                                         args.acks_only)
    if args.only != "sqlite":
        schema = f"bench_bot_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:  # the web process gets the schema through the URL, as any PostgreSQL option
            columns["PostgreSQL"] = measure(f"{PG_URL}?options=-csearch_path%3D{schema}", args.invoices,
                                            args.concurrent, args.acks_only)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    print()
    print("| | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for row in next(iter(columns.values())):
        print(f"| {row} | " + " | ".join(figures[row] for figures in columns.values()) + " |")


if __name__ == "__main__":
    main()
