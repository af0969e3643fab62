"""Stripe-shaped JSON → ledger records (pure: no database, no network).

Reads what Stripe's API and web-hooks send: a single object, a JSON array, Stripe's list envelope
`{"object": "list", "data": [...]}`, or web-hook events `{"object": "event", "data": {"object": ...}}`
(in any mix), from a file's bytes (`parse_file`) or already decoded (`parse_document`: the objects of
`stripe_api`'s list pages). Invoices, charges and payment intents become `InvoiceIn`/`PaymentIn`; other
objects (customers, products…) are counted as skipped.

- **Amounts** are Stripe's integer minor units, scaled by the currency's ISO 4217 exponent
  (`billing_core.money.currency_exponent`: USD 1999 → 19.99, JPY 1999 → 1999, KWD 1999 → 1.999).
- **Invoice totals**: subtotal = Stripe `subtotal`; tax = the *exclusive* taxes (inclusive tax is
  already inside the line amounts); discount = subtotal + exclusive tax − `total`; credits applied =
  `total` − `amount_due` (customer balance used). So the ledger's total equals what Stripe asked the
  customer to pay (`amount_due`), and the ledger's invariants (total, amount due, paid ⇔ nothing due)
  hold. Lines are Stripe's embedded line items (a first page when Stripe truncated them; the subtotal
  is Stripe's either way).
- **Statuses**: draft → draft; open → pending; paid → paid; void → cancelled; uncollectible →
  pending — still owed, and the bot derives *overdue* from the due date like for every open invoice
  (an auto-charged invoice has no due date: its due date is its issue date, so it shows overdue);
  a draft deleted in Stripe (`invoice.deleted` event) → cancelled.
- **Payments**: one payment per payment intent (a charge and its payment intent are the same
  payment, so importing both never counts it twice; a charge without an intent is keyed by its own id).
  succeeded → confirmed (amount net of refunds; refunded in full → failed, so it no longer counts);
  pending/processing/requires_* → pending; failed/canceled → failed. A paid invoice also carries
  its settlement (its payment intent, or `<invoice id>:paid` when paid out of band) so it stays paid
  when its charges are not imported; a charge or intent imported later updates that same payment.
- **Account and dates**: every object goes to the account named on the command line; objects in
  another currency than the account's are rejected; dates are the account's local dates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from billing_core.errors import InvalidInput
from billing_core.money import MICRO, currency_exponent, normalize_currency
from billing_core.records import InvoiceIn, LineIn, PaymentIn
from billing_core.results import InvoiceStatus, PaymentMethod, PaymentStatus

SOURCE = "stripe"
INVOICE_STATUS = {
    "draft": InvoiceStatus.DRAFT, "open": InvoiceStatus.PENDING, "paid": InvoiceStatus.PAID,
    "uncollectible": InvoiceStatus.PENDING, "void": InvoiceStatus.CANCELLED,
}
CHARGE_STATUS = {"succeeded": PaymentStatus.CONFIRMED, "pending": PaymentStatus.PENDING,
                 "failed": PaymentStatus.FAILED}
INTENT_STATUS = {
    "succeeded": PaymentStatus.CONFIRMED, "processing": PaymentStatus.PENDING,
    "requires_capture": PaymentStatus.PENDING, "requires_confirmation": PaymentStatus.PENDING,
    "requires_action": PaymentStatus.PENDING, "requires_payment_method": PaymentStatus.PENDING,
    "canceled": PaymentStatus.FAILED,
}
BANK_METHODS = frozenset({"us_bank_account", "sepa_debit", "bacs_debit", "acss_debit", "au_becs_debit",
                          "bank_transfer", "customer_balance", "ach_debit", "ach_credit_transfer", "sofort",
                          "ideal", "bancontact", "giropay", "eps", "p24", "fpx", "blik", "pay_by_bank"})
ONCHAIN_METHODS = frozenset({"crypto"})

@dataclass(frozen=True)
class StripeRejection:
    object_id: str  # the Stripe id, or "(file)" when the file itself is unreadable
    reason: str

    def __str__(self) -> str:
        return f"{self.object_id}: {self.reason}"


@dataclass
class StripeBatch:
    invoices: list[InvoiceIn] = field(default_factory=list)
    payments: list[PaymentIn] = field(default_factory=list)  # from charges and payment intents
    settlements: list[PaymentIn] = field(default_factory=list)  # what paid invoices say paid them
    skipped: int = 0
    rejections: list[StripeRejection] = field(default_factory=list)


class _Bad(Exception):
    """A Stripe object that cannot be imported; the message says which field and why."""


def parse_file(data: bytes, *, account_id: int, currency: str, tz: ZoneInfo) -> StripeBatch:
    """Every invoice and payment in one Stripe JSON file, newest snapshot per object."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        return StripeBatch(rejections=[StripeRejection("(file)", f"not a JSON document ({exc})")])
    return parse_document(document, account_id=account_id, currency=currency, tz=tz)


