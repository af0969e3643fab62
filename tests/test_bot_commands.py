"""`/billing …` end to end: signed slash commands to the real Bolt app, answers read back from the fake Slack.

The demo workspace (T0001): #finance (C_FINANCE) is linked to acme-corp, so answers there are public and files
land in the answer's thread; #general is not linked, so answers are ephemeral and files go to the DM.
U_ADMIN is a workspace admin (billing admin), U_VIEWER a viewer, U_NOBODY has no billing role.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from billing_core.db.models import AuditEntry
from billing_core.fmt import money
from billing_core.periods import custom_period, last_days
from billing_core.results import InvoiceQuery, InvoiceStatus
from bot.ids import Action, Block, Field, View
from bot.sandbox.fake_state import User
from tests.slack_harness import BotHarness

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def texts_of(blocks: list[dict[str, Any]]) -> str:
    """Every piece of text in a list of blocks (sections, fields, context), for "the user can read X"."""
    return json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in blocks:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if element.get("type") == "button":
                found.setdefault(element["action_id"], element)
    return found


def files_in_thread(bot: BotHarness, channel: str, ts: str) -> list[Any]:
    return [f for f in bot.fake.files() if f.channel == channel and f.thread_ts == ts and f.content is not None]


def acme_invoice(bot: BotHarness, number: str) -> Any:
    return bot.deps.billing.invoice("acme-corp", number, now=bot.deps.clock())


# --- overview ------------------------------------------------------------------------------------------------


def test_overview_in_a_linked_channel_is_public_with_the_trend_chart_in_its_thread(bot: BotHarness) -> None:
    ack = bot.command("")
    assert ack.status_code == 200 and "Working on it" in ack.text  # the ack says the answer is coming
    bot.settle()
    overview = bot.fake.messages("C_FINANCE")[0]
    o = bot.deps.billing.overview("acme-corp", now=bot.deps.clock())
    assert "acme-corp" in overview.text
    assert money(o.balance.outstanding, "USD", "en_US") in texts_of(overview.blocks or [])
    assert "overdue" in texts_of(overview.blocks or []).lower()  # INV-0003 is overdue in the demo
    quick = buttons(overview.blocks or [])
    assert {Action.OVERVIEW_INVOICES, Action.OVERVIEW_USAGE, Action.INVOICE_PDF} <= set(quick)
    oldest_unpaid = [i for i in o.recent_invoices if i.status in (InvoiceStatus.OVERDUE, InvoiceStatus.PENDING)][-1]
    assert quick[Action.PAY]["url"] == oldest_unpaid.payment_url
    chart = files_in_thread(bot, "C_FINANCE", overview.ts)
    assert len(chart) == 1 and chart[0].content.startswith(b"\x89PNG") and chart[0].alt_txt


def test_overview_outside_a_linked_channel_is_ephemeral_and_the_chart_goes_to_the_dm(bot: BotHarness) -> None:
    bot.command("overview", channel="C_GENERAL")
    bot.settle()
    assert bot.fake.messages("C_GENERAL") == []  # nobody else saw billing data
    assert "acme-corp" in bot.last_text("C_GENERAL")  # the default account, privately
    dm = [f for f in bot.fake.files() if f.channel == "D_ADMIN"]
    assert dm and dm[0].content.startswith(b"\x89PNG")


def test_reader_locale_formats_money_for_a_german_viewer(bot: BotHarness) -> None:
    bot.command("invoices", user="U_VIEWER")
    bot.settle()
    listing = bot.fake.messages("C_FINANCE")[-1]
    total = acme_invoice(bot, "INV-0003").summary.total
    assert money(total, "USD", "de_DE") in texts_of(listing.blocks or [])  # "20.977,52 $"


# --- invoices ------------------------------------------------------------------------------------------------


def test_invoices_overdue_lists_exactly_the_overdue_ones(bot: BotHarness) -> None:
    bot.command("invoices overdue")
    bot.settle()
    listing = bot.fake.messages("C_FINANCE")[-1]
    shown = texts_of(listing.blocks or [])
    assert "INV-0003" in shown and "Overdue" in shown
    assert "INV-0004" not in shown and "INV-0002" not in shown
    assert listing.text.lower().startswith("1 overdue invoice")


def test_invoices_pages_forward_with_a_keyset_cursor_in_the_button(bot: BotHarness) -> None:
    bot.command("invoices")
    bot.settle()
    first = bot.fake.messages("C_FINANCE")[-1]
    # acme-corp has 5 invoices: one page of 10; ask the core how many there are and check the page shows them.
    page = bot.deps.billing.invoices("acme-corp", InvoiceQuery(limit=2), now=bot.deps.clock())
    assert page.next_cursor is not None
    everything = texts_of(first.blocks or [])
    assert all(f"INV-000{n}" in everything for n in range(1, 6))
    state = {"s": [], "f": None, "t": None, "q": None, "a": 1, "c": page.next_cursor, "p": 2}
    bot.click(Action.INVOICES_PAGE, json.dumps(state), message=first)
    bot.settle()
    replaced = bot.fake.messages("C_FINANCE")[-1]
    assert replaced.ts == first.ts and replaced.edited  # the page replaced the list, no new message
    shown = texts_of(replaced.blocks or [])
    assert "INV-0001" not in shown and "INV-0003" in shown


def test_filter_modal_shows_end_before_start_on_the_field_and_applies_a_good_filter(bot: BotHarness) -> None:
    bot.command("invoices")
    bot.settle()
    listing = bot.fake.messages("C_FINANCE")[-1]
    bot.click(Action.INVOICES_FILTER, buttons(listing.blocks or [])[Action.INVOICES_FILTER]["value"], message=listing)
    bot.settle()
    modal = bot.fake.views()[-1].payload
    assert modal["callback_id"] == View.INVOICE_FILTER
    bad = {Block.FILTER_FROM: {Field.VALUE: {"type": "datepicker", "selected_date": "2026-10-01"}},
           Block.FILTER_TO: {Field.VALUE: {"type": "datepicker", "selected_date": "2026-09-01"}}}
    refused = bot.submit(modal, bad)
    assert refused.json()["response_action"] == "errors"
    assert "before the start date" in refused.json()["errors"][Block.FILTER_TO]
    good = {Block.FILTER_STATUS: {Field.VALUE: {"type": "multi_static_select",
                                                "selected_options": [{"value": "paid"}]}}}
    assert bot.submit(modal, good).status_code == 200
    bot.settle()
    shown = texts_of(bot.fake.messages("C_FINANCE")[-1].blocks or [])
    assert "INV-0004" in shown and "INV-0003" not in shown


def export_csv_of_listing(bot: BotHarness, command: str) -> Any:
    """`/billing <command>` in #finance, then its *Export CSV* button: the one file in the listing's thread."""
    bot.command(command)
    bot.settle()
    listing = bot.fake.messages("C_FINANCE")[-1]
    bot.click(Action.INVOICES_EXPORT_CSV, buttons(listing.blocks or [])[Action.INVOICES_EXPORT_CSV]["value"],
              message=listing)
    bot.settle()
    [upload] = files_in_thread(bot, "C_FINANCE", listing.ts)
    return upload


