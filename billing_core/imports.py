"""Imports into the ledger: FOCUS cost-and-usage CSV (plain or gzip), Stripe JSON files and Stripe's API
(`billing-bot import …`).

The parsers in `billing_core.sources` are pure; this module opens the files, resolves providers and
deployments, and writes through `billing_core.db.ingest` only. FOCUS rows are committed in batches of
`batch_rows`, each batch in one transaction: a batch is written whole or not at all, rows already
committed stay (re-running the import is idempotent), and rejected rows never reach a batch. Stripe
objects, from files or fetched from the API (`sources.stripe_api`, every page before any write), take one
write path: one transaction, invoices before payments, one savepoint per object (a rejected object leaves
the others in place), and an audit entry per file or API fetch.

A FOCUS file is parsed into pieces of rows already validated the way `ingest.ingest_usage` validates
records (`ingest.stored_rows`), which are joined into batches and written by `ingest.write_rows`. A large
file (`PARALLEL_BYTES` and up) is parsed and validated in a second process while this one writes: the
parser hands over pieces through a queue of at most `_QUEUE_PIECES`, so memory stays flat, and rows
arrive in file order, so the result is exactly that of parsing in-process. Provider and sub-account
names are resolved to ids here (the database is this process's): the parser asks once per new name
and waits for the answer.
"""

from __future__ import annotations

import codecs
import gc
import io
import multiprocessing
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from decimal import Decimal
from functools import partial
from pathlib import Path
from queue import Empty
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core import invoicing
from billing_core.db import queries
from billing_core.db.audit import record
from billing_core.db.engine import Database
from billing_core.db.ingest import (
    Rows,
    cyclic_gc_paused,
    in_turn,
    stored_rows,
    upsert_invoice,
    upsert_payment,
    write_rows,
)
from billing_core.db.models import Deployment, Invoice, Payment, Provider
from billing_core.errors import BillingError
from billing_core.records import InvoiceIn, PaymentIn, UsageIn
from billing_core.results import AccountInfo, IngestResult, InvoiceStatus
from billing_core.sources import stripe, stripe_api
from billing_core.sources.focus import FocusOptions, Rejection, Resolver, read_focus
from billing_core.sources.provider_api import RetryPolicy

BATCH_ROWS = 20_000
PARALLEL_BYTES = 16 << 20  # below this a second process costs more to start than it saves
_PIECE_ROWS = 5_000  # rows per hand-over from the parsing process
_QUEUE_PIECES = 4
GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib reads the gzip header and trailer itself
MAX_LISTED = 1_000  # rejections kept in detail per file; the count is always exact

#: (file name, rows read so far, bytes read, file size) — called after every batch.
Progress = Callable[[str, int, int, int], None]


@dataclass
class FileReport:
    """What one file import did; `cost` is the sum of the imported rows' cost (the chosen cost column)."""

    path: str
    rows: int = 0
    result: IngestResult = field(default_factory=IngestResult)
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    cost: Decimal = Decimal(0)
    first_day: date | None = None  # account-local days of the earliest and latest charge period start
    last_day: date | None = None

    def count(self, written: _Written) -> None:
        self.result += written.result
        self.first_day = min(written.first_day, self.first_day or written.first_day)
        self.last_day = max(written.last_day, self.last_day or written.last_day)

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_LISTED:
            self.rejections.append(rejection)


# --- FOCUS -----------------------------------------------------------------------------------------


