"""Reconciliation: provider invoices vs metered usage, per provider and meter, within a tolerance; audited.

A finance admin notices: a month that matches says so; seeded differences come back one per line with the
right kind and exact amounts in the CSV; every run leaves an audit entry; `/billing reconcile` answers in
Slack with the CSV in its thread, and only for billing admins.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from billing_core import cli
from billing_core.db.engine import Database
from billing_core.db.ingest import ingest_usage, upsert_invoice
from billing_core.db.models import Account, AuditEntry, Provider
from billing_core.periods import month_period
from billing_core.reconcile import reconcile
from billing_core.reconciliation import ALL_PROVIDERS, Amounts, Kind, compare, discrepancies_csv
from billing_core.records import InvoiceIn, LineIn, UsageIn
from billing_core.results import InvoiceStatus
from billing_core.service import Billing
from tests import factories
from tests.slack_harness import BotHarness

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
OCTOBER = month_period(date(2026, 10, 1))


def metered(acct: Account, prov: Provider | None, meter: str, quantity: str, cost: str, *, unit: str = "u",
            day: int = 10, source: str = "test") -> UsageIn:
    start = datetime(2026, 10, day, 8, tzinfo=UTC)
    return UsageIn(account_id=acct.id, meter=meter, quantity=Decimal(quantity), unit=unit, cost=Decimal(cost),
                   currency=acct.currency, period_start=start, period_end=start + timedelta(hours=1), source=source,
                   external_id=f"{meter}:{prov.id if prov else 0}:{day}", provider_id=prov.id if prov else None)


def billed(acct: Account, prov: Provider | None, ext: str, *lines: tuple[str, str, str],
           status: InvoiceStatus = InvoiceStatus.PENDING) -> InvoiceIn:
    """An October invoice with lines (meter, quantity, amount), unit "u"."""
    return InvoiceIn(
        account_id=acct.id, source="provider", external_id=ext, status=status, issue_date=date(2026, 11, 1),
        due_date=date(2026, 11, 30), period_start=date(2026, 10, 1), period_end=date(2026, 10, 31),
        currency=acct.currency, provider_id=prov.id if prov else None,
        lines=tuple(LineIn(f"{m} usage", Decimal(q), "u", (Decimal(a) / Decimal(q)).quantize(Decimal("0.000001")),
                           Decimal(a), m) for m, q, a in lines))


def seed(db: Database, usage: list[tuple[str, str, str]], invoices: list[list[tuple[str, str, str]]]) -> None:
    with db.unit_of_work() as s:
        acct, prov = factories.account(s, "acme"), factories.provider(s, "Helios")
        ingest_usage(s, [metered(acct, prov, m, q, c) for m, q, c in usage])
        for i, lines in enumerate(invoices):
            upsert_invoice(s, billed(acct, prov, f"inv-{i}", *lines), now=NOW)


def test_a_month_that_matches_within_tolerance_reports_nothing_and_is_audited(db: Database) -> None:
    seed(db, [("cpu", "100", "42.00"), ("memory", "200", "10.00")],
         [[("cpu", "100", "42.20"), ("memory", "200", "10.00")]])  # cpu 0.48 % over: inside 0.5 %
    result = reconcile(db, "acme", OCTOBER, actor="test", now=NOW)
    assert result.clean and result.lines_checked == 2 and result.invoices == ("INV-0001",)
    assert (result.billed_total, result.metered_total) == (Decimal("52.20"), Decimal("52.00"))
    with db.unit_of_work() as s:
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "reconcile.run"))
        assert entry.actor == "test" and entry.entity_id == str(result.account_id)
        assert entry.after is not None and entry.after["discrepancies"] == 0 and entry.after["billed_total"] == "52.2"
        assert "within tolerance" in (entry.detail or "")


def test_seeded_differences_are_reported_per_line_with_their_kind(db: Database) -> None:
    seed(db, [("cpu", "100", "42.00"), ("memory", "200", "10.00"), ("storage", "50", "5.00")],
         [[("cpu", "110", "46.20"),  # charged for 10 more units than metered
           ("memory", "200", "12.00"),  # the same units at a higher price
           ("gpu", "2", "4.80")]])  # nothing metered at all; storage is metered but never billed
    result = reconcile(db, "acme", OCTOBER, actor="test", now=NOW)
    found = {(d.provider, d.meter): d for d in result.discrepancies}
    assert {k: d.kind for k, d in found.items()} == {
        ("Helios", "cpu"): Kind.EXTRA_CHARGE, ("Helios", "gpu"): Kind.MISSING_USAGE,
        ("Helios", "memory"): Kind.PRICE_DIFFERENCE, ("Helios", "storage"): Kind.UNBILLED_USAGE}
    cpu = found[("Helios", "cpu")]
    assert (cpu.billed.quantity, cpu.metered.quantity, cpu.difference, cpu.difference_pct) == (
        Decimal("110"), Decimal("100"), Decimal("4.20"), Decimal("10.00"))
    rows = list(csv.DictReader(io.StringIO(discrepancies_csv([result]).decode("utf-8"))))
    assert [(r["meter"], r["kind"], r["billed_amount"], r["metered_amount"], r["difference"]) for r in rows] == [
        ("cpu", "extra_charge", "46.2", "42", "4.2"), ("gpu", "missing_usage", "4.8", "0", "4.8"),
        ("memory", "price_difference", "12", "10", "2"), ("storage", "unbilled_usage", "0", "5", "-5")]
    assert rows[0]["invoices"] == "INV-0001" and rows[0]["period_end"] == "2026-10-31"


def test_tolerance_is_a_choice_and_a_rerun_gives_the_same_answer(db: Database) -> None:
    seed(db, [("cpu", "100", "42.00")], [[("cpu", "100", "42.30")]])  # 0.71 % over
    strict = reconcile(db, "acme", OCTOBER, actor="test", now=NOW)
    again = reconcile(db, "acme", OCTOBER, actor="test", now=NOW)
    loose = reconcile(db, "acme", OCTOBER, actor="test", now=NOW, tolerance=Decimal("0.01"))
    assert [d.kind for d in strict.discrepancies] == [Kind.PRICE_DIFFERENCE] and strict == again
    assert loose.clean
    with db.unit_of_work() as s:
        assert len(list(s.scalars(select(AuditEntry).where(AuditEntry.action == "reconcile.run")))) == 3


def test_an_invoice_naming_no_provider_covers_every_provider_without_its_own(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = factories.account(s, "acme")
        helios, nimbus = factories.provider(s, "Helios"), factories.provider(s, "Nimbus")
        ingest_usage(s, [metered(acct, helios, "cpu", "60", "25.20"), metered(acct, nimbus, "cpu", "40", "16.80")])
        upsert_invoice(s, billed(acct, None, "all", ("cpu", "100", "42.00")), now=NOW)
        upsert_invoice(s, billed(acct, None, "void", ("cpu", "100", "42.00"), status=InvoiceStatus.CANCELLED),
                       now=NOW)  # cancelled: not compared
    result = reconcile(db, "acme", OCTOBER, actor="test", now=NOW)
    assert result.clean and result.billed_total == Decimal("42.00") and result.lines_checked == 1
    with db.unit_of_work() as s:  # the provider re-issues it for Helios only: Nimbus's usage is now unbilled
        acct = s.scalar(select(Account))
        assert acct is not None and nimbus is not None
        upsert_invoice(s, billed(acct, helios, "all", ("cpu", "60", "25.20")), now=NOW)
    [unbilled] = reconcile(db, "acme", OCTOBER, actor="test", now=NOW).discrepancies
    assert (unbilled.provider, unbilled.kind, unbilled.metered.amount) == ("Nimbus", Kind.UNBILLED_USAGE,
                                                                           Decimal("16.80"))
    assert ALL_PROVIDERS not in {d.provider for d in result.discrepancies}


def test_cli_reconcile_exits_1_on_discrepancies_and_writes_the_csv(
        db: Database, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed(db, [("cpu", "100", "42.00")], [[("cpu", "100", "50.00")]])
    out = tmp_path / "rec.csv"
    url = ["--database-url", db_url]
    assert cli.main([*url, "reconcile", "--account", "acme", "--period", "2026-10", "--csv", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "1 discrepancy" in printed and "price_difference" in printed and "+19.05%" in printed
    assert out.read_text().splitlines()[1].startswith("acme,2026-10-01,2026-10-31,Helios,cpu,price_difference")
    assert cli.main([*url, "reconcile", "--account", "acme", "--period", "2026-10", "--tolerance", "20"]) == 0
    with pytest.raises(SystemExit) as bad:
        cli.main([*url, "reconcile", "--period", "October"])
    assert bad.value.code == 2


# --- Slack ----------------------------------------------------------------------------------------------------


def test_slack_reconcile_of_a_matching_month_says_so(bot: BotHarness) -> None:
    ack = bot.command("reconcile")
    assert "Working on it" in ack.text  # a scan of the month: the ack says the answer is coming
    bot.settle()
    answer = bot.fake.messages("C_FINANCE")[-1]
    expected = Billing(bot.db).reconcile("acme-corp", None, actor="test", now=bot.deps.clock())
    assert expected.clean and expected.invoices  # the demo's last month is billed exactly as metered
    assert f"Reconciliation — {expected.period.label}" in json.dumps(answer.blocks, ensure_ascii=False)
    assert "Every line agrees within 0.5 %" in json.dumps(answer.blocks, ensure_ascii=False)


def test_slack_reconcile_posts_the_discrepancies_with_the_csv_in_the_thread(bot: BotHarness) -> None:
    # January 2023 is outside every other test's window: metered usage there that no invoice bills.
    with bot.db.unit_of_work() as s:
        acct = s.scalar(select(Account).where(Account.name == "acme-corp"))
        assert acct is not None
        start = datetime(2023, 1, 10, tzinfo=UTC)
        ingest_usage(s, [UsageIn(account_id=acct.id, meter="cpu", quantity=Decimal(5), unit="vCPU-h",
                                 cost=Decimal("2.10"), currency="USD", period_start=start,
                                 period_end=start + timedelta(hours=1), source="test-reconcile", external_id="jan")])
    bot.command("reconcile 2023-01")
    bot.settle()
    answer = bot.fake.messages("C_FINANCE")[-1]
    shown = json.dumps(answer.blocks, ensure_ascii=False)
    assert "1 discrepancy" in shown and "metered, but not (fully) billed" in shown
    [upload] = [f for f in bot.fake.files() if f.channel == "C_FINANCE" and f.thread_ts == answer.ts]
    rows = list(csv.DictReader(io.StringIO(upload.content.decode("utf-8"))))
    assert [(r["meter"], r["kind"], r["metered_amount"]) for r in rows] == [("cpu", "unbilled_usage", "2.1")]
    with bot.db.unit_of_work() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "reconcile.run")
                          .order_by(AuditEntry.id.desc())).first()
        assert entry is not None and "U_ADMIN" in entry.actor and entry.after and entry.after["discrepancies"] == 1


def test_slack_reconcile_is_for_billing_admins_only(bot: BotHarness) -> None:
    bot.command("reconcile", user="U_VIEWER")
    bot.settle()
    refusal = bot.last_text(user="U_VIEWER")
    assert "Only billing admins can do this" in refusal and "reconciliation" in refusal
    assert "change" not in refusal  # a reconciliation only reads: the refusal must not say it changes something
    assert not any("Reconciliation" in m.text for m in bot.fake.messages("C_FINANCE"))
    bot.command("reconcile sometime", user="U_ADMIN", channel="C_GENERAL")
    bot.settle()
    assert "reconcile 2026-10" in bot.last_text(channel="C_GENERAL")


def test_compare_rules_without_a_database() -> None:
    usd = {"tolerance": Decimal("0.005"), "currency": "USD"}
    same_cent = compare({("P", "cpu"): Amounts(Decimal(1), "u", Decimal("0.004"))}, {}, **usd)
    assert same_cent == []  # less than half a cent apart: equal once rounded to the currency
    mixed = compare({("P", "cpu"): Amounts(None, None, Decimal("12"))},
                    {("P", "cpu"): Amounts(Decimal(5), "h", Decimal("10"))}, **usd)
    assert [d.kind for d in mixed] == [Kind.EXTRA_CHARGE]  # units differ: only the money can be compared
    assert mixed[0].difference_pct == Decimal("20.00")


def test_the_daily_run_alerts_once_on_discrepancies_in_the_routed_channel(db: Database) -> None:
    """The worker's job: accounts with a provider endpoint, last month; the same finding is not news twice."""
    from billing_core.alerts.service import Alerts
    from billing_core.db.alert_models import Alert
    from billing_core.db.sync_models import add_endpoint
    from bot.jobs.scheduler import WorkerDeps, reconcile_accounts
    from bot.views.alerts import alert_message
    from bot.views.common import Reader

    seed(db, [("cpu", "100", "42.00")], [[("cpu", "110", "46.20"), ("gpu", "2", "4.80")]])
    with db.unit_of_work() as s:
        acct = s.scalar(select(Account).where(Account.name == "acme"))
        assert acct is not None
        add_endpoint(s, provider="Helios", base_url="https://api.helios.example", token_env=None, account=acct,
                     now=NOW)
    Alerts(db).set_route(1, "reconcile", "C_FINANCE", actor="test", now=NOW)
    deps = WorkerDeps.build(db, token="xoxb-test", api_url="http://127.0.0.1:9/", clock=lambda: NOW)
    reconcile_accounts(deps)
    reconcile_accounts(deps)  # the next day's run finds the same lines: no second alert
    with db.unit_of_work() as s:
        [alert] = s.scalars(select(Alert).where(Alert.rule == "reconcile"))
        assert alert.channel == "C_FINANCE" and alert.payload["count"] == 2
    shown = alert_message(deps.alerts.alert(alert.id), Reader())
    assert "October 2026 invoices disagree with metered usage on 2 lines" in shown["text"]
    assert "gpu" in json.dumps(shown["blocks"]) and "missing_usage" in json.dumps(shown["blocks"])