def test_export_csv_button_uploads_exactly_what_the_filter_matched(bot: BotHarness) -> None:
    upload = export_csv_of_listing(bot, "invoices unpaid")
    rows = list(csv.DictReader(io.StringIO(upload.content.decode("utf-8-sig"))))
    assert sorted(r["number"] for r in rows) == ["INV-0002", "INV-0003"]


def test_bad_invoice_filters_get_a_friendly_ephemeral_answer_with_an_example(bot: BotHarness) -> None:
    bot.command("invoices from 2026-10-01 to 2026-09-01")
    bot.settle()
    assert bot.fake.messages("C_FINANCE") == []  # a mistake is not broadcast to the channel
    answer = bot.last_text()
    assert "2026-09-01" in answer and "Try:" in answer


# --- one invoice and its files -----------------------------------------------------------------------------


def test_invoice_detail_then_pdf_and_csv_land_in_its_thread_and_agree_with_the_ledger(bot: BotHarness) -> None:
    bot.command("invoice inv-0003")
    bot.settle()
    detail_msg = bot.fake.messages("C_FINANCE")[-1]
    detail = acme_invoice(bot, "INV-0003")
    shown = texts_of(detail_msg.blocks or [])
    assert "INV-0003" in shown and money(detail.summary.amount_due, "USD", "en_US") in shown
    period = custom_period(detail.summary.period_start, detail.summary.period_end)
    usage = bot.deps.billing.usage("acme-corp", period, group_by="resource")
    assert "Resource usage" in shown and money(usage.by_resource[0].cost, "USD", "en_US") in shown
    value = buttons(detail_msg.blocks or [])[Action.INVOICE_PDF]["value"]
    bot.click(Action.INVOICE_PDF, value, message=detail_msg)
    bot.click(Action.INVOICE_CSV, buttons(detail_msg.blocks or [])[Action.INVOICE_CSV]["value"], message=detail_msg)
    bot.settle()
    uploads = {f.filename: f for f in files_in_thread(bot, "C_FINANCE", detail_msg.ts)}
    text = pdf_text(uploads["INV-0003.pdf"].content)
    assert "INV-0003" in text and money(detail.summary.total, "USD", "en_US") in text
    rows = list(csv.DictReader(io.StringIO(uploads["INV-0003.csv"].content.decode("utf-8-sig"))))
    assert sum(Decimal(r["amount"]) for r in rows if r["kind"] == "line") == detail.subtotal
    summary = {r["description"]: Decimal(r["amount"]) for r in rows if r["kind"] == "summary"}
    assert summary["total"] == detail.summary.total and summary["amount_due"] == detail.summary.amount_due
    # The period's cost per resource as bars, with alt text naming the largest.
    chart = uploads["INV-0003-usage.png"]
    assert chart.content.startswith(b"\x89PNG")
    top = usage.by_resource[0]
    assert chart.alt_txt and f"{top.key} {money(top.cost, 'USD', 'en_US')}" in chart.alt_txt


