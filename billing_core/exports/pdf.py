"""PDF documents rendered with WeasyPrint from autoescaped Jinja2 templates.

Nothing is fetched while rendering: the URL fetcher refuses everything but `data:` URIs (the chart is
embedded as one), so a document renders the same offline and cannot be made to call out.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import weasyprint

from billing_core import fmt
from billing_core.results import InvoiceDetail, PaymentInfo, UsageSummary

TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class Issuer:
    """Who issues the documents (shown at the top right)."""

    name: str = "Billing Bot"
    address: tuple[str, ...] = ("Demo Street 1", "10115 Berlin")
    email: str = "billing@billing-bot.example"


ISSUER = Issuer()


def _env(locale: str) -> jinja2.Environment:
    env = _base_env()
    env.filters.update(
        money=lambda amount, currency: fmt.money(amount, currency, locale),
        day=lambda value: fmt.day(value, locale),
        qty=lambda value, unit="": fmt.quantity(value, unit, locale),
        pct=lambda share: fmt.percent(share, locale),
        unit_price=lambda value, currency: fmt.unit_price(value, currency, locale),
    )
    return env


@lru_cache(maxsize=1)
def _base_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined)


@lru_cache(maxsize=1)
def _stylesheet() -> weasyprint.CSS:
    return weasyprint.CSS(filename=str(TEMPLATES / "base.css"))


def _url_fetcher() -> Any:
    """Only `data:` URIs: a document never reaches the network or the file system."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)


def _render(template: str, locale: str | None, **context: Any) -> bytes:
    loc = fmt.safe_locale(locale)
    html = _env(loc).get_template(template).render(lang=loc.split("_")[0], issuer=ISSUER, **context)
    document = weasyprint.HTML(string=html, url_fetcher=_url_fetcher(), base_url=str(TEMPLATES))
    return document.write_pdf(stylesheets=[_stylesheet()])  # type: ignore[no-any-return]


def invoice_pdf(detail: InvoiceDetail, *, locale: str | None = None) -> bytes:
    return _render("invoice.html", locale, d=detail, inv=detail.summary, cur=detail.summary.currency)


def receipt_pdf(payment: PaymentInfo, invoice: InvoiceDetail, *, locale: str | None = None) -> bytes:
    return _render("receipt.html", locale, p=payment, d=invoice)


def usage_report_pdf(summary: UsageSummary, *, chart_png: bytes | None = None, locale: str | None = None) -> bytes:
    chart = f"data:image/png;base64,{base64.b64encode(chart_png).decode()}" if chart_png else None
    return _render("usage.html", locale, s=summary, cur=summary.account.currency, chart=chart,
                   last_day=summary.period.dates()[-1])


def _invoice_job(args: tuple[InvoiceDetail, str | None]) -> tuple[str, bytes]:
    detail, locale = args
    return detail.summary.number, invoice_pdf(detail, locale=locale)


def invoices_zip(details: Iterable[InvoiceDetail], *, locale: str | None = None,
                 progress: Callable[[int, int], None] | None = None, workers: int | None = None,
                 executor: Executor | None = None) -> bytes:
    """A ZIP of `<number>.pdf` files, rendered on every core (WeasyPrint is CPU-bound): in `executor` (a
    process pool the caller keeps warm) or in a pool of `workers` processes made for this call."""
    jobs = [(d, locale) for d in details]
    count = workers or os.cpu_count() or 1
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive, contextlib.ExitStack() as stack:
        if executor is None and (count == 1 or len(jobs) < 4):
            rendered: Iterable[tuple[str, bytes]] = map(_invoice_job, jobs)
        else:
            pool = executor or stack.enter_context(ProcessPoolExecutor(max_workers=count))
            rendered = (future.result() for future in as_completed([pool.submit(_invoice_job, j) for j in jobs]))
        for done, (name, pdf) in enumerate(rendered, 1):
            archive.writestr(f"{name}.pdf", pdf)
            if progress:
                progress(done, len(jobs))
    return buffer.getvalue()
