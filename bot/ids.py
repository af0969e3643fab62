"""Every Slack identifier the bot uses, spelled once. A test checks each has a registered listener."""

from __future__ import annotations

from enum import StrEnum

COMMAND = "/billing"


class Action(StrEnum):
    INVOICES_PAGE = "invoices_page"  # Next / Previous; value = filter + cursor
    INVOICES_FILTER = "invoices_filter"  # opens the filter modal
    INVOICES_EXPORT_CSV = "invoices_export_csv"
    INVOICE_OPEN = "invoice_open"
    # File buttons carry {"n": invoice number, "a": account id}; the click is refused for another account.
    INVOICE_PDF = "invoice_pdf"
    INVOICE_CSV = "invoice_csv"
    PAY = "pay"  # URL button; acked only
    RECEIPT_PDF = "receipt_pdf"  # value adds {"p": payment id}
    OVERVIEW_INVOICES = "overview_invoices"
    OVERVIEW_USAGE = "overview_usage"
    USAGE_EXPORT = "usage_export"  # value = {"r": the usage request typed, "a": account id}
    BUDGET_SET = "budget_set"
    BUDGET_DELETE = "budget_delete"
    ALERT_ACK = "alert_ack"  # value = {"i": alert id}
    ALERT_VIEW_INVOICE = "alert_view_invoice"
    ALERT_PDF = "alert_pdf"  # the invoice PDF into the alert's thread
    ALERT_MORE = "alert_more"  # overflow: snooze 1 day / 1 week, mute the rule here


class View(StrEnum):
    INVOICE_FILTER = "invoice_filter_modal"
    BUDGET = "budget_modal"


class Block(StrEnum):
    FILTER_STATUS = "filter_status"
    FILTER_FROM = "filter_from"
    FILTER_TO = "filter_to"
    FILTER_SEARCH = "filter_search"
    BUDGET_NAME = "budget_name"
    BUDGET_AMOUNT = "budget_amount"
    BUDGET_SCOPE = "budget_scope"
    BUDGET_SCOPE_VALUE = "budget_scope_value"
    BUDGET_THRESHOLDS = "budget_thresholds"
    BUDGET_CHANNEL = "budget_channel"


class Field(StrEnum):
    """action_ids of input elements inside modals (one per block)."""

    VALUE = "value"