def test_receipt_button_on_a_paid_invoice(bot: BotHarness) -> None:
    bot.command("invoice INV-0004")
    bot.settle()
    detail_msg = bot.fake.messages("C_FINANCE")[-1]
    receipt = buttons(detail_msg.blocks or [])[Action.RECEIPT_PDF]
    bot.click(Action.RECEIPT_PDF, receipt["value"], message=detail_msg)
    bot.settle()
    [pdf] = [f for f in files_in_thread(bot, "C_FINANCE", detail_msg.ts) if f.filename.endswith(".pdf")]
    assert "INV-0004" in pdf_text(pdf.content)


def account_id(bot: BotHarness, name: str) -> int:
    from billing_core.db.queries import get_account

    with bot.db.unit_of_work() as s:
        return get_account(s, name).id


@pytest.mark.parametrize(("command", "action"), [("invoice INV-0003", Action.INVOICE_PDF),
                                                 ("invoice INV-0003", Action.INVOICE_CSV),
                                                 ("invoice INV-0004", Action.RECEIPT_PDF),
                                                 ("payments last 365 days", Action.RECEIPT_PDF),
                                                 ("usage month", Action.USAGE_EXPORT)])
def test_a_file_button_from_another_account_is_refused_politely(bot: BotHarness, command: str,
                                                                 action: Action) -> None:
    """A button carries its account; once the channel resolves another one (relinked), it sends no files."""
    bot.command(command)
    bot.settle()
    answer = bot.fake.messages("C_FINANCE")[-1]
    state = json.loads(buttons(answer.blocks or [])[action]["value"])
    assert state["a"] == account_id(bot, "acme-corp")
    stale = json.dumps({**state, "a": account_id(bot, "nordlicht-gmbh")})
    files_before = len(bot.fake.files())  # the usage answer's chart is already in its thread
    bot.click(action, stale, message=answer)
    bot.settle()
    assert len(bot.fake.files()) == files_before
    assert "another billing account" in bot.last_text()


def test_unknown_invoice_is_explained(bot: BotHarness) -> None:
    bot.command("invoice INV-9999")
    bot.settle()
    assert "INV-9999" in bot.last_text()


# --- usage, forecast, payments -----------------------------------------------------------------------------


def test_usage_by_provider_answers_with_totals_and_a_stacked_chart(bot: BotHarness) -> None:
    bot.command("usage month by provider")
    bot.settle()
    answer = bot.fake.messages("C_FINANCE")[-1]
    o = bot.deps.billing.overview("acme-corp", now=bot.deps.clock())
    assert money(o.cost_to_date, "USD", "en_US") in texts_of(answer.blocks or [])
    [chart] = files_in_thread(bot, "C_FINANCE", answer.ts)
    assert chart.content.startswith(b"\x89PNG") and chart.alt_txt
    assert "daily buckets" in texts_of(answer.blocks or [])