def test_the_daily_run_also_checks_accounts_billed_without_a_provider_api(db: Database) -> None:
    """Invoices imported from Stripe (no endpoint) are reconciled too; an account with usage but no invoice for
    the month, or only a cancelled or draft one, has nothing billed to compare and is left alone (no run, no
    audit entry)."""
    from billing_core.alerts.service import Alerts
    from billing_core.db.alert_models import Alert
    from bot.jobs.scheduler import WorkerDeps, reconcile_accounts

    with db.unit_of_work() as s:
        stripe_billed, prov = factories.account(s, "stripe-billed"), factories.provider(s, "Helios")
        unbilled, voided = factories.account(s, "metered-only"), factories.account(s, "voided")
        drafted = factories.account(s, "drafted")
        for acct in (stripe_billed, unbilled, voided, drafted):
            ingest_usage(s, [metered(acct, prov, "cpu", "100", "42.00", source=f"meter-{acct.id}")])
        upsert_invoice(s, replace(billed(stripe_billed, prov, "in_1", ("cpu", "100", "50.00")), source="stripe"),
                       now=NOW)
        upsert_invoice(s, billed(voided, prov, "in_2", ("cpu", "1", "99.00"), status=InvoiceStatus.CANCELLED),
                       now=NOW)
        upsert_invoice(s, billed(drafted, prov, "in_3", ("cpu", "1", "99.00"), status=InvoiceStatus.DRAFT), now=NOW)
        ids = stripe_billed.id, unbilled.id, voided.id, drafted.id
    alerts = Alerts(db)
    for account_id in ids:
        alerts.set_route(account_id, "reconcile", "C_FINANCE", actor="test", now=NOW)
    reconcile_accounts(WorkerDeps.build(db, token="xoxb-test", api_url="http://127.0.0.1:9/", clock=lambda: NOW))
    with db.unit_of_work() as s:
        [alert] = s.scalars(select(Alert).where(Alert.rule == "reconcile"))
        assert alert.account_id == ids[0] and alert.payload["count"] == 1
        runs = s.scalars(select(AuditEntry.entity_id).where(AuditEntry.action == "reconcile.run")).all()
        assert runs == [str(ids[0])]
