"""Imports into the ledger: FOCUS cost-and-usage files (CSV, plain or gzip, or Parquet), Stripe JSON files and
Stripe's API (`billing-bot import …`).

The parsers in `billing_core.sources` are pure; this module opens the files, resolves providers and
deployments, and writes through `billing_core.db.ingest` only. FOCUS rows are committed in batches of
`batch_rows`, each batch in one transaction: a batch is written whole or not at all, rows already
committed stay (re-running the import is idempotent), and rejected rows never reach a batch. Stripe
objects, from files or fetched from the API (`sources.stripe_api`, every page before any write), take one
write path: one transaction, invoices before payments, one savepoint per object (a rejected object leaves
the others in place), and an audit entry per file or API fetch.

A FOCUS file is read into batches of usage tables by `billing_core.focus_files` (column-wise, a chunk at a
time) in a child process (`focus_batches_apart`), and each batch is written here (`ingest_table.write_rows`, then
its rollups) while the child reads the next: reading and writing each take most of a core, and threads of one
process would share its interpreter lock. Provider and sub-account names are resolved to ids here, as the reader
meets them (`_Resolver`, cached): only this process touches the database. pyarrow is loaded by a FOCUS import only.

On PostgreSQL a batch's transaction is written in two steps on two threads, each with its own connection: while
batch N's rollups move and it commits, batch N+1's rows go in (the server was otherwise idle a fifth of an import,
waiting for one step or the other). Their rows never share a key (ids are unique in a file), rollups move one
batch at a time in file order, and N is being committed before N+1's rows go in (`in_turn`): N+1 may wait for N
(a dimension set N stored), never the other way round. If N fails, N+1 is rolled back with it. Batches
commit without waiting for their WAL to reach the disk (`synchronous_commit` off, for those transactions only): the
import's audit entry, committed last and waited for, makes every batch before it durable; a crash before it can
lose the last batches committed, which running the import again (idempotent) restores.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from billing_core import invoicing
from billing_core.db import queries
from billing_core.db.audit import record
from billing_core.db.engine import Database
from billing_core.db.ingest import (
    SetIds,
    cyclic_gc_paused,
    in_turn,
    upsert_invoice,
    upsert_payment,
)
from billing_core.db.models import Deployment, Invoice, Payment, Provider, UsageRecord
from billing_core.errors import BillingError
from billing_core.records import InvoiceIn, PaymentIn
from billing_core.results import AccountInfo, IngestResult, InvoiceStatus
from billing_core.sources import stripe, stripe_api
from billing_core.sources.focus import FocusOptions, Rejection, id_prefix
from billing_core.sources.provider_api import RetryPolicy

BATCH_ROWS = 50_000  # rows per transaction: a batch spans two days of an hourly export, and the rollup rows of a day
# are upserted once per batch touching it (20 k-row batches moved each day's buckets half as often again)
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
                 chunk_bytes: int | None = None) -> list[FileReport]:
    """Import FOCUS CSV files into one account; one report per file, each recorded in the audit log.

    `chunk_bytes` is how much of a file is read at a time (`focus_files.CHUNK_BYTES` by default).
    """
    account = _account(db, account_ref)
    resolver = _Resolver(db, account.id, now)
    options = FocusOptions(account_id=account.id, currency=account.currency, cost=cost,
                           default_provider=default_provider)
    options.cost_column  # noqa: B018 - an unknown cost basis fails before any file is opened
    reports = []
    for path in paths:
        report = _import_focus_file(db, path, options, resolver, ZoneInfo(account.timezone), batch_rows, progress,
                                    chunk_bytes)
        with db.unit_of_work() as session:
            record(session, actor=actor, action="import.focus", entity="account", entity_id=str(account.id), at=now,
                   after={"file": path.name, "cost": options.cost_column, "rows": report.rows,
                          "inserted": report.result.inserted, "updated": report.result.updated,
                          "unchanged": report.result.unchanged, "rejected": report.rejected,
                          "total": report.cost})
        reports.append(report)
    return reports


def _import_focus_file(db: Database, path: Path, options: FocusOptions, resolver: _Resolver, tz: ZoneInfo,
                       batch_rows: int, progress: Progress | None, chunk_bytes: int | None) -> FileReport:
    from billing_core import focus_files  # pyarrow: loaded by file imports only, not by the bot's processes
    from billing_core.db.ingest_table import write_rows

    report = FileReport(str(path))
    size = path.stat().st_size
    read_bytes = 0
    # An account with no FOCUS rows stored yet has none of this file's ids (each is the account's, and unique
    # in the file): its batches need not be looked up first.
    fresh = not _has_usage(db, options.account_id, options.source)
    set_ids: SetIds = {}  # dimension set ids, from batch to batch (a failed batch ends the import)
    postgres = db.dialect == "postgresql"

    def batches() -> Iterator[focus_files.Batch]:
        nonlocal read_bytes
        for item in focus_files.focus_batches_apart(path, options, resolver, batch_rows=batch_rows,
                                                    chunk_bytes=chunk_bytes or focus_files.CHUNK_BYTES):
            if isinstance(item, focus_files.Piece):
                report.rows += item.rows
                report.cost += item.cost
                for rejection in item.rejections:
                    report.reject(rejection)
                read_bytes = item.read_bytes
                continue
            if progress:
                progress(path.name, report.rows + report.rejected, read_bytes, size)
            yield item

    def write(batch: focus_files.Batch) -> Generator[None, None, _Written]:
        """One batch's transaction, paused once its rows are in, before its rollups move and it commits."""
        first_day, last_day = batch.first_start.astimezone(tz).date(), batch.last_start.astimezone(tz).date()
        with db.unit_of_work() as session:
            if postgres:  # see the module doc: the audit entry's commit waits for the WAL of them all
                session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            written = write_rows(session, options.source, batch.table, fresh=fresh, set_ids=set_ids)
            del batch  # its rows are in: not kept while the next batch's go in
            yield
            written.rollups.apply(session)
        return _Written(written.result, first_day, last_day)

    paused: list[Generator[None, None, _Written]] = []  # batches whose rows are in, not committed yet

    def rows_in() -> Generator[Generator[None, None, _Written], None, None]:
        for batch in batches():
            pending = write(batch)
            del batch  # (the paused transaction no longer needs it either)
            paused.append(pending)
            next(pending)
            yield pending

    def committed(pending: Generator[None, None, _Written]) -> _Written:
        paused.remove(pending)
        try:
            next(pending)
        except StopIteration as done:
            return cast(_Written, done.value)
        raise AssertionError("a batch's transaction pauses once")

    # PostgreSQL: batch N's rollups move and it commits (a writer thread, its own connection) while batch N+1's
    # rows go in; SQLite has one writer at a time, so each batch is written whole before the next.
    started = rows_in()
    written = in_turn(started, committed) if postgres else (committed(pending) for pending in started)
    try:
        with cyclic_gc_paused():  # a batch is written while the child process reads the next
            for done in written:
                report.count(done)
                gc.collect(1)  # the young generations, swept after each batch (`cyclic_gc_paused`)
    finally:
        written.close()  # the commit in flight, if any, is finished first (`in_turn`)
        started.close()  # the reader stops now (its child process too), not when the traceback goes
        for pending in paused:  # a batch whose rows went in but whose rollups did not: rolled back
            pending.close()
    if progress:
        progress(path.name, report.rows + report.rejected, size, size)
    return report


def _has_usage(db: Database, account_id: int, source: str) -> bool:
    """Whether the account has rows of `source` stored, asked of the unique (source, external_id) index: its ids
    all begin with `id_prefix` (ids compare as bytes, so they lie between that prefix and the next one)."""
    prefix = id_prefix(account_id)
    after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    with db.unit_of_work() as session:
        found = session.scalar(select(UsageRecord.id).where(
            UsageRecord.source == source, UsageRecord.external_id >= prefix, UsageRecord.external_id < after,
            UsageRecord.account_id == account_id).limit(1))
    return found is not None


@dataclass(frozen=True)
class _Written:
    """What writing one batch did: its ingest result and the account-local days its charges start on."""

    result: IngestResult
    first_day: date
    last_day: date


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