def test_usage_export_uploads_csv_and_pdf_report_of_the_figures_the_message_showed(bot: BotHarness) -> None:
    """Clicked days later, "last 7 days" still means the seven days the message answered for."""
    bot.command("usage last 7 days by deployment")
    bot.settle()
    answer = bot.fake.messages("C_FINANCE")[-1]
    asked_at = bot.deps.clock()
    summary = bot.deps.billing.usage("acme-corp", last_days(asked_at.date(), 7), group_by="deployment")
    assert money(summary.total_cost, "USD", "en_US") in texts_of(answer.blocks or [])
    bot.deps.clock = lambda: asked_at + timedelta(days=3)
    bot.click(Action.USAGE_EXPORT, buttons(answer.blocks or [])[Action.USAGE_EXPORT]["value"], message=answer)
    bot.settle()
    uploads = {f.filename: f for f in files_in_thread(bot, "C_FINANCE", answer.ts)}
    rows = list(csv.DictReader(io.StringIO(uploads["usage.csv"].content.decode("utf-8-sig"))))
    assert sum(Decimal(r["cost"]) for r in rows) == summary.total_cost
    assert min(r["bucket"] for r in rows) == summary.period.start.isoformat()
    pdf = PdfReader(io.BytesIO(uploads["usage-report.pdf"].content))
    assert money(summary.total_cost, "USD", "en_US") in "".join(page.extract_text() for page in pdf.pages)


def test_forecast_shows_the_projection_and_a_chart(bot: BotHarness) -> None:
    bot.command("forecast")
    bot.settle()
    answer = bot.fake.messages("C_FINANCE")[-1]
    p = bot.deps.billing.forecast("acme-corp", now=bot.deps.clock())
    assert money(p.projected_total, "USD", "en_US") in texts_of(answer.blocks or [])
    [chart] = files_in_thread(bot, "C_FINANCE", answer.ts)
    assert chart.content.startswith(b"\x89PNG")


def test_payments_list(bot: BotHarness) -> None:
    bot.command("payments last 365 days")
    bot.settle()
    answer = bot.fake.messages("C_FINANCE")[-1]
    assert "INV-0004" in texts_of(answer.blocks or [])


# --- budgets -------------------------------------------------------------------------------------------------


def test_budget_list_then_admin_sets_one_through_the_modal(bot: BotHarness) -> None:
    bot.command("budget")
    bot.settle()
    assert "monthly-total" in texts_of(bot.fake.messages("C_FINANCE")[-1].blocks or [])
    bot.command("budget set")
    bot.settle()
    modal = bot.fake.views()[-1].payload
    assert modal["callback_id"] == View.BUDGET
    name = f"e2e-{modal['id'][-6:].lower()}"

    def values(amount: str) -> dict[str, Any]:
        return {Block.BUDGET_NAME: {Field.VALUE: {"type": "plain_text_input", "value": name}},
                Block.BUDGET_AMOUNT: {Field.VALUE: {"type": "plain_text_input", "value": amount}},
                Block.BUDGET_THRESHOLDS: {Field.VALUE: {"type": "plain_text_input", "value": "50, 80, 100"}}}

    refused = bot.submit(modal, values("lots"))
    assert Block.BUDGET_AMOUNT in refused.json()["errors"]
    assert bot.submit(modal, values("12,500.00")).status_code == 200
    bot.settle()
    assert name in bot.fake.messages("C_FINANCE")[-1].text
    statuses = {b.name: b for b in bot.deps.billing.budgets("acme-corp", now=bot.deps.clock())}
    assert statuses[name].amount == Decimal("12500.00")
    bot.command(f"budget delete {name}")
    bot.settle()
    assert name not in {b.name for b in bot.deps.billing.budgets("acme-corp", now=bot.deps.clock())}


