"""Stripe import from a Stripe-compatible API, against a real local HTTP server speaking Stripe's list endpoints.

What a user would notice: every page of every list lands (invoices, lines, payments, exact amounts from minor
units, statuses mapped) as the file import would land them; a rate limit or a server error on the way only
slows the import down; a refused key, a server that keeps failing, or one that ignores the customer filter
says why in one line and leaves the ledger as it was; a second import changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from billing_core import cli
from billing_core.db.engine import Database
from billing_core.db.models import AuditEntry, Invoice, Payment
from billing_core.imports import StripeReport, import_stripe_api
from billing_core.results import InvoiceStatus, PaymentQuery, PaymentStatus
from billing_core.service import Billing
from billing_core.sources.provider_api import ProviderError, RetryPolicy
from billing_core.sources.stripe_api import StripeClient
from tests import factories
from tests.fake_provider import Behaviour, FakeStripe, refused_url

DATA = Path(__file__).parent / "data" / "stripe"
NOW = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)
KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
ACME, TOKYO = "cus_Qx8acme01", "cus_Tokyo01"
FAST = RetryPolicy(timeout=2, attempts=3, backoff=0.05, max_backoff=0.2)
Json = dict[str, Any]


def _load(name: str) -> list[Json]:
    document = json.loads((DATA / name).read_text())
    if isinstance(document, dict):
        return list(document["data"]) if document.get("object") == "list" else [document]
    return list(document)


def stripe_lists() -> dict[str, list[Json]]:
    """The objects of tests/data/stripe as Stripe's API would list them: acme's, and one yen customer's."""
    yen_invoice, yen_charge = _load("jpy.json")
    yen_charge = {**yen_charge, "customer": TOKYO}  # the file's charge names acme; Stripe's would name its payer
    return {"invoices": [*_load("invoices_list.json"), yen_invoice],
            "charges": [*_load("charges.json"), yen_charge],
            "payment_intents": _load("payment_intent.json")}


@pytest.fixture
def servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture
def serve(servers: ExitStack) -> Callable[..., FakeStripe]:
    """A running fake Stripe API holding `stripe_lists()`; keyword arguments set its misbehaviour."""
    def start(*, ignore_customer: bool = False, broken: frozenset[str] = frozenset(), **behaviour: Any) -> FakeStripe:
        fake = FakeStripe(Behaviour(**{"token": KEY, "page_size": 2, **behaviour}), lists=stripe_lists(),
                          ignore_customer=ignore_customer, broken=set(broken))
        return servers.enter_context(fake)
    return start


def _accounts(db: Database) -> None:
    with db.unit_of_work() as s:
        factories.account(s, "acme", currency="USD", tz="America/New_York")
        factories.account(s, "tokyo", currency="JPY", tz="Asia/Tokyo")


def _import(db: Database, fake: FakeStripe, account: str = "acme", customer: str = ACME, *, key: str = KEY,
            since: date | None = None) -> StripeReport:
    return import_stripe_api(db, account, url=fake.url, key=key, customer=customer, since=since, now=NOW,
                             policy=FAST)


def _stored(db: Database) -> tuple[int, int, int]:
    """Invoices, payments and Stripe audit entries in the ledger."""
    with db.unit_of_work() as s:
        return (s.scalar(select(func.count()).select_from(Invoice)) or 0,
                s.scalar(select(func.count()).select_from(Payment)) or 0,
                s.scalar(select(func.count()).select_from(AuditEntry)
                         .where(AuditEntry.action == "import.stripe")) or 0)