def import_focus(db: Database, account_ref: str | int, paths: Sequence[Path], *, now: datetime, cost: str = "billed",
                 default_provider: str | None = None, batch_rows: int = BATCH_ROWS,
                 progress: Progress | None = None, actor: str = "cli:import",
                 parallel_bytes: int = PARALLEL_BYTES) -> list[FileReport]:
    """Import FOCUS CSV files into one account; one report per file, each recorded in the audit log.

    Files of `parallel_bytes` or more are parsed in a second process (same result, see the module doc).
    """
    account = _account(db, account_ref)
    resolver = _Resolver(db, account.id, now)
    options = FocusOptions(account_id=account.id, currency=account.currency, cost=cost,
                           default_provider=default_provider)
    options.cost_column  # noqa: B018 - an unknown cost basis fails before any file is opened
    reports = []
    for path in paths:
        report = _import_focus_file(db, path, options, resolver, ZoneInfo(account.timezone), batch_rows, progress,
                                    parallel=path.stat().st_size >= parallel_bytes)
        with db.unit_of_work() as session:
            record(session, actor=actor, action="import.focus", entity="account", entity_id=str(account.id), at=now,
                   after={"file": path.name, "cost": options.cost_column, "rows": report.rows,
                          "inserted": report.result.inserted, "updated": report.result.updated,
                          "unchanged": report.result.unchanged, "rejected": report.rejected,
                          "total": report.cost})
        reports.append(report)
    return reports


def _import_focus_file(db: Database, path: Path, options: FocusOptions, resolver: _Resolver, tz: ZoneInfo,
                       batch_rows: int, progress: Progress | None, *, parallel: bool) -> FileReport:
    report = FileReport(str(path))
    size = path.stat().st_size
    pieces = _parsed_elsewhere(path, options, resolver, batch_rows) if parallel else \
        _pieces(_parsed_here(path, options, resolver), batch_rows)
    read_bytes = [0]  # how far the parser has read, for progress

    def read_so_far() -> None:
        if progress:
            progress(path.name, report.rows + report.rejected, read_bytes[0], size)

    def write(batch: _Batch) -> _Written:
        return _write_batch(db, batch, tz)

    with cyclic_gc_paused():  # one batch is written while the next is read (ingest.in_turn)
        for written in in_turn(_batches(pieces, report, read_bytes, read_so_far), write):
            report.count(written)
    if progress:
        progress(path.name, report.rows + report.rejected, size, size)
    return report


@dataclass
class _Piece:
    """Consecutive items of a file, parsed and validated (`ingest.stored_rows`), with what the report counts
    of them. A piece ends where a batch of `batch_rows` rows fills (`ends_batch`) or after `_PIECE_ROWS` rows."""

    rows: Rows = field(default_factory=dict)
    records: int = 0  # rows read (a repeated key is one stored row but two read)
    rejections: list[Rejection] = field(default_factory=list)
    cost: Decimal = Decimal(0)
    first_start: datetime | None = None  # earliest and latest charge period start of `rows`
    last_start: datetime | None = None
    read_bytes: int = 0
    ends_batch: bool = False


@dataclass
class _Batch:
    """Rows written in one transaction, with the earliest and latest charge period start among them."""

    rows: Rows
    first_start: datetime
    last_start: datetime


def _pieces(items: Iterator[tuple[UsageIn | Rejection, int]], batch_rows: int) -> Iterator[_Piece]:
    """The file's items (with the bytes read by then) in pieces; runs where the file is parsed."""
    records: list[UsageIn] = []
    piece = _Piece()
    in_batch = 0
    for item, read_bytes in items:
        piece.read_bytes = read_bytes
        if isinstance(item, Rejection):
            piece.rejections.append(item)
            continue
        records.append(item)
        in_batch += 1
        if in_batch >= batch_rows or len(records) >= _PIECE_ROWS:
            piece.ends_batch = in_batch >= batch_rows
            in_batch = 0 if piece.ends_batch else in_batch
            yield _filled(piece, records)
            piece, records = _Piece(read_bytes=piece.read_bytes), []
    yield _filled(piece, records)


def _filled(piece: _Piece, records: list[UsageIn]) -> _Piece:
    piece.rows = stored_rows(records)  # raises what ingest_usage would for a record it refuses
    piece.records = len(records)
    piece.cost = sum((r.cost for r in records), Decimal(0))
    if records:
        piece.first_start = min(r.period_start for r in records)
        piece.last_start = max(r.period_start for r in records)
    return piece


