"""Invoice, receipt and usage-report PDFs read back as text, and CSVs that add up to the cent."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

import charts
from billing_core import exports, fmt
from billing_core.db.engine import Database
from billing_core.db.migrate import upgrade
from billing_core.demo import seed_demo
from billing_core.periods import Granularity, month_period
from billing_core.results import InvoiceDetail, InvoiceLine, InvoiceQuery, InvoiceStatus
from billing_core.service import Billing

NOW = datetime(2026, 11, 22, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def billing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Billing]:
    db = Database(f"sqlite:///{Path(tmp_path_factory.mktemp('docs')) / 'demo.db'}")
    upgrade(db)
    with db.unit_of_work() as s:
        seed_demo(s, now=NOW)
    yield Billing(db)
    db.dispose()


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def overdue_invoice(billing: Billing) -> InvoiceDetail:
    page = billing.invoices("acme-corp", InvoiceQuery(statuses=(InvoiceStatus.OVERDUE,)), now=NOW)
    return billing.invoice("acme-corp", page.items[0].number, now=NOW)


def test_invoice_pdf_shows_the_databases_number_dates_and_totals(billing: Billing) -> None:
    detail = overdue_invoice(billing)
    text = pdf_text(exports.invoice_pdf(detail))
    inv = detail.summary
    assert f"Invoice {inv.number}" in text and "OVERDUE" in text
    for figure in (inv.total, inv.amount_due, inv.amount_paid, detail.subtotal, detail.tax):
        assert fmt.money(figure, "USD") in text
    assert fmt.day(inv.due_date) in text and fmt.day(inv.issue_date) in text
    assert "RCT-" in text and "Page 1 of 1" in text
    total_in_pdf = re.search(r"Total\s*\$([\d,]+\.\d\d)", text)
    assert total_in_pdf and Decimal(total_in_pdf.group(1).replace(",", "")) == inv.total


def test_long_invoices_flow_over_pages_with_numbers(billing: Billing) -> None:
    detail = overdue_invoice(billing)
    lines = tuple(InvoiceLine(f"Line item {i}", "cpu", Decimal(i), "vCPU-h", Decimal("0.5"), Decimal(i) / 2)
                  for i in range(1, 81))
    text = pdf_text(exports.invoice_pdf(replace(detail, lines=lines)))
    assert "Page 2 of" in text and "Line item 80" in text


def test_user_supplied_text_is_escaped_not_rendered(billing: Billing) -> None:
    detail = overdue_invoice(billing)
    evil = replace(detail, account=replace(detail.account, name="<b>Evil</b> & <script>alert(1)</script>"))
    text = pdf_text(exports.invoice_pdf(evil))
    assert "<b>Evil</b> & <script>alert(1)</script>" in text


def test_locale_formats_money_the_readers_way(billing: Billing) -> None:
    detail = billing.invoice("nordlicht-gmbh", billing.invoices("nordlicht-gmbh", InvoiceQuery(), now=NOW)
                             .items[1].number, now=NOW)
    text = pdf_text(exports.invoice_pdf(detail, locale="de_DE"))
    assert fmt.money(detail.summary.total, "EUR", "de_DE").replace("\xa0", " ") in text.replace("\xa0", " ")


def test_invoice_csv_reproduces_the_total_to_the_cent(billing: Billing) -> None:
    detail = overdue_invoice(billing)
    rows = list(csv.DictReader(io.StringIO(exports.invoice_lines_csv(detail).decode("utf-8"))))
    lines = sum(Decimal(r["amount"]) for r in rows if r["kind"] == "line")
    summary = {r["description"]: Decimal(r["amount"]) for r in rows if r["kind"] == "summary"}
    assert lines == summary["subtotal"] == detail.subtotal
    parts = ("subtotal", "fee_platform", "fee_provider", "fee_network", "tax", "discount", "credits_applied")
    assert sum(summary[k] for k in parts) == summary["total"] == detail.summary.total
    assert summary["amount_due"] == detail.summary.amount_due


def test_invoice_list_csv_matches_the_list_totals(billing: Billing) -> None:
    page = billing.invoices("acme-corp", InvoiceQuery(limit=100), now=NOW)
    rows = list(csv.DictReader(io.StringIO(exports.invoices_csv(page.items).decode("utf-8"))))
    assert [r["number"] for r in rows] == [i.number for i in page.items]
    assert sum(Decimal(r["total"]) for r in rows) == page.totals


def test_usage_report_pdf_and_csv_agree_with_the_summary(billing: Billing) -> None:
    summary = billing.usage("acme-corp", month_period(NOW.date()), group_by="deployment",
                            granularity=Granularity.DAY)
    text = pdf_text(exports.usage_report_pdf(summary, chart_png=charts.usage_stacked_png(summary)))
    assert fmt.money(summary.total_cost, "USD") in text and "ml-training" in text
    rows = list(csv.DictReader(io.StringIO(exports.usage_csv(summary).decode("utf-8"))))
    assert sum(Decimal(r["cost"]) for r in rows) == summary.total_cost


def test_receipt_pdf(billing: Billing) -> None:
    detail = overdue_invoice(billing)
    payment = next(p for p in detail.payments if p.receipt_number)
    text = pdf_text(exports.receipt_pdf(payment, detail))
    assert payment.receipt_number and payment.receipt_number in text
    assert fmt.money(payment.amount, "USD") in text and detail.summary.number in text


def test_zip_of_pdfs_has_one_valid_pdf_per_invoice_and_reports_progress(billing: Billing) -> None:
    details = billing.invoice_details("orbit-dao", InvoiceQuery(), now=NOW)
    seen: list[tuple[int, int]] = []
    archive = zipfile.ZipFile(io.BytesIO(exports.invoices_zip(details, progress=lambda d, t: seen.append((d, t)),
                                                              workers=2)))
    assert sorted(archive.namelist()) == sorted(f"{d.summary.number}.pdf" for d in details)
    for name in archive.namelist():
        assert name.removesuffix(".pdf") in pdf_text(archive.read(name))
    assert seen[-1] == (len(details), len(details))


def test_documents_never_fetch_anything() -> None:
    from billing_core.exports.pdf import _url_fetcher

    with pytest.raises(Exception):  # noqa: B017 - WeasyPrint's own error type varies by version
        _url_fetcher().fetch("http://127.0.0.1:9/secret")
