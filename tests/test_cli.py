"""The command line as a user runs it: a real process, a real database, exit codes and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from billing_core.db.engine import Database

CLI = [sys.executable, "-m", "billing_core.cli"]


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=180, check=False)


@pytest.fixture
def fresh_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_demo_migrates_seeds_and_reports_every_account(fresh_url: str) -> None:
    result = run("demo", url=fresh_url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("acme-corp", "nordlicht-gmbh", "orbit-dao"):
        assert f"{name} — " in out
    assert "OVERDUE" in out and "Projected month end" in out and "USDC" in out and "€" in out
    again = run("seed", "--demo", url=fresh_url)
    assert again.returncode == 0
    assert " 0 new / 0 updated /" in again.stdout  # seeding twice changes nothing


def test_backtest_prints_the_projection_error_at_each_checkpoint_against_the_run_rate(fresh_url: str) -> None:
    assert run("demo", url=fresh_url).returncode == 0
    result = run("backtest", "acme-corp", url=fresh_url)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("acme-corp", "7"), ("acme-corp", "14"), ("acme-corp", "21")]
    assert all(float(r[3].rstrip("%")) < float(r[4].rstrip("%")) for r in rows), result.stdout
    unknown = run("backtest", "nosuch", url=fresh_url)
    assert unknown.returncode == 2 and unknown.stderr.strip().startswith("billing-bot: No billing account 'nosuch'")
    assert unknown.stdout == ""


def test_demo_data_has_every_invoice_status_and_onchain_payments(db: Database) -> None:
    from sqlalchemy import text

    from billing_core.cli import now
    from billing_core.demo import seed_demo

    with db.unit_of_work() as s:
        seed_demo(s, now=now())
    with db.engine.connect() as conn:
        statuses = {r[0] for r in conn.execute(text("select distinct status from invoices"))}
        overdue = conn.execute(text("select count(*) from invoices where status = 'pending' and due_date < :d"),
                               {"d": now().date()}).scalar_one()
        partial = conn.execute(text("select count(*) from invoices where amount_paid > 0 and amount_due > 0")).scalar()
        onchain = conn.execute(text("select count(*) from payments where tx_hash like '0x%'")).scalar_one()
        accounts = conn.execute(text("select count(distinct currency), count(distinct timezone) from accounts")).one()
    assert statuses >= {"draft", "pending", "paid", "cancelled"} and overdue >= 1
    assert partial >= 1 and onchain >= 1 and tuple(accounts) == (3, 3)


def test_report_on_postgresql_reads_what_was_seeded(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("the SQLite path is covered by the demo test")
    from billing_core.cli import now, render_report
    from billing_core.demo import seed_demo
    from billing_core.service import Billing

    with db.unit_of_work() as s:
        seed_demo(s, now=now())
    text = render_report(Billing(db), "orbit-dao", now())
    assert "orbit-dao" in text and "USDC" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("report",), "the following arguments are required: account"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("seed",), "the following arguments are required: --demo"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(fresh_url: str, args: tuple[str, ...], message: str) -> None:
    result = run(*args, url=fresh_url)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_account_is_one_friendly_line(fresh_url: str) -> None:
    assert run("db", "upgrade", url=fresh_url).returncode == 0
    result = run("report", "nope", url=fresh_url)
    assert result.returncode == 2  # a bad argument, like argparse's own usage errors
    assert result.stderr.strip() == "billing-bot: No billing account 'nope'. (`billing-bot accounts` lists them.)"


def test_a_new_user_creates_an_account_and_imports_into_it_without_the_demo(fresh_url: str) -> None:
    assert run("db", "upgrade", url=fresh_url).returncode == 0
    assert "billing-bot accounts add NAME" in run("accounts", url=fresh_url).stdout
    made = run("accounts", "add", "Acme Corp", "--currency", "eur", "--timezone", "Europe/Berlin",
               "--email", "billing@acme.example", url=fresh_url)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("Account Acme Corp (id 1) created: EUR, Europe/Berlin.")
    listed = run("accounts", url=fresh_url).stdout
    assert "Acme Corp" in listed and "EUR" in listed and "Europe/Berlin" in listed
    sample = Path(__file__).parent / "data" / "focus" / "ai_billing__multi_model_usage.csv"
    imported = run("import", "focus", str(sample), "--account", "Acme Corp", url=fresh_url)
    assert imported.returncode == 1 and "billed in USD, but the account bills in EUR" in imported.stdout
    assert run("accounts", "add", "acme-usd", "--currency", "USD", "--timezone", "UTC", url=fresh_url).returncode == 0
    imported = run("import", "focus", str(sample), "--account", "acme-usd", url=fresh_url)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert run("report", "acme-usd", url=fresh_url).returncode == 0


@pytest.mark.parametrize(("args", "says"), [
    (("Acme Corp", "--currency", "USD", "--timezone", "UTC"), "There is already an account named 'Acme Corp'"),
    (("ACME corp", "--currency", "USD", "--timezone", "UTC"), "There is already an account named 'ACME corp'"),
    (("Beta", "--currency", "XYZ", "--timezone", "UTC"), "Unknown currency 'XYZ'"),
    (("Beta", "--currency", "USD", "--timezone", "Mars/Olympus"), "Unknown time zone 'Mars/Olympus'"),
    (("12345", "--currency", "USD", "--timezone", "UTC"), "'12345' cannot be an account name"),
    (("Beta", "--currency", "USD", "--timezone", "UTC", "--credit", "lots"), "credit"),
])
def test_a_bad_new_account_is_one_line_exit_2_and_nothing_is_written(fresh_url: str, args: tuple[str, ...],
                                                                     says: str) -> None:
    assert run("db", "upgrade", url=fresh_url).returncode == 0
    assert run("accounts", "add", "Acme Corp", "--currency", "USD", "--timezone", "UTC", url=fresh_url).returncode == 0
    result = run("accounts", "add", *args, url=fresh_url)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert says in result.stderr and result.stdout == ""
    assert run("accounts", url=fresh_url).stdout.count("\n") == 1  # still only the first account
