"""Block Kit views are pure: core results in, dicts out. Assertions are what a reader would notice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing_core.db.engine import Database
from billing_core.db.migrate import upgrade
from billing_core.demo import seed_demo
from billing_core.errors import InvalidInput
from billing_core.results import InvoiceQuery, InvoiceStatus
from billing_core.service import Billing
from bot.views.admin import help_message
from bot.views.budgets import budget_modal, budgets_message
from bot.views.common import Reader, error_message
from bot.views.invoices import filter_modal, invoice_message, invoices_message
from bot.views.overview import home_view, overview_message
from bot.views.usage import forecast_message, usage_message

NOW = datetime(2026, 11, 22, 15, tzinfo=UTC)
US = Reader("en_US", ZoneInfo("America/New_York"))
DE = Reader("de_DE", ZoneInfo("Europe/Berlin"))


@pytest.fixture(scope="module")
def billing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Billing]:
    db = Database(f"sqlite:///{Path(tmp_path_factory.mktemp('views')) / 'demo.db'}")
    upgrade(db)
    with db.unit_of_work() as s:
        seed_demo(s, now=NOW)
    yield Billing(db)
    db.dispose()


def all_text(msg: dict[str, object]) -> str:
    return json.dumps(msg, ensure_ascii=False)


def test_overview_has_fallback_numbers_and_quick_actions(billing: Billing) -> None:
    o = billing.overview("acme-corp", now=NOW)
    msg = overview_message(o, US)
    assert msg["text"].startswith("acme-corp: $") and "overdue" in msg["text"]
    text = all_text(msg)
    assert "Pay now" in text and o.oldest_unpaid is not None and o.oldest_unpaid.payment_url in text
    assert "Download PDF" in text and "Projected month end" in text and "monthly-total" in text
    assert len(msg["blocks"]) <= 50


def test_money_is_written_for_the_readers_locale(billing: Billing) -> None:
    o = billing.overview("nordlicht-gmbh", now=NOW)
    text = all_text(overview_message(o, DE))
    assert "€" in text and any(ch.isdigit() for ch in text)
    assert f"{o.cost_to_date:,.2f}\u00a0€".replace(",", "X").replace(".", ",").replace("X", ".") in text


def test_invoice_list_has_badges_paging_and_export(billing: Billing) -> None:
    page = billing.invoices("acme-corp", InvoiceQuery(limit=2), now=NOW)
    msg = invoices_message(page, US, account_id=1)
    text = all_text(msg)
    assert ":red_circle: Overdue" in text or ":large_yellow_circle: Pending" in text
    assert "Next ▶" in text and "Previous" not in text and "Export CSV" in text and "Filter…" in text
    assert msg["text"].startswith(f"{page.total_matching} all invoices")


def test_the_invoice_list_shows_an_amount_due_only_on_invoices_that_are_owed(billing: Billing) -> None:
    """A draft is not billed yet and a cancelled invoice never will be: their rows say nothing is due, and the
    footer's total due is the rows' own sum (the balance)."""
    page = billing.invoices("acme-corp", InvoiceQuery(limit=20), now=NOW)
    draft = next(i for i in page.items if i.status is InvoiceStatus.DRAFT)
    rows = {b["text"]["text"].split("*")[1]: b["text"]["text"] for b in invoices_message(page, US, account_id=1)[
        "blocks"] if b["type"] == "section" and b["text"]["text"].startswith("*INV-")}
    assert draft.amount_due and f"{US.money(draft.amount_due, 'USD')} due" not in rows[draft.number]
    owed = [i for i in page.items if i.status in (InvoiceStatus.PENDING, InvoiceStatus.OVERDUE)]
    assert all(f"{US.money(i.amount_due, 'USD')} due" in rows[i.number] for i in owed)
    assert page.due == sum(i.amount_due for i in owed) == billing.balance("acme-corp", now=NOW).outstanding


def test_invoice_detail_shows_lines_totals_payments_and_buttons(billing: Billing) -> None:
    page = billing.invoices("acme-corp", InvoiceQuery(statuses=(InvoiceStatus.OVERDUE,)), now=NOW)
    detail = billing.invoice("acme-corp", page.items[0].number, now=NOW)
    text = all_text(invoice_message(detail, US))
    assert US.money(detail.summary.total, "USD") in text and US.money(detail.summary.amount_due, "USD") in text
    assert "Compute (vCPU) usage" in text and "Receipt RCT-" in text and '"url": "https://pay.' in text


def test_invoice_lines_show_every_digit_of_a_fractional_unit_price(billing: Billing) -> None:
    """Per-GB and per-hour prices are fractions of a cent: "× $0.08" for 0.076636 GB would be $268 off the line."""
    detail = billing.invoice("acme-corp", "INV-0003", now=NOW)
    text = all_text(invoice_message(detail, US))
    fractional = [li for li in detail.lines if li.unit_price != li.unit_price.quantize(Decimal("0.01"))]
    assert fractional, "the demo invoice has per-unit prices below a cent"
    for li in fractional:
        assert f"× {li.unit_price.normalize():f} USD = *{US.money(li.total, 'USD')}*" in text


def test_onchain_payments_link_to_the_explorer(billing: Billing) -> None:
    page = billing.invoices("orbit-dao", InvoiceQuery(statuses=(InvoiceStatus.PAID,)), now=NOW)
    text = all_text(invoice_message(billing.invoice("orbit-dao", page.items[0].number, now=NOW), US))
    assert "<https://etherscan.io/tx/0x" in text and "onchain" in text


def test_a_long_budget_list_in_the_forecast_puts_the_ones_in_trouble_first_and_counts_the_rest(
        billing: Billing) -> None:
    from billing_core.results import BudgetStatus

    forecast = billing.forecast("acme-corp", now=NOW)
    fine = [BudgetStatus(i, "acme-corp", f"team-{i:02d}", f"deployment d{i}", Decimal(1000), "USD", forecast.period,
                         Decimal(10 + i), None, (80, 100), None) for i in range(11)]
    over = BudgetStatus(99, "acme-corp", "gpu-cap", "resource gpu", Decimal(100), "USD", forecast.period,
                        Decimal(120), None, (100,), None)
    text = all_text(forecast_message(forecast, [*fine, over], US, account="acme-corp"))
    assert "*gpu-cap*" in text and "already *over* budget" in text
    assert "…and 2 more: `/billing budget` lists them all" in text


def test_user_supplied_text_cannot_inject_mentions() -> None:
    msg = error_message(InvalidInput("I don't know `<!channel> <@U1>`.", hint="<https://evil|click>"))
    text = all_text(msg)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "<https://evil" not in text


def test_usage_and_forecast(billing: Billing) -> None:
    from billing_core.periods import Granularity, last_days, month_period

    summary = billing.usage("acme-corp", month_period(NOW.date()), group_by="provider", granularity=Granularity.DAY)
    text = all_text(usage_message(summary, US, asked=Granularity.DAY))
    assert "Helios Compute" in text and "Plan limits" in text and "Export usage report" in text
    week = billing.usage("acme-corp", last_days(NOW.date(), 7), group_by="provider")
    text = all_text(usage_message(week, US, asked=Granularity.DAY))
    assert "Plan limits" not in text and "includes quantities per calendar month" in text
    forecast = billing.forecast("acme-corp", now=NOW)
    msg = forecast_message(forecast, billing.budgets("acme-corp", now=NOW), US, account="acme-corp")
    assert "projected" in msg["text"] and "80%" in all_text(msg)
    text = all_text(msg)  # the account-wide budget against the projection, the gpu one (over already) with it
    assert "*monthly-total*" in text and "projected *over* budget by" in text
    assert "*gpu* (resource gpu)" in text and "already *over* budget" in text


def test_budgets_show_changes_only_to_admins(billing: Billing) -> None:
    statuses = billing.budgets("acme-corp", now=NOW)
    assert "Delete" not in all_text(budgets_message(statuses, US, account="acme-corp", is_admin=False))
    assert "Delete" in all_text(budgets_message(statuses, US, account="acme-corp", is_admin=True))
    modal = budget_modal(account="acme-corp", currency="USD", metadata="{}")
    assert modal["type"] == "modal" and len(modal["title"]["text"]) <= 24


def test_modals_and_home_respect_slack_limits(billing: Billing) -> None:
    modal = filter_modal(InvoiceQuery(statuses=(InvoiceStatus.PAID,)), metadata="{}")
    assert len(modal["title"]["text"]) <= 24 and modal["blocks"][0]["element"]["initial_options"]
    home = home_view(billing.overview("acme-corp", now=NOW), US, chart_file_id="F0123456789")
    assert home["type"] == "home" and len(home["blocks"]) <= 100
    assert {"type": "image", "slack_file": {"id": "F0123456789"}}.items() <= next(
        b for b in home["blocks"] if b["type"] == "image").items()
    assert len(help_message()["blocks"]) <= 50