@pytest.mark.parametrize("locale", ["de-DE", "pt-BR"])
def test_an_admin_types_the_budget_amount_in_their_own_locale(bot: BotHarness, locale: str) -> None:
    admin = f"U_LOC{locale[:2].upper()}{len(bot.fake.calls())}X"
    bot.fake.add_user(User(admin, "greta", "Greta Admin", "Europe/Berlin", locale, is_admin=True))
    bot.command("budget set", user=admin)
    bot.settle()
    modal = bot.fake.views()[-1].payload
    name = f"loc-{modal['id'][-6:].lower()}"

    def values(amount: str) -> dict[str, Any]:
        return {Block.BUDGET_NAME: {Field.VALUE: {"type": "plain_text_input", "value": name}},
                Block.BUDGET_AMOUNT: {Field.VALUE: {"type": "plain_text_input", "value": amount}},
                Block.BUDGET_THRESHOLDS: {Field.VALUE: {"type": "plain_text_input", "value": "80"}}}

    refused = bot.submit(modal, values("12,500.00"), user=admin)  # en-US digits mean 12.5 to this reader
    assert "1.250,75" in refused.json()["errors"][Block.BUDGET_AMOUNT]
    assert bot.submit(modal, values("12.500,00"), user=admin).status_code == 200
    bot.settle()
    statuses = {b.name: b for b in bot.deps.billing.budgets("acme-corp", now=bot.deps.clock())}
    assert statuses[name].amount == Decimal("12500.00")
    bot.command(f"budget delete {name}", user=admin)
    bot.settle()


def budget_form(name: str, amount: str = "5000") -> dict[str, Any]:
    return {Block.BUDGET_NAME: {Field.VALUE: {"type": "plain_text_input", "value": name}},
            Block.BUDGET_AMOUNT: {Field.VALUE: {"type": "plain_text_input", "value": amount}},
            Block.BUDGET_THRESHOLDS: {Field.VALUE: {"type": "plain_text_input", "value": "80"}}}


def test_a_budget_form_is_acked_before_access_is_checked_and_a_refusal_is_said_after(bot: BotHarness) -> None:
    """Access and the write come after the ack (Slack's 3 s): the form closes, the refusal arrives as a message."""
    bot.command("budget set")
    bot.settle()
    modal = bot.fake.views()[-1].payload
    name = f"late-{modal['id'][-6:].lower()}"
    submitted = bot.submit(modal, budget_form(name), user="U_VIEWER")  # e.g. demoted since opening the form
    assert submitted.status_code == 200 and "errors" not in submitted.text
    bot.settle()
    assert "admin" in bot.last_text(user="U_VIEWER").lower()
    assert name not in {b.name for b in bot.deps.billing.budgets("acme-corp", now=bot.deps.clock())}