def _batches(pieces: Iterator[_Piece], report: FileReport, read_bytes: list[int],
             progress: Callable[[], object]) -> Iterator[_Batch]:
    """The pieces joined into batches, rejections and totals counted on the way."""
    batch: _Batch | None = None
    for piece in pieces:
        report.rows += piece.records
        report.cost += piece.cost
        for rejection in piece.rejections:
            report.reject(rejection)
        read_bytes[0] = piece.read_bytes
        if piece.first_start is not None and piece.last_start is not None:
            if batch is None:
                batch = _Batch(piece.rows, piece.first_start, piece.last_start)
            else:
                batch.rows.update(piece.rows)
                batch.first_start = min(batch.first_start, piece.first_start)
                batch.last_start = max(batch.last_start, piece.last_start)
        if piece.ends_batch and batch is not None:
            yield batch
            batch = None
            gc.collect(1)  # as in ingest_usage: a batch makes no cycles; the young ones are swept after each
            progress()
    if batch is not None:
        yield batch


def _parsed_here(path: Path, options: FocusOptions,
                 resolve: Resolver) -> Iterator[tuple[UsageIn | Rejection, int]]:
    """The file's rows and rejections in file order, each with the bytes read by then."""
    with path.open("rb") as raw:
        counted = _CountingReader(raw)
        rejected: list[Rejection] = []
        lines = _uncompressed(io.BufferedReader(counted, 1 << 20))
        for item in read_focus(_decoded(lines, rejected.append), options, resolve):
            for rejection in rejected:
                yield rejection, counted.read_bytes
            rejected.clear()
            yield item, counted.read_bytes
        for rejection in rejected:
            yield rejection, counted.read_bytes


