"""Provider API sync against real local HTTP servers that are slow, fail, time out, rate-limit and paginate.

What a user would notice: healthy providers' figures are complete whatever the others do; the broken ones are
named with the reason and "unreachable since …" in the bot's answers; a second sync asks only for what is new
and stores nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from billing_core import cli
from billing_core.db.engine import Database
from billing_core.db.models import Invoice, UsageRecord
from billing_core.db.queries import get_account
from billing_core.db.sync_models import ProviderEndpoint, add_endpoint, remove_endpoint
from billing_core.errors import NotFound
from billing_core.periods import Granularity, custom_period
from billing_core.results import InvoiceQuery
from billing_core.service import Billing
from billing_core.sources.provider_api import ProviderClient, ProviderError, RetryPolicy, retry_after
from billing_core.sources.sync import ProviderSyncStatus, SyncOptions, sync_all
from bot.sandbox.fake_slack import FakeSlack
from bot.views.common import Reader
from bot.views.invoices import invoices_message
from bot.views.overview import home_view, overview_message
from bot.views.usage import usage_message
from tests import factories
from tests.fake_provider import Behaviour, FakeProvider, hourly_usage, invoice, payment, refused_url
from tests.slack_harness import BotHarness

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
FAST = RetryPolicy(timeout=0.5, attempts=3, backoff=0.05, max_backoff=0.2)
OPTIONS = SyncOptions(policy=FAST, deadline=30, env={"HELIOS_TOKEN": "s3cret"})
WEEK = custom_period(date(2026, 11, 16), date(2026, 11, 23))


def endpoints(db: Database, urls: dict[str, str], *, account: str = "acme", token_env: str | None = None) -> None:
    with db.unit_of_work() as s:
        acct = factories.account(s, account)
        for name, url in urls.items():
            add_endpoint(s, provider=name, base_url=url, token_env=token_env, account=acct, now=NOW)


def by_provider(statuses: list[ProviderSyncStatus]) -> dict[str, ProviderSyncStatus]:
    return {s.provider: s for s in statuses}


def healthy(prefix: str, hours: int = 25, *, page_size: int = 10, delay: float = 0.0, **kw: object) -> FakeProvider:
    provider = FakeProvider(Behaviour(page_size=page_size, delay=delay, **kw))  # type: ignore[arg-type]
    provider.usage = hourly_usage(prefix, datetime(2026, 11, 20, tzinfo=UTC), hours)
    provider.invoices = [invoice(f"{prefix}-inv-1", issued=date(2026, 11, 1)),
                         invoice(f"{prefix}-inv-2", issued=date(2026, 10, 1), amount="80.00")]
    provider.payments = [payment(f"{prefix}-pay-1", f"{prefix}-inv-2", "80.00",
                                 updated=datetime(2026, 10, 5, 9, tzinfo=UTC))]
    return provider


@pytest.fixture
def servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_healthy_providers_are_complete_and_the_broken_ones_are_named_with_since(
        db: Database, servers: ExitStack) -> None:
    fakes = {
        "Healthy": healthy("h"),
        "Slow": healthy("s", delay=0.15),
        "Flaky": healthy("f", fail_first=2),  # two 500s, then fine
        "Limited": healthy("l", rate_limit_first=1, retry_after="1"),  # one 429 with Retry-After
        "Hanging": FakeProvider(Behaviour(delay=3.0)),  # answers long after our 0.5 s timeout
    }
    for fake in fakes.values():
        servers.enter_context(fake)
    endpoints(db, {**{name: f.url for name, f in fakes.items()}, "Down": refused_url()})

    statuses = by_provider(sync_all(db, NOW, options=OPTIONS))

    assert {n: s.status for n, s in statuses.items()} == {
        "Healthy": "ok", "Slow": "ok", "Flaky": "ok", "Limited": "ok", "Hanging": "failed", "Down": "failed"}
    assert "cannot connect" in (statuses["Down"].reason or "")
    assert "no answer within 0.5 s" in (statuses["Hanging"].reason or "")
    assert statuses["Down"].unreachable_since == NOW and statuses["Healthy"].unreachable_since is None
    # Complete for the healthy: every usage row of every page, both invoices, the payment (25 + 2 + 1).
    for name in ("Healthy", "Slow", "Flaky", "Limited"):
        assert statuses[name].rows == 28 and statuses[name].changed == 28
    assert statuses["Flaky"].requests > statuses["Healthy"].requests  # the 500s were retried
    usage = Billing(db).usage("acme", WEEK, group_by="provider")
    assert {r.key: r.cost for r in usage.rows} == {n: Decimal("0.42") * 25 for n in ("Healthy", "Slow", "Flaky",
                                                                                      "Limited")}
    # Honest about the rest, in the bot's answers too.
    outages = Billing(db).provider_outages("acme")
    assert [(o.provider, o.since) for o in outages] == [("Down", NOW), ("Hanging", NOW)]
    reader = Reader()
    shown = json.dumps(usage_message(usage, reader, asked=Granularity.DAY, staleness=outages))
    assert "provider Down unreachable since" in shown and "figures may be incomplete" in shown
    overview = Billing(db).overview("acme", now=NOW)
    assert "provider Hanging unreachable since" in json.dumps(overview_message(overview, reader, staleness=outages))
    assert "provider Down unreachable" not in json.dumps(overview_message(overview, reader))
    home = home_view(overview, reader, chart_file_id=None, staleness=outages)
    assert "provider Down unreachable since" in json.dumps(home)


def test_providers_are_synced_at_the_same_time_not_one_after_another(db: Database, servers: ExitStack) -> None:
    """Each provider answers its first request only once all three have been asked: a sync that waited for one
    provider before asking the next would get 503s from every one of them."""
    meeting = threading.Barrier(3)
    fakes = {name: servers.enter_context(healthy(name[0].lower(), rendezvous=meeting)) for name in ("Alpha", "Beta",
                                                                                                  "Gamma")}
    endpoints(db, {name: f.url for name, f in fakes.items()})
    patient = replace(OPTIONS, policy=RetryPolicy(timeout=5, attempts=1))

    statuses = by_provider(sync_all(db, NOW, options=patient))

    assert not meeting.broken
    assert {n: (s.status, s.rows) for n, s in statuses.items()} == dict.fromkeys(fakes, ("ok", 28))


def test_incremental_sync_asks_only_for_what_is_new_and_a_resync_changes_nothing(
        db: Database, servers: ExitStack) -> None:
    fake = servers.enter_context(healthy("h", hours=30))
    endpoints(db, {"Helios": fake.url})
    [first] = sync_all(db, NOW, options=OPTIONS)
    assert first.ok and first.changed == 33

    fake.forget_requests()
    later = NOW + timedelta(hours=2)
    [second] = sync_all(db, later, options=OPTIONS)
    assert second.ok and second.changed == 0
    assert fake.queries("/api/v1/usage") == [{"start": "2026-11-23T12:00:00Z", "end": "2026-11-23T14:00:00Z",
                                              "granularity": "hour"}]
    assert fake.queries("/api/v1/invoices") == [{"start": "2026-11-01"}, {"status": "open"}]
    assert fake.queries("/api/v1/payments") == [{"updated_since": "2026-10-05T09:00:00Z"}]

    # New usage in the window, a payment of the open invoice: exactly those arrive.
    fake.usage += hourly_usage("h-new", datetime(2026, 11, 23, 14, tzinfo=UTC), 2, cost="1.50")
    fake.payments.append(payment("h-pay-2", "h-inv-1", "100.00", updated=datetime(2026, 11, 23, 15, tzinfo=UTC)))
    [third] = sync_all(db, later + timedelta(hours=3), options=OPTIONS)
    assert third.ok and third.changed == 3
    with db.unit_of_work() as s:
        assert s.scalar(select(Invoice.status).where(Invoice.external_id == "h-inv-1")) == "paid"
    total = Billing(db).usage("acme", custom_period(date(2026, 11, 16), date(2026, 11, 24))).total_cost
    assert total == Decimal("0.42") * 30 + Decimal("3.00")

    # A full re-sync fetches everything again and changes nothing: a paid invoice stays paid.
    [full] = sync_all(db, later + timedelta(hours=3), options=SyncOptions(policy=FAST, full=True))
    assert full.ok and full.rows == 36 and full.changed == 0
    with db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(UsageRecord)) == 32


def test_an_outage_keeps_its_first_moment_until_a_sync_succeeds(db: Database, servers: ExitStack) -> None:
    fake = servers.enter_context(healthy("h", always_fail=True))
    endpoints(db, {"Helios": fake.url})
    [first] = sync_all(db, NOW, options=OPTIONS)
    assert first.status == "failed" and "HTTP 500" in (first.reason or "")
    [again] = sync_all(db, NOW + timedelta(hours=1), options=OPTIONS)
    [outage] = Billing(db).provider_outages("acme")
    assert outage.since == NOW and outage.consecutive_failures == 2 and "HTTP 500" in (outage.last_error or "")
    page = Billing(db).invoices("acme", InvoiceQuery(), now=NOW)
    assert "provider Helios unreachable since" in json.dumps(
        invoices_message(page, Reader(), account_id=1, staleness=[outage]))

    fake.behaviour.always_fail = False
    [ok] = sync_all(db, NOW + timedelta(hours=2), options=OPTIONS)
    assert ok.ok and again.unreachable_since == NOW
    assert Billing(db).provider_outages("acme") == []
    with db.unit_of_work() as s:
        endpoint = s.scalar(select(ProviderEndpoint))
        assert endpoint is not None and endpoint.consecutive_failures == 0
        assert endpoint.last_success_at == NOW + timedelta(hours=2)


def test_malformed_data_is_refused_by_item_and_field_and_the_rest_still_lands(
        db: Database, servers: ExitStack) -> None:
    fake = healthy("h")
    fake.usage[3]["cost"] = 0.1  # a JSON number: money must be a decimal string
    servers.enter_context(fake)
    endpoints(db, {"Helios": fake.url})
    [status] = sync_all(db, NOW, options=OPTIONS)
    assert status.status == "partial"
    assert status.reason == "usage: usage 'h-cpu-3': `cost` must be a decimal string like \"12.50\", not Decimal"
    assert dict(status.resources) == {"usage": status.reason, "invoices": "ok", "payments": "ok"}
    with db.unit_of_work() as s:  # nothing of the bad batch, all of the good ones
        assert s.scalar(select(func.count()).select_from(UsageRecord)) == 0
        assert s.scalar(select(func.count()).select_from(Invoice)) == 2
    [outage] = Billing(db).provider_outages("acme")
    assert outage.status == "partial"


def test_tokens_come_from_the_environment_and_a_refused_one_is_said_plainly(
        db: Database, servers: ExitStack) -> None:
    fake = servers.enter_context(healthy("h", token="s3cret"))
    endpoints(db, {"Helios": fake.url}, token_env="HELIOS_TOKEN")
    [ok] = sync_all(db, NOW, options=OPTIONS)
    assert ok.ok and ok.rows == 28
    [unset] = sync_all(db, NOW, options=SyncOptions(policy=FAST, env={}))
    assert unset.status == "failed" and unset.requests == 0
    assert unset.reason == "the environment variable HELIOS_TOKEN (its API token) is not set"
    [wrong] = sync_all(db, NOW + timedelta(hours=1), options=SyncOptions(policy=FAST, env={"HELIOS_TOKEN": "no"}))
    assert wrong.status == "failed" and wrong.requests == 1  # a refused token is not retried, nor asked again
    assert wrong.reason == "usage: the API token was refused (HTTP 401)"


def test_a_payment_of_an_invoice_not_listed_fetches_that_invoice_by_id(db: Database, servers: ExitStack) -> None:
    fake = healthy("h")
    fake.hidden_invoices = [invoice("h-inv-old", issued=date(2026, 9, 1), amount="55.00")]
    fake.payments.append(payment("h-pay-old", "h-inv-old", "55.00", updated=datetime(2026, 9, 9, tzinfo=UTC)))
    servers.enter_context(fake)
    endpoints(db, {"Helios": fake.url})
    [status] = sync_all(db, NOW, options=OPTIONS)
    assert status.ok
    assert "/api/v1/invoices/h-inv-old" in fake.paths()
    with db.unit_of_work() as s:
        assert s.scalar(select(Invoice.status).where(Invoice.external_id == "h-inv-old")) == "paid"


def test_one_provider_can_be_synced_alone_and_an_unknown_one_is_explained(db: Database, servers: ExitStack) -> None:
    a, b = servers.enter_context(healthy("a")), servers.enter_context(healthy("b"))
    endpoints(db, {"Alpha": a.url, "Beta": b.url})
    assert [s.provider for s in sync_all(db, NOW, provider="beta", options=OPTIONS)] == ["Beta"]
    assert a.paths() == []
    with pytest.raises(NotFound, match="No provider 'Gamma'"):
        sync_all(db, NOW, provider="Gamma", options=OPTIONS)


def test_cli_adds_lists_and_syncs_with_a_status_table(
        db: Database, db_url: str, servers: ExitStack, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fake = servers.enter_context(healthy("h"))
    with db.unit_of_work() as s:
        factories.account(s, "acme")
    url = ["--database-url", db_url]
    assert cli.main([*url, "provider", "add", "Helios", fake.url, "--account", "acme"]) == 0
    assert cli.main([*url, "provider", "add", "Down", refused_url(), "--account", "acme"]) == 0
    assert cli.main([*url, "sync"]) == 1  # one provider failed → exit 1
    out = capsys.readouterr().out
    helios = next(line for line in out.splitlines() if line.startswith("Helios"))
    down = next(line for line in out.splitlines() if line.startswith("Down"))
    assert " ok " in helios and " 28 " in helios
    assert " failed " in down and "cannot connect" in down and "unreachable since" in down
    assert cli.main([*url, "sync", "Helios"]) == 0
    assert cli.main([*url, "provider", "list"]) == 0
    listing = capsys.readouterr().out
    assert "Down" in listing and "unreachable since" in listing
    with pytest.raises(SystemExit) as bad:
        cli.main([*url, "provider", "add", "Helios"])
    assert bad.value.code == 2
    assert cli.main([*url, "provider", "add", "Helios", "ftp://x", "--account", "acme"]) == 2  # a bad argument
    assert "must start with http" in capsys.readouterr().err
    with db.unit_of_work() as s:
        assert get_account(s, "acme").name == "acme"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("3", now=NOW) == 3.0
    assert retry_after("Mon, 23 Nov 2026 12:30:05 GMT", now=NOW) == 5.0
    assert retry_after(None, now=NOW) == 1.0 and retry_after("soon", now=NOW) == 1.0


def test_a_provider_slower_than_its_deadline_is_cut_off_and_the_others_finish(
        db: Database, servers: ExitStack) -> None:
    crawling = servers.enter_context(healthy("c", hours=60, page_size=5, delay=0.2))  # 12 pages of usage alone
    quick = servers.enter_context(healthy("q"))
    endpoints(db, {"Crawling": crawling.url, "Quick": quick.url})
    statuses = by_provider(sync_all(db, NOW, options=replace(OPTIONS, deadline=1.0)))
    assert statuses["Quick"].ok and statuses["Quick"].rows == 28
    assert statuses["Crawling"].status == "failed"
    assert statuses["Crawling"].reason == "gave up after 1 s (deadline)"


def test_the_bot_says_which_provider_is_unreachable_in_usage_and_overview(bot: BotHarness) -> None:
    """End to end on the demo ledger: an endpoint of acme-corp that cannot be reached shows in the answers."""
    with bot.db.unit_of_work() as s:
        acme = get_account(s, "acme-corp")
        add_endpoint(s, provider="Offline Cloud", base_url=refused_url(), token_env=None, account=acme,
                     now=bot.deps.clock())
    try:
        [status] = sync_all(bot.db, bot.deps.clock(), provider="Offline Cloud", options=OPTIONS)
        assert status.status == "failed"
        for command in ("usage month", "overview", "invoices"):
            bot.command(command)
            bot.settle()
            shown = json.dumps(bot.fake.messages("C_FINANCE")[-1].blocks, ensure_ascii=False)
            assert "provider Offline Cloud unreachable since" in shown, command
            assert "figures may be incomplete" in shown
    finally:  # the PostgreSQL demo schema is shared by the session's tests
        with bot.db.unit_of_work() as s:
            remove_endpoint(s, provider="Offline Cloud", account=get_account(s, "acme-corp"))


def client_against(handler: Callable[[httpx.Request], httpx.Response]) -> Callable[..., object]:
    """Run one ProviderClient call against an in-process transport (protocol edge cases, no server needed)."""
    def call(method: str, **kwargs: object) -> object:
        async def go() -> object:
            async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
                client = ProviderClient(http, "http://provider.test", "t", policy=FAST)
                return await getattr(client, method)(**kwargs)
        return asyncio.run(go())
    return call


def test_protocol_edge_cases_fail_with_a_reason_instead_of_looping_or_waiting() -> None:
    looping = client_against(lambda r: httpx.Response(200, json={"data": [], "next_cursor": "same"}))
    with pytest.raises(ProviderError, match="repeats itself"):
        looping("payments")
    patient = client_against(lambda r: httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(ProviderError, match=r"rate limited \(HTTP 429, Retry-After 3600 s\)"):
        patient("payments")
    html = client_against(lambda r: httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(ProviderError, match="not JSON"):
        html("payments")
    seen: list[str] = []
    odd_id = client_against(lambda r: (seen.append(r.url.raw_path.decode()), httpx.Response(200, json={}))[1])
    odd_id("invoice", invoice_id="in/../../admin?x=1")
    assert seen == ["/api/v1/invoices/in%2F..%2F..%2Fadmin%3Fx%3D1"]


def test_worker_once_syncs_the_providers_before_it_evaluates(db: Database, db_url: str, servers: ExitStack) -> None:
    """`billing-bot worker --once` from cron: the providers' new usage is in the ledger when it exits."""
    fake = servers.enter_context(healthy("h"))
    endpoints(db, {"Helios": fake.url})
    slack = servers.enter_context(FakeSlack())
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack.url}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "--database-url", db_url, "worker", "--once"], env=env,
                          capture_output=True, text=True, timeout=120, check=False, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert "/api/v1/usage" in fake.paths()
    with db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(UsageRecord)) == 25
