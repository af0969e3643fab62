"""Documents from result dataclasses: invoice, receipt and usage-report PDFs (WeasyPrint + Jinja2) and CSV.

Contract: no Slack, no database session. Inputs are `billing_core.results` dataclasses; outputs are
bytes. CSV amounts are exact decimal strings (`money.plain`), never floats or locale formatting, so a
CSV sums to the invoice's total to the cent. PDFs use `fmt` for every figure, so they read like the
Slack message of the same invoice.
"""

from billing_core.exports.csv_export import invoice_lines_csv, invoices_csv, payments_csv, usage_csv
from billing_core.exports.pdf import Issuer, invoice_pdf, invoices_zip, receipt_pdf, usage_report_pdf

__all__ = [
    "Issuer",
    "invoice_lines_csv",
    "invoice_pdf",
    "invoices_csv",
    "invoices_zip",
    "payments_csv",
    "receipt_pdf",
    "usage_csv",
    "usage_report_pdf",
]
