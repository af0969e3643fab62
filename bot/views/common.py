"""Pieces every view uses: the reader's locale, escaping, status badges, errors and small blocks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from billing_core import fmt
from billing_core.errors import BillingError
from billing_core.results import InvoiceStatus
from billing_core.sync_status import ProviderOutage

Block = dict[str, Any]
Message = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_VALUE = 2000

BADGES = {
    InvoiceStatus.OVERDUE: ":red_circle: Overdue",
    InvoiceStatus.PENDING: ":large_yellow_circle: Pending",
    InvoiceStatus.PAID: ":large_green_circle: Paid",
    InvoiceStatus.DRAFT: ":white_circle: Draft",
    InvoiceStatus.CANCELLED: ":black_circle: Cancelled",
}


@dataclass(frozen=True)
class Reader:
    """Who reads the message: money and dates are written for their locale and time zone."""

    locale: str = "en_US"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    def money(self, amount: Decimal, currency: str) -> str:
        return fmt.money(amount, currency, self.locale)

    def unit_price(self, price: Decimal, currency: str) -> str:
        return fmt.unit_price(price, currency, self.locale)

    def day(self, value: date) -> str:
        return fmt.day(value, self.locale)

    def moment(self, value: datetime) -> str:
        return fmt.moment(value, self.tz, self.locale)


def escape(text: str) -> str:
    """Neutralise user-supplied text in mrkdwn: no injected links, mentions or @channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, emoji: bool = True) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, 150), "emoji": emoji}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text)}


def section(text: str, *, accessory: Block | None = None, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}}
    if accessory:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id
    return block


def fields(*pairs: tuple[str, str]) -> Block:
    return {"type": "section", "fields": [
        {"type": "mrkdwn", "text": clip(f"*{label}*\n{value}", MAX_FIELD_TEXT)} for label, value in pairs[:10]
    ]}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(t, MAX_SECTION_TEXT)} for t in texts[:10]]}


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str | None = None, *, style: str | None = None,
           url: str | None = None) -> Block:
    element: Block = {"type": "button", "text": plain(clip(text, 75)), "action_id": action_id}
    if value is not None:
        element["value"] = clip(value, MAX_VALUE)
    if style:
        element["style"] = style
    if url:
        element["url"] = url
    return element


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements[:25])}
    if block_id:
        block["block_id"] = block_id
    return block


def pack(data: dict[str, Any]) -> str:
    """A button value: compact JSON (Slack allows 2000 characters)."""
    value = json.dumps(data, separators=(",", ":"), default=str)
    if len(value) > MAX_VALUE:
        raise ValueError("button value too long")
    return value


def unpack(value: str | None) -> dict[str, Any]:
    try:
        data = json.loads(value or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def message(text: str, blocks: list[Block]) -> Message:
    """A message with its plain-text fallback, trimmed to Slack's 50 blocks."""
    if len(blocks) > MAX_BLOCKS:
        blocks = [*blocks[: MAX_BLOCKS - 1], context("…more than fits in one message; use the filters or export.")]
    return {"text": clip(text, 3000), "blocks": blocks}


def error_message(error: BillingError) -> Message:
    text = f":warning: {escape(error.message)}"
    blocks = [section(f":warning: {escape(error.message)}")]
    if error.hint:
        blocks.append(context(f"Try: {escape(error.hint)}"))
    return message(text + (f" Try: {escape(error.hint)}" if error.hint else ""), blocks)


def working_message(what: str) -> Message:
    return message(f"Working on it: {what}…", [context(f":hourglass_flowing_sand: Working on it: {what}…")])


def unexpected_message(reference: str) -> Message:
    text = f"Sorry, something went wrong on our side (reference `{reference}`). It has been logged; please try again."
    return message(text, [section(f":x: {text}")])


def staleness_blocks(outages: Sequence[ProviderOutage], reader: Reader) -> list[Block]:
    """One warning line per provider whose feed is down: say the figures may be incomplete, never hide it."""
    if not outages:
        return []
    return [context(*(f":warning: {staleness_line(o, reader)}" for o in outages))]


def staleness_line(o: ProviderOutage, reader: Reader) -> str:
    state = "unreachable" if o.status != "partial" else "only partly synced"
    return f"provider {escape(o.provider)} {state} since {reader.moment(o.since)}, figures may be incomplete"


def pct(value: Decimal) -> str:
    return f"{value:.0f}%"


def bar(share: Decimal, width: int = 10) -> str:
    """A text progress bar for budgets and plan usage (readable on a phone, no image needed)."""
    filled = max(0, min(width, int(share * width)))
    return "▰" * filled + "▱" * (width - filled)