def parse_document(document: Any, *, account_id: int, currency: str, tz: ZoneInfo) -> StripeBatch:
    """Every invoice and payment in already-decoded Stripe JSON (any shape `parse_file` reads, e.g. the
    objects of API list pages), newest snapshot per object."""
    batch = StripeBatch()
    latest: dict[tuple[str, str], tuple[int, int, dict[str, Any], str]] = {}
    for order, (obj, event_type, when) in enumerate(_objects(document)):
        kind, object_id = obj.get("object"), obj.get("id")
        if kind not in ("invoice", "charge", "payment_intent") or not isinstance(object_id, str):
            batch.skipped += 1
            continue
        key = (kind, object_id)
        if key not in latest or (when, order) >= latest[key][:2]:
            latest[key] = (when, order, obj, event_type)
    parse = _Parser(account_id, normalize_currency(currency), tz)
    for (kind, object_id), (_when, _order, obj, event_type) in sorted(latest.items(), key=lambda kv: kv[1][:2]):
        try:
            if kind == "invoice":
                invoice, settlement = parse.invoice(obj, deleted=event_type == "invoice.deleted")
                batch.invoices.append(invoice)
                if settlement:
                    batch.settlements.append(settlement)
            else:
                batch.payments.append(parse.charge(obj) if kind == "charge" else parse.intent(obj))
        except (_Bad, InvalidInput) as exc:
            batch.rejections.append(StripeRejection(object_id, str(exc.args[0])))
        except (KeyError, TypeError, AttributeError, ValueError, InvalidOperation) as exc:
            batch.rejections.append(StripeRejection(object_id, f"malformed {kind} ({type(exc).__name__}: {exc})"))
    batch.payments = list({p.external_id: p for p in batch.payments}.values())  # a charge and its intent: one
    return batch


def without_number(invoice: InvoiceIn) -> InvoiceIn:
    """The invoice with the ledger's own number instead of Stripe's (when Stripe's is already taken)."""
    return replace(invoice, number=None)