def test_every_page_is_followed_and_lands_as_invoices_lines_and_payments(
        db: Database, serve: Callable[..., FakeStripe]) -> None:
    _accounts(db)
    fake = serve()  # two objects a page: acme's five invoices take three pages
    report = _import(db, fake)
    assert report.rejections == [] and report.invoices.inserted == 5
    asked = {"customer": ACME, "limit": "100"}
    assert fake.queries("/v1/invoices") == [asked, asked | {"starting_after": "in_1OpenB"},
                                            asked | {"starting_after": "in_1PaidA"}]
    assert fake.queries("/v1/charges") == [asked, asked | {"starting_after": "ch_3OpenB"}]
    assert fake.queries("/v1/payment_intents") == [asked]
    with db.unit_of_work() as s:
        stored = {i.external_id: (i.number, i.status) for i in s.scalars(select(Invoice))}
    assert stored == {"in_1PaidA": ("ACME-0001", "paid"), "in_1OpenB": ("ACME-0002", "paid"),
                      "in_1DraftC": ("INV-0001", "draft"), "in_1VoidD": ("ACME-0003", "cancelled"),
                      "in_1UncollE": ("ACME-0004", "pending")}
    billing = Billing(db)
    paid = billing.invoice("acme", "ACME-0001", now=NOW)  # 9220 cents due, 10 % off, tax, $5 of balance used
    assert (paid.subtotal, paid.discount, paid.tax, paid.credits_applied, paid.summary.total) == (
        Decimal("100.00"), Decimal("10.00"), Decimal("7.20"), Decimal("5.00"), Decimal("92.20"))
    assert [(li.quantity, li.unit_price, li.total) for li in paid.lines] == [
        (Decimal(4), Decimal("20.00"), Decimal("80.00")), (Decimal(1000), Decimal("0.02"), Decimal("20.00"))]
    settled = billing.invoice("acme", "ACME-0002", now=NOW)  # paid by a charge on the second page of charges
    assert (settled.summary.status, settled.summary.amount_paid, settled.summary.amount_due) == (
        InvoiceStatus.PAID, Decimal("250.00"), Decimal(0))
    assert sorted((p.status, p.amount, p.method.value) for p in settled.payments) == [
        (PaymentStatus.CONFIRMED, Decimal("250.00"), "bank"), (PaymentStatus.FAILED, Decimal("250.00"), "card")]
    refunded = {p.amount: p for p in billing.payments("acme", PaymentQuery(limit=50)).items}[Decimal("30.00")]
    assert refunded.status is PaymentStatus.CONFIRMED  # a $50 charge with $20 refunded
    assert billing.invoice("acme", "ACME-0004", now=NOW).summary.status is InvoiceStatus.OVERDUE  # uncollectible


def test_yen_amounts_have_no_minor_units(db: Database, serve: Callable[..., FakeStripe]) -> None:
    _accounts(db)
    report = _import(db, serve(), "tokyo", TOKYO)
    assert report.rejections == [] and report.invoices.inserted == 1
    detail = Billing(db).invoice("tokyo", "TOKYO-0001", now=NOW)
    assert (detail.subtotal, detail.tax, detail.summary.total) == (Decimal(12345), Decimal(1234), Decimal(13579))
    assert [li.unit_price for li in detail.lines] == [Decimal(2500), Decimal(1)]
    assert detail.summary.status is InvoiceStatus.PAID and detail.summary.amount_due == 0
    [payment] = detail.payments
    assert (payment.amount, payment.currency, payment.status) == (Decimal(13579), "JPY", PaymentStatus.CONFIRMED)
    assert _stored(db)[:2] == (1, 1)  # none of acme's objects: the customer filter is asked for and kept


def test_importing_twice_changes_nothing(db: Database, serve: Callable[..., FakeStripe]) -> None:
    _accounts(db)
    fake = serve()
    first = _import(db, fake)
    counts = _stored(db)
    again = _import(db, fake)
    assert _stored(db)[:2] == counts[:2] == (5, 4)
    assert (again.invoices.inserted, again.invoices.updated, again.payments.inserted, again.payments.updated) == (
        0, 0, 0, 0)
    assert again.invoices.unchanged == first.invoices.inserted == 5
    assert again.payments.unchanged == first.payments.inserted + first.payments.unchanged
    with db.unit_of_work() as s:
        logged = s.scalars(select(AuditEntry.after).where(AuditEntry.action == "import.stripe")).all()
    assert [(e or {}).get("customer") for e in logged] == [ACME, ACME]
    assert all((e or {}).get("api") == fake.url and KEY not in json.dumps(e) for e in logged)