def test_a_budget_form_whose_save_fails_after_the_ack_tells_the_user(bot: BotHarness,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def database_down(*_: object, **__: object) -> None:
        raise RuntimeError("connection to the database was lost")

    bot.command("budget set")
    bot.settle()
    modal = bot.fake.views()[-1].payload
    monkeypatch.setattr(bot.deps.billing, "set_budget", database_down)
    submitted = bot.submit(modal, budget_form(f"fail-{modal['id'][-6:].lower()}"))
    assert submitted.status_code == 200 and "errors" not in submitted.text
    bot.settle()
    assert bot.fake.messages("C_FINANCE") == []
    assert "something went wrong" in bot.last_text().lower()


def test_a_viewer_cannot_change_budgets_and_the_refusal_is_audited(bot: BotHarness) -> None:
    bot.command("budget set", user="U_VIEWER")
    bot.settle()
    assert "admin" in bot.last_text(user="U_VIEWER").lower()
    assert not [v for v in bot.fake.views() if v.payload.get("callback_id") == View.BUDGET]


# --- export --------------------------------------------------------------------------------------------------


def test_export_invoices_pdf_is_a_zip_of_real_pdfs_with_progress(bot: BotHarness) -> None:
    bot.command("export invoices pdf")
    bot.settle(timeout=120)
    progress = bot.fake.messages("C_FINANCE")[-1]
    assert "invoice PDFs ready" in progress.text and progress.edited
    [archive] = files_in_thread(bot, "C_FINANCE", progress.ts)
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        names = sorted(zipped.namelist())
        assert names == [f"INV-000{n}.pdf" for n in range(1, 6)]
        assert "INV-0002" in pdf_text(zipped.read("INV-0002.pdf"))


def test_export_invoices_csv_amounts_sum_to_the_ledger(bot: BotHarness) -> None:
    bot.command("export invoices csv")
    bot.settle()
    [upload] = [f for f in bot.fake.files() if f.filename == "invoices.csv"]
    rows = list(csv.DictReader(io.StringIO(upload.content.decode("utf-8-sig"))))
    balance = bot.deps.billing.balance("acme-corp", now=bot.deps.clock())
    assert sum(Decimal(r["amount_due"]) for r in rows if r["status"] != "draft") == balance.outstanding


def test_an_export_over_the_cap_says_how_many_were_left_out(bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.handlers import ledger

    monkeypatch.setattr(ledger, "MAX_EXPORT", 2)  # acme-corp has 5 invoices
    bot.command("export invoices csv")
    bot.settle()
    answer = bot.fake.messages("C_FINANCE")[-1]
    assert "first 2 of 5 — narrow the filter" in answer.text
    [upload] = files_in_thread(bot, "C_FINANCE", answer.ts)
    assert len(list(csv.DictReader(io.StringIO(upload.content.decode("utf-8-sig"))))) == 2
    button_upload = export_csv_of_listing(bot, "invoices")
    assert "first 2 of 5 — narrow the filter" in (button_upload.initial_comment or "")


# --- help, mistakes, access --------------------------------------------------------------------------------


def test_help_lists_every_subcommand_with_examples(bot: BotHarness) -> None:
    bot.command("help")
    bot.settle()
    shown = texts_of(bot.answers()[-1]["blocks"])
    for example in ("/billing overview", "/billing invoices overdue last 90 days", "/billing invoice INV-0042",
                    "/billing usage month by provider", "/billing forecast", "/billing payments last 30 days",
                    "/billing budget set", "/billing export invoices paid from 2026-01-01 pdf",
                    "/billing link acme-corp", "/billing unlink", "/billing access grant @jane viewer",
                    "/billing help", "/billing reconcile 2026-10", "/billing alerts route overdue #finance"):
        assert f"e.g. `{example}`" in shown, example


def test_unknown_subcommand_suggests_the_closest_one(bot: BotHarness) -> None:
    bot.command("invoces overdue")
    bot.settle()
    assert "invoices" in bot.last_text()


def test_someone_without_a_role_is_refused_politely_and_audited(bot: BotHarness) -> None:
    bot.command("invoices", user="U_NOBODY")
    bot.settle()
    assert bot.fake.messages("C_FINANCE") == []
    assert "access" in bot.last_text(user="U_NOBODY").lower()
    with bot.db.unit_of_work() as session:
        actors = session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "access.denied")).all()
    assert any(actor.endswith("/U_NOBODY") for actor in actors)


def test_access_grant_then_the_new_viewer_reads_and_revoke_removes_it(bot: BotHarness) -> None:
    newcomer = f"U_NEW{len(bot.fake.calls())}X"
    bot.fake.add_user(User(newcomer, "dana", "Dana New", "Europe/Paris", "fr-FR"))
    bot.command(f"access grant <@{newcomer}|dana> viewer")
    bot.settle()
    bot.command("invoices overdue", user=newcomer)
    bot.settle()
    assert "INV-0003" in texts_of(bot.fake.messages("C_FINANCE")[-1].blocks or [])
    bot.command(f"access revoke <@{newcomer}>")
    bot.settle()
    before = len(bot.fake.messages("C_FINANCE"))
    bot.command("invoices", user=newcomer)
    bot.settle()
    assert len(bot.fake.messages("C_FINANCE")) == before


def test_link_needs_an_admin_and_makes_the_channel_public(bot: BotHarness) -> None:
    bot.command("link nordlicht-gmbh", channel="C_ENG", user="U_VIEWER")
    bot.settle()
    assert "admin" in bot.last_text("C_ENG", "U_VIEWER").lower()
    bot.command("link nordlicht-gmbh", channel="C_ENG")
    bot.settle()
    bot.command("invoices", channel="C_ENG")
    bot.settle()
    assert "INV-0006" in texts_of(bot.fake.messages("C_ENG")[-1].blocks or [])
    bot.command("unlink", channel="C_ENG")
    bot.settle()


# --- App Home ------------------------------------------------------------------------------------------------