def _objects(document: Any, event_type: str = "", when: int | None = None) -> Iterator[tuple[dict[str, Any], str,
                                                                                            int]]:
    """(object, event type, event or object creation time) for every object in the document."""
    if isinstance(document, list):
        for item in document:
            yield from _objects(item)
        return
    if not isinstance(document, dict):
        return
    kind = document.get("object")
    if kind == "list" and isinstance(document.get("data"), list):
        yield from _objects(document["data"])
    elif kind == "event" and isinstance(document.get("data"), dict):
        inner = document["data"].get("object")
        if isinstance(inner, dict):
            yield inner, str(document.get("type", "")), _int(document.get("created"), 0)
    else:
        yield document, event_type, when if when is not None else _int(document.get("created"), 0)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class _Parser:
    def __init__(self, account_id: int, currency: str, tz: ZoneInfo) -> None:
        self.account_id = account_id
        self.currency = currency
        self.tz = tz

    # --- money and time ---

    def _currency(self, obj: dict[str, Any]) -> tuple[str, Callable[[Any, str], Decimal]]:
        raw = obj.get("currency")
        if not isinstance(raw, str):
            raise _Bad("missing field currency")
        code = normalize_currency(raw)
        if code != self.currency:
            raise _Bad(f"in {code}, but the account bills in {self.currency}")
        exponent = currency_exponent(code)

        def minor(value: Any, name: str) -> Decimal:
            if not isinstance(value, int) or isinstance(value, bool):
                raise _Bad(f"field {name} must be an integer amount in minor units, not {value!r}")
            return Decimal(value).scaleb(-exponent)

        return code, minor

    def _instant(self, value: Any, name: str) -> datetime:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Bad(f"field {name} must be a Unix timestamp, not {value!r}")
        return datetime.fromtimestamp(value, UTC)

    def _day(self, value: Any, name: str) -> date:
        return self._instant(value, name).astimezone(self.tz).date()

    # --- invoices ---

    def invoice(self, obj: dict[str, Any], *, deleted: bool) -> tuple[InvoiceIn, PaymentIn | None]:
        code, minor = self._currency(obj)
        status_text = obj.get("status")
        if status_text not in INVOICE_STATUS:
            raise _Bad(f"unknown invoice status {status_text!r}")
        status = InvoiceStatus.CANCELLED if deleted else INVOICE_STATUS[status_text]
        subtotal, total = minor(obj.get("subtotal"), "subtotal"), minor(obj.get("total"), "total")
        amount_due = minor(obj.get("amount_due"), "amount_due")
        tax = self._exclusive_tax(obj, minor)
        discount, credits = subtotal + tax - total, total - amount_due
        if discount < 0:
            raise _Bad(f"total {total} exceeds subtotal {subtotal} plus tax {tax}")
        if credits < 0:
            raise _Bad(f"amount_due {amount_due} exceeds total {total} (a balance carried over is not supported)")
        transitions = obj.get("status_transitions") or {}
        issued = self._day(transitions.get("finalized_at") or obj.get("created"), "created")
        due = self._day(obj["due_date"], "due_date") if obj.get("due_date") else issued
        lines = self._lines(obj, minor)
        start, end = self._period(obj, issued)
        invoice = InvoiceIn(
            account_id=self.account_id, source=SOURCE, external_id=obj["id"], status=status, issue_date=issued,
            due_date=max(due, issued), period_start=start, period_end=end, currency=code, lines=lines,
            number=obj.get("number") or None, subtotal=subtotal, tax=tax, discount=discount,
            credits_applied=credits, payment_url=obj.get("hosted_invoice_url") or None,
        )
        return invoice, self._settlement(obj, status, minor)

    def _exclusive_tax(self, obj: dict[str, Any], minor: Callable[[Any, str], Decimal]) -> Decimal:
        """Tax added on top of the lines (inclusive tax is already inside them), across API versions."""
        if isinstance(obj.get("total_taxes"), list):  # API 2025-03+
            return sum((minor(t.get("amount"), "total_taxes.amount") for t in obj["total_taxes"]
                        if t.get("tax_behavior") != "inclusive"), Decimal(0))
        if isinstance(obj.get("total_tax_amounts"), list):
            return sum((minor(t.get("amount"), "total_tax_amounts.amount") for t in obj["total_tax_amounts"]
                        if not t.get("inclusive")), Decimal(0))
        return minor(obj["tax"], "tax") if obj.get("tax") is not None else Decimal(0)

    def _lines(self, obj: dict[str, Any], minor: Callable[[Any, str], Decimal]) -> tuple[LineIn, ...]:
        exponent = currency_exponent(self.currency)
        lines = []
        for item in (obj.get("lines") or {}).get("data") or []:
            amount = minor(item.get("amount"), "lines.amount")
            quantity = Decimal(item.get("quantity") or 1)
            price = item.get("price") or (item.get("pricing") or {}).get("price_details") or {}
            decimal_text = (item.get("pricing") or {}).get("unit_amount_decimal") or price.get("unit_amount_decimal")
            try:
                unit_price = Decimal(decimal_text).scaleb(-exponent) if decimal_text else amount / quantity
            except (InvalidOperation, ZeroDivisionError):
                raise _Bad(f"line {item.get('id')}: unit price {decimal_text!r} is not a number") from None
            description = item.get("description") or price.get("nickname") or "Stripe line item"
            lines.append(LineIn(str(description)[:500], quantity, "unit",
                                unit_price.quantize(MICRO, rounding=ROUND_HALF_EVEN), amount))
        return tuple(lines)

    def _period(self, obj: dict[str, Any], issued: date) -> tuple[date, date]:
        """Service period: the lines' periods if any, else the invoice's; an end instant is exclusive."""
        spans = [(li["period"]["start"], li["period"]["end"]) for li in (obj.get("lines") or {}).get("data") or []
                 if isinstance(li.get("period"), dict) and li["period"].get("start") and li["period"].get("end")]
        if spans:
            first, last = min(s for s, _ in spans), max(e for _, e in spans)
        elif obj.get("period_start") and obj.get("period_end"):
            first, last = obj["period_start"], obj["period_end"]
        else:
            return issued, issued
        start = self._day(first, "period_start")
        end = (self._instant(last, "period_end") - timedelta(seconds=1)).astimezone(self.tz).date()
        return start, max(start, end)

    def _settlement(self, obj: dict[str, Any], status: InvoiceStatus,
                    minor: Callable[[Any, str], Decimal]) -> PaymentIn | None:
        paid = minor(obj.get("amount_paid", 0), "amount_paid")
        if status is not InvoiceStatus.PAID or paid <= 0:
            return None
        payments = (obj.get("payments") or {}).get("data") or []
        intent = ref_id(obj.get("payment_intent")) or next(
            (ref_id((p.get("payment") or {}).get("payment_intent")) for p in payments
             if ref_id((p.get("payment") or {}).get("payment_intent"))), None)
        transitions = obj.get("status_transitions") or {}
        when = transitions.get("paid_at") or obj.get("created")
        automatic = obj.get("collection_method", "charge_automatically") == "charge_automatically"
        return PaymentIn(
            account_id=self.account_id, source=SOURCE, external_id=intent or f"{obj['id']}:paid", amount=paid,
            currency=self.currency, status=PaymentStatus.CONFIRMED,
            method=PaymentMethod.CARD if automatic and not obj.get("paid_out_of_band") else PaymentMethod.BANK,
            paid_at=self._instant(when, "status_transitions.paid_at"), invoice_external=(SOURCE, obj["id"]),
        )

    # --- payments ---

    def charge(self, obj: dict[str, Any]) -> PaymentIn:
        _code, minor = self._currency(obj)
        status = CHARGE_STATUS.get(obj.get("status", ""))
        if status is None:
            raise _Bad(f"unknown charge status {obj.get('status')!r}")
        gross = minor(obj.get("amount"), "amount")
        if obj.get("captured") and isinstance(obj.get("amount_captured"), int) and obj["amount_captured"] > 0:
            gross = minor(obj["amount_captured"], "amount_captured")
        net = gross - minor(obj.get("amount_refunded") or 0, "amount_refunded")
        method = (obj.get("payment_method_details") or {}).get("type", "card")
        return self._payment(obj, ref_id(obj.get("payment_intent")) or obj["id"], gross, net, status, method)

    def intent(self, obj: dict[str, Any]) -> PaymentIn:
        _code, minor = self._currency(obj)
        status_text = obj.get("status", "")
        status = INTENT_STATUS.get(status_text)
        if status is None:
            raise _Bad(f"unknown payment intent status {status_text!r}")
        if status_text == "requires_payment_method" and obj.get("last_payment_error"):
            status = PaymentStatus.FAILED  # an attempt was declined and nothing else is being tried yet
        gross = minor(obj.get("amount"), "amount")
        if status is PaymentStatus.CONFIRMED and obj.get("amount_received"):
            gross = minor(obj["amount_received"], "amount_received")
        types = obj.get("payment_method_types") or ["card"]
        return self._payment(obj, obj["id"], gross, gross, status, str(types[0]))

    def _payment(self, obj: dict[str, Any], external_id: str, gross: Decimal, net: Decimal, status: PaymentStatus,
                 method: str) -> PaymentIn:
        if gross <= 0:
            raise _Bad(f"amount {gross} is not positive")
        if status is PaymentStatus.CONFIRMED and net <= 0:
            status = PaymentStatus.FAILED  # refunded in full: it no longer pays anything
        invoice = ref_id(obj.get("invoice"))
        return PaymentIn(
            account_id=self.account_id, source=SOURCE, external_id=external_id,
            amount=net if net > 0 else gross, currency=self.currency, status=status,
            method=(PaymentMethod.BANK if method in BANK_METHODS else
                    PaymentMethod.ONCHAIN if method in ONCHAIN_METHODS else PaymentMethod.CARD),
            paid_at=self._instant(obj.get("created"), "created"),
            invoice_external=(SOURCE, invoice) if invoice else None,
        )


def ref_id(value: Any) -> str | None:
    """A Stripe reference: an id string, or an expanded object carrying one."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None