def test_since_asks_stripe_for_objects_created_from_that_local_midnight(
        db: Database, serve: Callable[..., FakeStripe]) -> None:
    _accounts(db)
    fake = serve()
    report = _import(db, fake, since=date(2025, 11, 20))
    midnight_in_new_york = str(int(datetime(2025, 11, 20, 5, tzinfo=UTC).timestamp()))
    assert {q["created[gte]"] for q in fake.queries("/v1/invoices")} == {midnight_in_new_york}
    assert report.invoices.inserted == 1  # the draft, created at that very second; the rest are older
    assert _stored(db)[:2] == (1, 0)


def test_a_rate_limit_waits_for_retry_after_then_the_import_completes(
        db: Database, serve: Callable[..., FakeStripe]) -> None:
    _accounts(db)
    fake = serve(rate_limit_first=1, retry_after="1")
    started = time.monotonic()
    report = _import(db, fake)
    assert time.monotonic() - started >= 1.0  # FAST's own backoff is at most 0.2 s: this is Retry-After
    assert report.rejections == [] and report.invoices.inserted == 5
    assert fake.paths()[:2] == ["/v1/invoices", "/v1/invoices"]  # the 429'd page, asked again


def test_server_errors_are_retried_and_the_import_completes(db: Database, serve: Callable[..., FakeStripe]) -> None:
    _accounts(db)
    fake = serve(fail_first=2)  # FAST tries three times
    report = _import(db, fake)
    assert report.rejections == [] and report.invoices.inserted == 5
    assert len(fake.paths()) == 6 + 2  # six pages, two of the first answered 500 before it came


def test_a_refused_key_says_stripe_s_reason_and_writes_nothing(db: Database, serve: Callable[..., FakeStripe]) -> None:
    _accounts(db)
    fake = serve()
    with pytest.raises(ProviderError) as refused:
        _import(db, fake, key="sk_test_wrong")
    assert refused.value.kind == "auth"
    assert refused.value.message == ("the API token was refused (HTTP 401): Invalid API Key provided: sk_test_**** "
                                     "(invalid_request_error)")
    assert len(fake.paths()) == 1  # a wrong key is not retried
    assert _stored(db) == (0, 0, 0)


def test_a_failure_after_some_pages_writes_nothing(db: Database, serve: Callable[..., FakeStripe]) -> None:
    _accounts(db)
    fake = serve(broken=frozenset({"payment_intents"}))  # invoices and charges answer; the last list never does
    with pytest.raises(ProviderError, match=r"HTTP 500 from /v1/payment_intents: An unknown error occurred\. "
                                            r"\(api_error\)"):
        _import(db, fake)
    assert fake.paths().count("/v1/payment_intents") == FAST.attempts
    assert _stored(db) == (0, 0, 0)  # the invoices fetched before it are not half an import


def test_an_api_that_ignores_the_customer_filter_is_refused(db: Database, serve: Callable[..., FakeStripe]) -> None:
    _accounts(db)
    with pytest.raises(ProviderError, match="belongs to customer 'cus_Qx8acme01', not 'cus_Tokyo01'"):
        _import(db, serve(ignore_customer=True), "tokyo", TOKYO)
    assert _stored(db) == (0, 0, 0)


def _client_against(handler: Callable[[httpx.Request], httpx.Response]) -> list[Json]:
    async def go() -> list[Json]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await StripeClient(http, "http://stripe.test", KEY, policy=FAST).customer_objects(ACME)
    return asyncio.run(go())


def test_lists_that_would_never_end_or_end_unsaid_fail_with_a_reason() -> None:
    invoice = {"object": "invoice", "id": "in_1", "customer": ACME}
    with pytest.raises(ProviderError, match="answers the same page again"):
        _client_against(lambda r: httpx.Response(200, json={"object": "list", "data": [invoice], "has_more": True}))
    with pytest.raises(ProviderError, match="`has_more` must be true or false"):
        _client_against(lambda r: httpx.Response(200, json={"object": "list", "data": [invoice]}))
    with pytest.raises(ProviderError, match="`has_more` is true but the page's last object has no id"):
        _client_against(lambda r: httpx.Response(200, json={"object": "list", "data": [], "has_more": True}))