def test_home_tab_shows_the_overview_with_the_chart(bot: BotHarness) -> None:
    from bot.sandbox.signing import app_home_opened

    assert bot.event(app_home_opened("U_ADMIN")).status_code == 200
    bot.settle()
    home = bot.fake.home_view("U_ADMIN")
    assert home is not None and home["type"] == "home"
    assert "acme-corp" in texts_of(home["blocks"])
    assert any(b["type"] == "image" for b in home["blocks"])


def test_home_tab_uploads_the_chart_again_when_the_cached_file_is_gone(bot: BotHarness) -> None:
    from bot.sandbox.signing import app_home_opened

    bot.event(app_home_opened("U_ADMIN"))
    bot.settle()
    [key] = bot.deps.home_charts
    bot.deps.home_charts[key] = "F0DELETED99"  # e.g. the member deleted the chart from their DM
    bot.event(app_home_opened("U_ADMIN"))
    bot.settle()
    home = bot.fake.home_view("U_ADMIN")
    assert home is not None
    image = next(b for b in home["blocks"] if b["type"] == "image")
    assert image["slack_file"]["id"] == bot.deps.home_charts[key] != "F0DELETED99"


def test_home_tab_for_someone_without_access_explains_why(bot: BotHarness) -> None:
    from bot.sandbox.signing import app_home_opened

    bot.event(app_home_opened("U_NOBODY"))
    bot.settle()
    home = bot.fake.home_view("U_NOBODY")
    assert home is not None and "access" in texts_of(home["blocks"]).lower()


# --- provider outages ----------------------------------------------------------------------------------------


def test_forecast_payments_and_invoice_say_which_provider_is_unreachable(bot: BotHarness) -> None:
    """The same "figures may be incomplete" line the overview shows, on every answer built from synced data."""
    from billing_core.db.queries import get_account
    from billing_core.db.sync_models import add_endpoint, remove_endpoint
    from billing_core.sources.provider_api import RetryPolicy
    from billing_core.sources.sync import SyncOptions, sync_all
    from tests.fake_provider import refused_url

    with bot.db.unit_of_work() as s:
        add_endpoint(s, provider="Offline Cloud", base_url=refused_url(), token_env=None,
                     account=get_account(s, "acme-corp"), now=bot.deps.clock())
    try:
        fast = SyncOptions(policy=RetryPolicy(timeout=0.5, attempts=1), deadline=10)
        [status] = sync_all(bot.db, bot.deps.clock(), provider="Offline Cloud", options=fast)
        assert status.status == "failed"
        for command in ("forecast", "payments last 365 days", "invoice INV-0003"):
            bot.command(command)
            bot.settle()
            shown = texts_of(bot.fake.messages("C_FINANCE")[-1].blocks or [])
            assert "provider Offline Cloud unreachable since" in shown, command
            assert "figures may be incomplete" in shown, command
    finally:  # the PostgreSQL demo schema is shared by the session's tests
        with bot.db.unit_of_work() as s:
            remove_endpoint(s, provider="Offline Cloud", account=get_account(s, "acme-corp"))


def test_hourly_usage_by_a_dimension_says_why_the_buckets_are_daily(bot: BotHarness) -> None:
    bot.command("usage month by model hourly")
    bot.settle()
    shown = texts_of(bot.fake.messages("C_FINANCE")[-1].blocks or [])
    assert "hourly is not available by model (dimensions are kept per day): daily buckets shown" in shown
    bot.command("usage today by model")  # today comes in hours when nothing is typed: the same note
    bot.settle()
    assert "daily buckets shown" in texts_of(bot.fake.messages("C_FINANCE")[-1].blocks or [])
    bot.command("usage today by provider hourly")  # standard groupings are kept per hour: nothing to explain
    bot.settle()
    shown = texts_of(bot.fake.messages("C_FINANCE")[-1].blocks or [])
    assert "hourly buckets" in shown and "not available" not in shown


def test_a_grouping_no_usage_carries_that_looks_like_a_typo_gets_did_you_mean(bot: BotHarness) -> None:
    bot.command("usage month by dployment")
    bot.settle()
    refusal = bot.last_text()
    assert "No usage is tagged with `dployment`: did you mean `by deployment`?" in refusal
    assert "/billing usage month by deployment" in refusal
    bot.command("usage month by model")  # a dimension the demo's usage carries: answered as data
    bot.settle()
    assert "No usage is tagged" not in texts_of(bot.fake.messages("C_FINANCE")[-1].blocks or [])
