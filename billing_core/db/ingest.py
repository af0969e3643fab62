"""Idempotent ingestion: usage, invoices and payments upserted by (source, external_id).

Re-ingesting the same batch changes nothing; a record that comes back with other values replaces
the old one (late or corrected usage for a past day updates that day). The rollup tables move by
exact integer deltas in the same transaction, so no user-facing query ever scans raw usage rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from billing_core.db.models import (
    Account,
    Counter,
    Invoice,
    InvoiceLineItem,
    Payment,
    UsageDaily,
    UsageDailyDimension,
    UsageHourly,
    UsageRecord,
)
from billing_core.errors import InvalidInput, NotFound
from billing_core.money import MAX_AMOUNT, from_micros, normalize_currency, to_micros
from billing_core.records import InvoiceIn, PaymentIn, UsageIn
from billing_core.results import IngestResult, PaymentStatus

BATCH_SIZE = 5000
USAGE: Table = UsageRecord.__table__  # type: ignore[assignment]
HOURLY: Table = UsageHourly.__table__  # type: ignore[assignment]
DAILY: Table = UsageDaily.__table__  # type: ignore[assignment]
DIMENSION: Table = UsageDailyDimension.__table__  # type: ignore[assignment]

# A stored record, compared field by field with an incoming one to tell "unchanged" from "updated".
_Row = tuple[int, int | None, int | None, str, str, int, int, str, datetime, datetime, tuple[tuple[str, str], ...]]


def batched(items: Iterable[UsageIn], size: int) -> Iterator[list[UsageIn]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def ingest_usage(session: Session, records: Iterable[UsageIn], *, batch_size: int = BATCH_SIZE) -> IngestResult:
    """Upsert usage records and move the rollups by the difference. Repositories never commit."""
    zones = _AccountZones(session)
    result = IngestResult()
    for chunk in batched(records, batch_size):
        result += _ingest_chunk(session, chunk, zones)
    return result


class _AccountZones:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._zones: dict[int, ZoneInfo] = {}

    def __getitem__(self, account_id: int) -> ZoneInfo:
        if account_id not in self._zones:
            name = self._session.scalar(select(Account.timezone).where(Account.id == account_id))
            if name is None:
                raise NotFound(f"No account with id {account_id}.")
            self._zones[account_id] = ZoneInfo(name)
        return self._zones[account_id]


def _validate(rec: UsageIn) -> _Row:
    if rec.period_start.tzinfo is None or rec.period_end.tzinfo is None:
        raise InvalidInput(f"Usage {rec.external_id}: charge period must carry a time zone.")
    if rec.period_end < rec.period_start:
        raise InvalidInput(f"Usage {rec.external_id}: charge period ends before it starts.")
    if abs(rec.cost) >= MAX_AMOUNT or abs(rec.quantity) >= MAX_AMOUNT:
        raise InvalidInput(f"Usage {rec.external_id}: amount out of range.")
    return (
        rec.account_id,
        rec.deployment_id,
        rec.provider_id,
        rec.meter,
        rec.unit,
        to_micros(rec.quantity),
        to_micros(rec.cost),
        normalize_currency(rec.currency),
        rec.period_start.astimezone(UTC),
        rec.period_end.astimezone(UTC),
        tuple(sorted((str(k), str(v)) for k, v in rec.dimensions.items())),
    )


def _ingest_chunk(session: Session, chunk: Sequence[UsageIn], zones: _AccountZones) -> IngestResult:
    incoming: dict[tuple[str, str], _Row] = {(r.source, r.external_id): _validate(r) for r in chunk}
    existing = _existing_rows(session, list(incoming))
    deltas = _Deltas(zones)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged = 0
    for key, row in incoming.items():
        old = existing.get(key)
        if old is None:
            inserts.append(_as_columns(key, row))
            deltas.add(row, +1)
        elif old[1] == row:
            unchanged += 1
        else:
            updates.append({"_id": old[0], **_as_columns(key, row)})
            deltas.add(old[1], -1)
            deltas.add(row, +1)
    if inserts:
        session.execute(insert(USAGE), inserts)
    if updates:
        session.execute(
            update(USAGE).where(USAGE.c.id == bindparam("_id")),
            [{k: v for k, v in u.items() if k not in ("source", "external_id")} for u in updates],
        )
    deltas.apply(session)
    return IngestResult(inserted=len(inserts), updated=len(updates), unchanged=unchanged)


def _existing_rows(session: Session, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, _Row]]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, external_id in keys:
        by_source[source].append(external_id)
    found: dict[tuple[str, str], tuple[int, _Row]] = {}
    c = USAGE.c
    for source, ids in by_source.items():
        stmt = select(
            c.id, c.external_id, c.account_id, c.deployment_id, c.provider_id, c.meter, c.unit,
            c.quantity, c.cost, c.currency, c.period_start, c.period_end, c.dimensions,
        ).where(c.source == source, c.external_id.in_(ids))
        for r in session.execute(stmt):
            row: _Row = (
                r.account_id, r.deployment_id, r.provider_id, r.meter, r.unit, to_micros(r.quantity),
                to_micros(r.cost), r.currency, r.period_start, r.period_end,
                tuple(sorted((str(k), str(v)) for k, v in (r.dimensions or {}).items())),
            )
            found[(source, r.external_id)] = (r.id, row)
    return found


def _as_columns(key: tuple[str, str], row: _Row) -> dict[str, Any]:
    return {
        "source": key[0],
        "external_id": key[1],
        "account_id": row[0],
        "deployment_id": row[1],
        "provider_id": row[2],
        "meter": row[3],
        "unit": row[4],
        "quantity": from_micros(row[5]),
        "cost": from_micros(row[6]),
        "currency": row[7],
        "period_start": row[8],
        "period_end": row[9],
        "dimensions": dict(row[10]),
    }


class _Deltas:
    """Exact integer changes to the three rollups, keyed like their primary keys."""

    def __init__(self, zones: _AccountZones) -> None:
        self._zones = zones
        self.hourly: dict[tuple[Any, ...], list[Any]] = {}
        self.daily: dict[tuple[Any, ...], list[Any]] = {}
        self.dimension: dict[tuple[Any, ...], list[Any]] = {}

    def add(self, row: _Row, sign: int) -> None:
        account, deployment, provider, meter, unit, qty, cost = row[:7]
        start: datetime = row[8]
        hour = start.replace(minute=0, second=0, microsecond=0)
        day = start.astimezone(self._zones[account]).date()
        dep, prov = deployment or 0, provider or 0
        _bump(self.hourly, (account, hour, dep, prov, meter), unit, sign * qty, sign * cost, sign)
        _bump(self.daily, (account, day, dep, prov, meter), unit, sign * qty, sign * cost, sign)
        for dim_key, dim_value in row[10]:
            _bump(self.dimension, (account, day, dim_key, dim_value, meter), unit, sign * qty, sign * cost, sign)

    def apply(self, session: Session) -> None:
        _upsert(session, HOURLY, ("account_id", "hour", "deployment_id", "provider_id", "meter"), self.hourly)
        _upsert(session, DAILY, ("account_id", "day", "deployment_id", "provider_id", "meter"), self.daily)
        _upsert(session, DIMENSION, ("account_id", "day", "dim_key", "dim_value", "meter"), self.dimension)


def _bump(target: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...], unit: str, qty: int, cost: int,
          n: int) -> None:
    slot = target.get(key)
    if slot is None:
        target[key] = [unit, qty, cost, n]
    else:
        slot[0] = unit
        slot[1] += qty
        slot[2] += cost
        slot[3] += n


def _upsert(session: Session, table: Table, key_cols: tuple[str, ...],
            deltas: dict[tuple[Any, ...], list[Any]]) -> None:
    rows = [
        {**dict(zip(key_cols, key, strict=True)), "unit": unit, "quantity": from_micros(q), "cost": from_micros(c),
         "records": n}
        for key, (unit, q, c, n) in deltas.items()
        if q or c or n
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    stmt = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key_cols),
        set_={
            "unit": stmt.excluded.unit,
            "quantity": table.c.quantity + stmt.excluded.quantity,
            "cost": table.c.cost + stmt.excluded.cost,
            "records": table.c.records + stmt.excluded.records,
        },
    )
    for start in range(0, len(rows), BATCH_SIZE):
        session.execute(stmt, rows[start:start + BATCH_SIZE])
    emptied = [key for key, (_u, _q, _c, n) in deltas.items() if n < 0]
    for key in emptied:  # a record moved out of this bucket; drop the bucket if nothing is left in it
        session.execute(
            delete(table).where(*(table.c[col] == val for col, val in zip(key_cols, key, strict=True)),
                                table.c.records <= 0)
        )


# --- invoices and payments -------------------------------------------------------------------------


def next_number(session: Session, counter: str) -> int:
    """The next value of a monotonic counter (row-locked on PostgreSQL, so two writers never share one)."""
    stmt = update(Counter).where(Counter.name == counter).values(value=Counter.value + 1).returning(Counter.value)
    value = session.execute(stmt).scalar_one_or_none()
    if value is None:
        session.add(Counter(name=counter, value=1))
        session.flush()
        return 1
    return int(value)


def next_invoice_number(session: Session) -> str:
    return f"INV-{next_number(session, 'invoice'):04d}"


def next_receipt_number(session: Session) -> str:
    return f"RCT-{next_number(session, 'receipt'):05d}"


def upsert_invoice(session: Session, data: InvoiceIn, *, now: datetime) -> tuple[Invoice, str]:
    """Insert or update one invoice (with its lines) by (source, external_id); returns it and what happened."""
    invoice = session.scalar(
        select(Invoice).where(Invoice.source == data.source, Invoice.external_id == data.external_id)
    )
    fields = _invoice_fields(data)
    if invoice is None:
        invoice = Invoice(
            number=data.number or next_invoice_number(session), source=data.source, external_id=data.external_id,
            created_at=now, updated_at=now, total=Decimal(0), amount_due=Decimal(0), **fields,
        )
        invoice.lines = _lines(data)
        session.add(invoice)
        session.flush()
        return invoice, "inserted"
    changed = {k: v for k, v in fields.items() if getattr(invoice, k) != v}
    new_lines = _line_tuples(data)
    lines_changed = [_line_tuple(li) for li in invoice.lines] != new_lines
    if not changed and not lines_changed:
        return invoice, "unchanged"
    for key, value in changed.items():
        setattr(invoice, key, value)
    if lines_changed:
        invoice.lines = _lines(data)
    invoice.updated_at = now
    session.flush()
    return invoice, "updated"


def _invoice_fields(data: InvoiceIn) -> dict[str, Any]:
    subtotal = data.subtotal if data.subtotal is not None else sum((li.total for li in data.lines), Decimal(0))
    return {
        "account_id": data.account_id,
        "status": data.status.value,
        "issue_date": data.issue_date,
        "due_date": data.due_date,
        "period_start": data.period_start,
        "period_end": data.period_end,
        "currency": normalize_currency(data.currency),
        "subtotal": subtotal,
        "fee_platform": data.fee_platform,
        "fee_provider": data.fee_provider,
        "fee_network": data.fee_network,
        "tax": data.tax,
        "discount": data.discount,
        "credits_applied": data.credits_applied,
        "payment_url": data.payment_url,
        "deployment_id": data.deployment_id,
        "provider_id": data.provider_id,
        "lease_ref": data.lease_ref,
    }


def _line_tuples(data: InvoiceIn) -> list[tuple[Any, ...]]:
    return [(li.description, li.resource_type, li.quantity, li.unit, li.unit_price, li.total) for li in data.lines]


def _line_tuple(li: InvoiceLineItem) -> tuple[Any, ...]:
    return (li.description, li.resource_type, li.quantity, li.unit, li.unit_price, li.total)


def _lines(data: InvoiceIn) -> list[InvoiceLineItem]:
    return [
        InvoiceLineItem(position=i, description=li.description, resource_type=li.resource_type,
                        quantity=li.quantity, unit=li.unit, unit_price=li.unit_price, total=li.total)
        for i, li in enumerate(data.lines)
    ]


def upsert_payment(session: Session, data: PaymentIn, *, now: datetime) -> tuple[Payment, str]:
    """Insert or update one payment; the invoice it pays is settled by the flush invariants."""
    payment = session.scalar(
        select(Payment).where(Payment.source == data.source, Payment.external_id == data.external_id)
    )
    invoice = _invoice_for(session, data)
    fields: dict[str, Any] = {
        "account_id": data.account_id,
        "invoice_id": invoice.id if invoice else None,
        "amount": data.amount,
        "currency": normalize_currency(data.currency),
        "status": data.status.value,
        "method": data.method.value,
        "paid_at": data.paid_at,
        "tx_hash": data.tx_hash,
        "explorer_url": data.explorer_url,
    }
    outcome = "inserted"
    if payment is None:
        payment = Payment(source=data.source, external_id=data.external_id, created_at=now, **fields)
        session.add(payment)
    else:
        changed = {k: v for k, v in fields.items() if getattr(payment, k) != v}
        if not changed:
            return payment, "unchanged"
        for key, value in changed.items():
            setattr(payment, key, value)
        outcome = "updated"
    payment.invoice = invoice
    if payment.status == PaymentStatus.CONFIRMED and payment.receipt_number is None:
        payment.receipt_number = next_receipt_number(session)
    session.flush()
    return payment, outcome


def _invoice_for(session: Session, data: PaymentIn) -> Invoice | None:
    if data.invoice_number:
        invoice = session.scalar(select(Invoice).where(Invoice.number == data.invoice_number))
        if invoice is None:
            raise NotFound(f"No invoice {data.invoice_number} for payment {data.external_id}.")
        return invoice
    if data.invoice_external:
        source, external_id = data.invoice_external
        invoice = session.scalar(select(Invoice).where(Invoice.source == source, Invoice.external_id == external_id))
        if invoice is None:
            raise NotFound(f"No invoice {external_id} from {source} for payment {data.external_id}.")
        return invoice
    return None