def _parsed_elsewhere(path: Path, options: FocusOptions, resolve: Resolver, batch_rows: int) -> Iterator[_Piece]:
    """The same as `_pieces(_parsed_here(…))`, made by a second process; it asks this one for the ids of
    the names it meets (the database is this process's) and waits for the answer."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited database connections
    queue: Any = context.Queue(_QUEUE_PIECES)
    answers: Any = context.Queue()
    worker = context.Process(target=_parse_worker, args=(path, options, batch_rows, queue, answers), daemon=True)
    worker.start()
    try:
        while (message := _next(queue, worker)) is not None:
            if isinstance(message, _Piece):
                yield message
            else:
                answers.put(resolve(*message))
    finally:
        worker.terminate()  # a no-op once it is done; stops it if writing failed half-way
        worker.join()


def _next(queue: Any, worker: Any) -> Any:
    """The next message of the parsing process; it dying without a word is an error, not an end."""
    while True:
        try:
            message = queue.get(timeout=1.0)
        except Empty:
            if not worker.is_alive():
                raise RuntimeError(f"The FOCUS parsing process stopped (exit code {worker.exitcode}).") from None
            continue
        if isinstance(message, BaseException):
            raise message
        return message


def _parse_worker(path: Path, options: FocusOptions, batch_rows: int, queue: Any, answers: Any) -> None:
    """Runs in the parsing process: the file's pieces in order, then None; a name it has not seen yet is
    sent as (provider, sub-account id, sub-account name), answered with its ids."""
    known: dict[tuple[str | None, str | None, str | None], tuple[int | None, int | None]] = {}

    def resolve(provider: str | None, sub_id: str | None, sub_name: str | None) -> tuple[int | None, int | None]:
        key = (provider, sub_id, sub_name)
        if key not in known:
            queue.put(key)
            known[key] = answers.get()
        return known[key]

    gc.disable()  # this process only parses: no cycles worth the collector's passes over every piece
    try:
        for piece in _pieces(_parsed_here(path, options, resolve), batch_rows):
            queue.put(piece)
            gc.collect(1)
        queue.put(None)
    except Exception as exc:  # handed to the importing process, which raises it
        queue.put(exc)


@dataclass(frozen=True)
class _Written:
    """What writing one batch did: its ingest result and the account-local days its charges start on."""

    result: IngestResult
    first_day: date
    last_day: date


def _write_batch(db: Database, batch: _Batch, tz: ZoneInfo) -> _Written:
    with db.unit_of_work() as session:
        result = write_rows(session, batch.rows)
    return _Written(result, batch.first_start.astimezone(tz).date(), batch.last_start.astimezone(tz).date())


def _uncompressed(data: io.BufferedReader) -> IO[bytes]:
    """The file itself, or its content when it is gzip-compressed (how AWS Data Exports and Azure deliver FOCUS
    files: `.csv.gz`), recognised by its magic bytes rather than its name; decompressed as it is read."""
    return io.BufferedReader(_Gunzipped(data), 1 << 20) if data.peek(2)[:2] == GZIP_MAGIC else data


def _decoded(data: Iterable[bytes], reject: Callable[[Rejection], object]) -> Iterator[str]:
    """The file's lines as text, without a byte-order mark. A line that is not UTF-8 is rejected (by its
    number) and read as a blank line, so the CSV reader's line numbers stay those of the file. Compressed data
    that is damaged or cut short ends the file there, with a rejection saying so (the rows before it count)."""
    number = 0
    try:
        for number, line in enumerate(data, start=1):
            if number == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8):]
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError as exc:
                reject(Rejection(number, None, f"not UTF-8 text (byte {exc.start + 1}: {exc.reason})"))
                yield "\n"
    except (EOFError, zlib.error) as exc:
        reject(Rejection(number + 1, None, f"the compressed file is damaged or cut short ({exc}); "
                                           f"nothing after line {number} could be read"))


class _CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it (for progress without `tell()`)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        buffer[:len(data)] = data
        self.read_bytes += len(data)
        return len(data)


class _Gunzipped(io.RawIOBase):
    """The content of gzip data as it is read (concatenated members, and zero padding after the last one, as
    gzip reads them). Damaged or cut-short data raises only after everything before the damage was handed out,
    and a line cut by it is never handed out whole: a truncated export keeps every complete row it still has,
    and never a half row."""

    _READ = 1 << 16

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(wbits=GZIP_WBITS)
        self._pending = b""
        self._damage: Exception | None = None  # raised once what came before it is handed out
        self._between = False  # a member ended: another member, or zero padding to the end, may follow
        self._padding = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            if self._damage is not None:
                raise self._damage
            compressed = self._raw.read(self._READ)
            if not compressed:
                if not (self._between or self._padding):
                    raise EOFError("the data ends before its gzip end marker")
                return 0
            self._pending = self._inflated(compressed)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _inflated(self, compressed: bytes) -> bytes:
        out = bytearray()
        try:
            while compressed:
                if self._between and compressed[0] == 0:
                    self._padding = True
                if self._padding:
                    if compressed.strip(b"\0"):
                        raise zlib.error("bytes after the last gzip member are neither a member nor zero padding")
                    break
                if self._between:
                    self._inflate, self._between = zlib.decompressobj(wbits=GZIP_WBITS), False
                out += self._inflate.decompress(compressed)
                compressed = b""
                if self._inflate.eof:
                    self._between, compressed = True, self._inflate.unused_data
        except zlib.error as exc:
            self._damage = exc  # what was inflated before it still counts
        return bytes(out)


class _Resolver:
    """Provider and deployment ids of FOCUS names, created on first sight (like the demo seed) and cached.

    Provider = the FOCUS provider name (shared by every account); deployment = the sub-account, one per
    account and name, on the provider of the row that first named it.
    """

    def __init__(self, db: Database, account_id: int, now: datetime) -> None:
        self._db = db
        self._account_id = account_id
        self._now = now
        self._known: dict[tuple[str | None, str | None, str | None], tuple[int | None, int | None]] = {}

    def __call__(self, provider: str | None, sub_id: str | None, sub_name: str | None) -> tuple[int | None, int | None]:
        key = (provider, sub_id, sub_name)
        found = self._known.get(key)
        if found is None:
            with self._db.unit_of_work() as session:
                provider_id = provider_named(session, provider[:120]).id if provider else None
                deployment = sub_name or sub_id
                deployment_id = (deployment_named(session, self._account_id, deployment[:120], provider_id,
                                                  now=self._now).id
                                 if deployment else None)
            found = self._known[key] = (provider_id, deployment_id)
        return found


def provider_named(session: Session, name: str, kind: str = "cloud") -> Provider:
    provider = session.scalar(select(Provider).where(Provider.name == name))
    if provider is None:
        provider = Provider(name=name, kind=kind)
        session.add(provider)
        session.flush()
    return provider


def deployment_named(session: Session, account_id: int, name: str, provider_id: int | None, *,
                     now: datetime) -> Deployment:
    row = session.scalar(select(Deployment).where(Deployment.account_id == account_id, Deployment.name == name))
    if row is None:
        row = Deployment(account_id=account_id, provider_id=provider_id, name=name, created_at=now)
        session.add(row)
        session.flush()
    return row


def _account(db: Database, ref: str | int) -> AccountInfo:
    with db.unit_of_work() as session:
        return queries.account_info(queries.get_account(session, ref))


# --- Stripe ----------------------------------------------------------------------------------------


@dataclass
class StripeReport:
    path: str  # the file, or the API and customer the objects were fetched from
    invoices: IngestResult = field(default_factory=IngestResult)
    payments: IngestResult = field(default_factory=IngestResult)
    skipped: int = 0  # objects of other kinds (customers, products…) and events about them
    rejections: list[stripe.StripeRejection] = field(default_factory=list)


def import_stripe(db: Database, account_ref: str | int, paths: Sequence[Path], *, now: datetime,
                  actor: str = "cli:import") -> list[StripeReport]:
    """Import Stripe invoice, charge, payment-intent and event JSON files into one account.

    All files are read first, then invoices are upserted before payments (a charge in one file may pay
    an invoice from another), each object in its own savepoint; objects are applied oldest first so the
    newest snapshot of an object (e.g. the last of several webhook events) is what stays.
    """
    account = _account(db, account_ref)
    tz = ZoneInfo(account.timezone)
    parsed = [(StripeReport(str(p)), stripe.parse_file(p.read_bytes(), account_id=account.id,
                                                       currency=account.currency, tz=tz)) for p in paths]
    return _write_stripe(db, account.id, parsed, [{"file": p.name} for p in paths], now=now, actor=actor)


def import_stripe_api(db: Database, account_ref: str | int, *, url: str, key: str, customer: str,
                      since: date | None = None, now: datetime, actor: str = "cli:import",
                      policy: RetryPolicy | None = None) -> StripeReport:
    """Import one Stripe customer's invoices, charges and payment intents from a Stripe-compatible API.

    `since` (an account-local day) asks only for objects created from its midnight on. Everything is
    fetched before anything is written: a failed fetch raises `ProviderError` and the ledger is untouched.
    """
    account = _account(db, account_ref)
    tz = ZoneInfo(account.timezone)
    created_since = datetime.combine(since, time.min, tz) if since else None
    objects = stripe_api.fetch_customer(url, key, customer, created_since=created_since, policy=policy)
    batch = stripe.parse_document(objects, account_id=account.id, currency=account.currency, tz=tz)
    base = stripe_api.api_base(url)
    origin = {"api": base, "customer": customer, "since": since.isoformat() if since else None}
    [report] = _write_stripe(db, account.id, [(StripeReport(f"{base} customer {customer}"), batch)], [origin],
                             now=now, actor=actor)
    return report


def _write_stripe(db: Database, account_id: int, parsed: list[tuple[StripeReport, stripe.StripeBatch]],
                  origins: Sequence[Mapping[str, str | None]], *, now: datetime,
                  actor: str) -> list[StripeReport]:
    """The one write path of Stripe objects: one transaction, and an audit entry per file or fetch."""
    for report, batch in parsed:
        report.skipped = batch.skipped
        report.rejections.extend(batch.rejections)
    with db.unit_of_work() as session:
        _upsert_stripe(session, parsed, now)
        for (report, _batch), origin in zip(parsed, origins, strict=True):
            record(session, actor=actor, action="import.stripe", entity="account", entity_id=str(account_id), at=now,
                   after={**origin, "invoices": vars(report.invoices), "payments": vars(report.payments),
                          "rejected": len(report.rejections)})
    return [report for report, _ in parsed]


def _upsert_stripe(session: Session, parsed: list[tuple[StripeReport, stripe.StripeBatch]], now: datetime) -> None:
    for report, batch in parsed:
        for invoice in batch.invoices:
            outcome = _savepoint(session, report, invoice.external_id, partial(_upsert_invoice, session, invoice, now))
            report.invoices += _counted(outcome)
    # A charge and its payment intent in two files are one payment: the later file's snapshot wins.
    payments = {p.external_id: (report, p) for report, batch in parsed for p in batch.payments}
    for report, payment in payments.values():
        outcome = _savepoint(session, report, payment.external_id, partial(_upsert_payment, session, payment, now))
        report.payments += _counted(outcome)
    for report, batch in parsed:
        for settlement in batch.settlements:
            outcome = _savepoint(session, report, settlement.external_id, partial(_settle, session, settlement, now))
            report.payments += _counted(outcome)


def _upsert_invoice(session: Session, invoice: InvoiceIn, now: datetime) -> str:
    return upsert_invoice(session, _settled(session, _numbered(session, invoice)), now=now)[1]


def _settled(session: Session, invoice: InvoiceIn) -> InvoiceIn:
    """An open invoice whose stored payments already cover it is paid (what the ledger's invariants would
    make of it anyway): saying so up front keeps a re-import of the older "open" snapshot a no-op."""
    if invoice.status is not InvoiceStatus.PENDING:
        return invoice
    paid = session.scalar(select(Invoice.amount_paid).where(Invoice.source == invoice.source,
                                                            Invoice.external_id == invoice.external_id))
    subtotal = invoice.subtotal if invoice.subtotal is not None else sum((li.total for li in invoice.lines), Decimal(0))
    total = invoicing.invoice_total(
        subtotal=subtotal, fee_platform=invoice.fee_platform, fee_provider=invoice.fee_provider,
        fee_network=invoice.fee_network, tax=invoice.tax, discount=invoice.discount,
        credits_applied=invoice.credits_applied)
    return replace(invoice, status=InvoiceStatus.PAID) if paid is not None and paid >= total else invoice


def _upsert_payment(session: Session, payment: PaymentIn, now: datetime) -> str:
    return upsert_payment(session, payment, now=now)[1]


def _settle(session: Session, settlement: PaymentIn, now: datetime) -> str:
    """A paid invoice's own account of its payment, unless the charge or intent itself is already stored."""
    stored = session.scalar(select(Payment.id).where(Payment.source == settlement.source,
                                                     Payment.external_id == settlement.external_id))
    return "unchanged" if stored is not None else upsert_payment(session, settlement, now=now)[1]


def _numbered(session: Session, invoice: InvoiceIn) -> InvoiceIn:
    """Keep Stripe's invoice number unless another invoice already holds it (then the ledger numbers it)."""
    if invoice.number is None:
        return invoice
    holder = session.execute(
        select(Invoice.source, Invoice.external_id).where(Invoice.number == invoice.number)).first()
    if holder is None or tuple(holder) == (invoice.source, invoice.external_id):
        return invoice
    return stripe.without_number(invoice)


def _savepoint(session: Session, report: StripeReport, object_id: str, write: Callable[[], str]) -> str | None:
    try:
        with session.begin_nested():
            return write()
    except BillingError as exc:
        report.rejections.append(stripe.StripeRejection(object_id, exc.message))
        return None


def _counted(outcome: str | None) -> IngestResult:
    return IngestResult(inserted=int(outcome == "inserted"), updated=int(outcome == "updated"),
                        unchanged=int(outcome == "unchanged"))
