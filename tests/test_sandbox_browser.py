"""The sandbox in a real browser: headless Debian chromium driven by Playwright against `start_sandbox`.

Each test starts the real sandbox in-process (fake Slack + UI + the bot's web app on free ports, a copy of the
seeded demo SQLite database), does what a person would do, and saves a screenshot under `test-artifacts/`.
Without /usr/bin/chromium (install it with scripts/system-deps.sh) the tests are skipped, unless
BILLING_REQUIRE_BROWSER is set, which makes a missing browser a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.runner import Sandbox, alerts_worker, start_sandbox

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT_MS = 30_000  # charts and PDFs render on a machine shared with other test runs

if not CHROMIUM.exists():
    if os.environ.get("BILLING_REQUIRE_BROWSER"):
        pytest.fail(f"BILLING_REQUIRE_BROWSER is set but {CHROMIUM} is missing (scripts/system-deps.sh installs it)",
                    pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed (scripts/system-deps.sh installs Debian's chromium)",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (dev extra) is not installed")
Page = Any  # playwright.sync_api.Page; its stubs are not part of the type-checked packages


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


def _sandbox(seeded_sqlite: Path, tmp_path: Path, *, worker: bool) -> Iterator[Sandbox]:
    database = tmp_path / "sandbox.db"
    shutil.copy(seeded_sqlite, database)
    sandbox = start_sandbox(f"sqlite:///{database}", port=0, companions=[alerts_worker] if worker else [])
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def sandbox(seeded_sqlite: Path, tmp_path: Path) -> Iterator[Sandbox]:
    yield from _sandbox(seeded_sqlite, tmp_path, worker=False)


@pytest.fixture
def sandbox_with_worker(seeded_sqlite: Path, tmp_path: Path) -> Iterator[Sandbox]:
    yield from _sandbox(seeded_sqlite, tmp_path, worker=True)


def open_page(browser: Any, sandbox: Sandbox, *, user: str = "U_ADMIN", channel: str = "C_FINANCE") -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{sandbox.url}/?as={user}&c={channel}")
    return page


def type_command(page: Page, text: str) -> None:
    box = page.locator("#composer-input")
    box.fill(text)
    box.press("Enter")


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"sandbox-{name}.png"))


def test_overview_with_its_chart_in_the_thread(browser: Any, sandbox: Sandbox) -> None:
    page = open_page(browser, sandbox)
    page.locator("#composer-input").fill("/billing inv")
    suggestions = page.locator("#suggestions li")
    assert suggestions.first.inner_text().startswith("invoices")  # autocomplete from bot.parsing.SUBCOMMANDS
    type_command(page, "/billing")

    page.locator(".bk-header", has_text="Billing — acme-corp").wait_for()
    chart = page.locator(".thread .file-image img").first
    chart.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=chart.element_handle())
    chart.scroll_into_view_if_needed()
    shot(page, "overview")
    assert "Outstanding" in page.locator("#feed").inner_text()


def test_overdue_invoices_are_listed_with_their_badge_and_what_is_due(browser: Any, sandbox: Sandbox) -> None:
    page = open_page(browser, sandbox)
    type_command(page, "/billing invoices overdue")
    answer = page.locator("#feed .msg", has_text="INV-0003").last
    answer.wait_for()
    shown = answer.inner_text()
    assert "overdue" in shown.lower()
    assert "INV-0004" not in shown and "INV-0002" not in shown  # the demo's paid and pending ones are not listed
    answer.scroll_into_view_if_needed()
    shot(page, "invoices-overdue")


def test_invoice_filter_modal_shows_the_bots_validation_error(browser: Any, sandbox: Sandbox) -> None:
    page = open_page(browser, sandbox)
    type_command(page, "/billing invoices")
    page.locator("button.bk-btn", has_text="Filter…").first.click()

    modal = page.locator("form.modal")
    modal.wait_for()
    modal.locator('[data-block-id="filter_from"] input[type=date]').fill("2026-10-01")
    modal.locator('[data-block-id="filter_to"] input[type=date]').fill("2026-09-01")
    modal.locator("button[type=submit]").click()

    error = modal.locator('[data-block-id="filter_to"] .field-error')
    error.wait_for()
    assert "before the start date" in error.inner_text()
    shot(page, "invoice-filter-error")

    modal.locator('[data-block-id="filter_to"] input[type=date]').fill("2026-12-31")
    modal.locator("button[type=submit]").click()
    modal.wait_for(state="detached")
    page.locator("#feed").get_by_text("from 2026-10-01").first.wait_for()  # the list says which dates it shows
    shot(page, "invoice-list-filtered")


def test_download_pdf_posts_the_invoice_pdf_into_the_thread(browser: Any, sandbox: Sandbox) -> None:
    page = open_page(browser, sandbox)
    type_command(page, "/billing invoice INV-0003")
    page.locator("button.bk-btn", has_text="Download PDF").first.click()

    link = page.locator('.thread a.file-download[data-mimetype="application/pdf"]')
    link.wait_for()
    link.scroll_into_view_if_needed()
    shot(page, "invoice-pdf-thread")
    answer = page.request.get(link.get_attribute("href"))
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.body().startswith(b"%PDF")
    assert link.get_attribute("download") == "INV-0003.pdf"

    page.locator(".reply-btn").first.click()  # a person answers in the thread
    type_command(page, "Paid today, see the PDF")
    page.locator(".thread .msg", has_text="Paid today, see the PDF").wait_for()
    assert "3 replies" in page.locator(".thread-count").first.inner_text()  # the usage chart, the PDF, the person


def test_an_alert_from_the_worker_is_acknowledged_and_another_snoozed(browser: Any,
                                                                     sandbox_with_worker: Sandbox) -> None:
    page = open_page(browser, sandbox_with_worker)
    alert = page.locator(".msg", has=page.locator(".bk-header", has_text="Overdue invoice")).first
    alert.wait_for()  # posted live by the worker's delivery job, no reload
    alert.locator("button.bk-btn", has_text="Acknowledge").click()

    done = alert.locator(".bk-context", has_text="Acknowledged by")
    done.wait_for()
    assert "@Alice Admin" in done.inner_text()
    alert.scroll_into_view_if_needed()
    shot(page, "alert-acknowledged")

    budget = page.locator(".msg", has=page.locator(".bk-header", has_text="Budget alert")).first
    budget.locator("select.bk-overflow").select_option(label="Snooze 1 day")  # overflow menu → block_actions
    page.locator(".msg.ephemeral", has_text="snoozed until").wait_for()


def test_the_home_tab_is_published_when_opened(browser: Any, sandbox: Sandbox) -> None:
    page = open_page(browser, sandbox, channel="home")
    page.locator(".home .bk-header").first.wait_for()
    image = page.locator(".home img").first
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    shot(page, "home")


def test_someone_without_access_is_told_so_privately(browser: Any, sandbox: Sandbox) -> None:
    page = open_page(browser, sandbox, user="U_NOBODY")
    type_command(page, "/billing invoices overdue")
    refusal = page.locator(".msg.ephemeral", has_text="don't have access")
    refusal.wait_for()
    assert "Only visible to you" in refusal.inner_text()
    shot(page, "no-access")


def test_the_budget_modal_refuses_a_bad_amount_then_saves(browser: Any, sandbox: Sandbox) -> None:
    page = open_page(browser, sandbox)
    type_command(page, "/billing budget set")
    modal = page.locator("form.modal", has_text="Set a budget")
    modal.wait_for()
    modal.locator('[data-block-id="budget_name"] input').fill("sandbox-check")
    modal.locator('[data-block-id="budget_amount"] input').fill("lots")
    modal.locator("button[type=submit]").click()

    error = modal.locator('[data-block-id="budget_amount"] .field-error')
    error.wait_for()
    shot(page, "budget-modal-error")

    modal.locator('[data-block-id="budget_amount"] input').fill("25000")
    modal.locator('[data-block-id="budget_channel"] select').select_option("C_FINANCE")
    modal.locator("button[type=submit]").click()
    modal.wait_for(state="detached")
    saved = page.locator(".msg", has_text="sandbox-check")
    saved.wait_for()
    assert "$25,000.00" in saved.inner_text()
    shot(page, "budget-saved")