# --- the command line ------------------------------------------------------------------------------------


def test_cli_imports_from_the_api_and_a_second_run_changes_nothing(
        db: Database, db_url: str, serve: Callable[..., FakeStripe], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _accounts(db)
    fake = serve()
    monkeypatch.setenv("STRIPE_API_KEY", KEY)
    command = ["--database-url", db_url, "import", "stripe", "--api-url", fake.url + "/v1/", "--customer", ACME,
               "--account", "acme"]
    assert cli.main(command) == 0
    first = capsys.readouterr().out
    assert first.startswith(f"{fake.url} customer {ACME}: invoices 5 inserted, 0 updated, 0 unchanged; payments 4 "
                            "inserted")
    assert cli.main(command) == 0
    assert "invoices 0 inserted, 0 updated, 5 unchanged; payments 0 inserted, 0 updated" in capsys.readouterr().out
    assert cli.main([*command, "--since", "2025-11-20"]) == 0
    assert "invoices 0 inserted, 0 updated, 1 unchanged" in capsys.readouterr().out


def test_cli_says_in_one_line_why_the_api_could_not_be_read_and_exits_1(
        db: Database, db_url: str, serve: Callable[..., FakeStripe], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _accounts(db)
    fake = serve()

    def run(url: str, key: str) -> tuple[int, str]:
        monkeypatch.setenv("STRIPE_API_KEY", key)
        code = cli.main(["--database-url", db_url, "import", "stripe", "--api-url", url, "--customer", ACME,
                         "--account", "acme"])
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return code, err

    code, err = run(fake.url, "sk_test_wrong")
    assert code == 1 and "Invalid API Key provided" in err and "nothing was imported" in err
    code, err = run(refused_url(), KEY)
    assert code == 1 and "cannot connect" in err
    assert _stored(db) == (0, 0, 0)


@pytest.mark.parametrize(("arguments", "key", "problem"), [
    (["x.json", "--api-url", "http://127.0.0.1:9"], KEY, "give Stripe JSON files or --api-url, not both"),
    ([], KEY, "give Stripe JSON files, or --api-url URL --customer cus_…"),
    (["--api-url", "http://127.0.0.1:9"], KEY, "--api-url needs --customer"),
    (["x.json", "--customer", ACME], KEY, "--customer and --since go with --api-url"),
    (["--api-url", "http://127.0.0.1:9", "--customer", ACME], "", "set $STRIPE_API_KEY to the Stripe secret key"),
    (["--api-url", f"https://{KEY}:@api.stripe.test", "--customer", ACME], KEY, "not in --api-url"),
    (["--api-url", "api.stripe.com", "--customer", ACME], KEY, "--api-url must be an http:// or https:// URL"),
    (["--api-url", "http://127.0.0.1:9", "--customer", ACME, "--account", "nobody"], KEY, "nobody"),
])
def test_cli_bad_arguments_exit_2_with_one_line(
        db: Database, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        arguments: list[str], key: str, problem: str) -> None:
    _accounts(db)
    monkeypatch.setenv("STRIPE_API_KEY", key)
    account = [] if "--account" in arguments else ["--account", "acme"]
    assert cli.main(["--database-url", db_url, "import", "stripe", *arguments, *account]) == 2
    err = capsys.readouterr().err
    assert problem in err and len(err.strip().splitlines()) == 1, err
    assert _stored(db) == (0, 0, 0)


def test_cli_a_malformed_since_exits_2(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as bad:
        cli.main(["--database-url", db_url, "import", "stripe", "--api-url", "http://127.0.0.1:9", "--customer",
                  ACME, "--account", "acme", "--since", "last week"])
    assert bad.value.code == 2 and "'last week' is not a day like 2025-10-01" in capsys.readouterr().err
