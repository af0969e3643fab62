"""Idempotent ingestion: usage, invoices and payments upserted by (source, external_id).

Re-ingesting the same batch changes nothing; a record that comes back with other values replaces
the old one (late or corrected usage for a past day updates that day). The rollup tables move by
exact integer deltas in the same transaction, so no user-facing query ever scans raw usage rows.
Every dimension is rolled up per day; a record's `attributes` are stored on its row only (they count
when telling "unchanged" from "updated", but are never rolled up).
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from json.encoder import encode_basestring_ascii as _string
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Table, Text, bindparam, cast, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from billing_core.db.models import (
    Account,
    Deployment,
    Invoice,
    InvoiceLineItem,
    Payment,
    Provider,
    UsageDaily,
    UsageDailyDimension,
    UsageDimensionSet,
    UsageHourly,
    UsageRecord,
)
from billing_core.db.types import driver_value
from billing_core.errors import InvalidInput, NotFound
from billing_core.money import MAX_AMOUNT, from_micros, normalize_currency, to_micros
from billing_core.records import InvoiceIn, PaymentIn, UsageIn
from billing_core.results import IngestResult, PaymentStatus

BATCH_SIZE = 20_000  # larger batches fold more records into each rollup update (fewer dead row versions)
USAGE: Table = UsageRecord.__table__  # type: ignore[assignment]
HOURLY: Table = UsageHourly.__table__  # type: ignore[assignment]
DAILY: Table = UsageDaily.__table__  # type: ignore[assignment]
DIMENSION: Table = UsageDailyDimension.__table__  # type: ignore[assignment]
DIMENSION_SETS: Table = UsageDimensionSet.__table__  # type: ignore[assignment]

# A stored record, compared field by field with an incoming one to tell "unchanged" from "updated".
_Pairs = tuple[tuple[str, str], ...]
# Attributes stay a mapping: they are only ever compared whole (dict equality ignores order) and stored.
_Row = tuple[int, int | None, int | None, str, str, int, int, str, datetime, datetime, _Pairs, dict[str, Any]]
#: Stored rows by key (source, external_id), as `stored_rows` makes them and `upsert_rows` writes them.
Rows = dict[tuple[str, str], _Row]
_Keyed = list[tuple[tuple[str, str], _Row]]
#: What a usage row refers to: (external id, account id, deployment id, provider id).
Reference = tuple[str, int, int | None, int | None]


def ingest_usage(session: Session, records: Iterable[UsageIn], *, batch_size: int = BATCH_SIZE) -> IngestResult:
    """Upsert usage records and move the rollups by the difference. Repositories never commit.

    `stored_rows` then `upsert_rows`, by chunks of `batch_size`, written `in_turn`: while a writer thread has
    the session (and the database takes one chunk: lookups, inserts, rollup upserts), this thread validates
    the next.
    """
    zones = AccountZones(session)
    result = IngestResult()
    with cyclic_gc_paused():
        for written in in_turn(_validated_chunks(records, batch_size),
                               lambda item: _write_chunk(session, item[0], zones, item[1])):
            result += written
    return result


def stored_rows(records: Iterable[UsageIn]) -> Rows:
    """The records validated, as their stored rows would read, by key (source, external_id); a key given
    twice keeps its last record. Pure (no session): it runs beside the writer (`in_turn`)."""
    dimension_sets: dict[int, _Pairs] = {}  # ids stay unique while `records` holds the mappings
    return {(r.source, r.external_id): _validate(r, dimension_sets) for r in records}


def in_turn(batches: Iterable[_Batch], write: Callable[[_Batch], _Written]) -> Generator[_Written, None, None]:
    """`write(batch)` for every batch, in order and one at a time, on a writer thread, while this thread
    produces the next batch; yields each result once that write is done. The driver waits for PostgreSQL, and
    SQLite steps its B-trees, without the GIL, so the database's work and ours overlap instead of taking turns.

    A batch is handed to the writer as soon as it is produced, before the next one is: producing may itself
    touch the database (an import's next rows, on a connection of their own) and wait for a lock the batch
    being written holds — which it gives up once written, never while waiting to be. If producing or consuming
    fails, the write in flight is finished first.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="batch-writer") as writer:
        pending: Future[_Written] | None = None
        for batch in batches:  # produced while the batch before it is written
            if pending is None:
                pending = writer.submit(write, batch)
                continue
            done = pending.result()
            pending = writer.submit(write, batch)
            yield done
        if pending is not None:
            yield pending.result()


_Batch = TypeVar("_Batch")
_Written = TypeVar("_Written")


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cycle collection while chunks are read and written. A chunk holds some 100 k live containers
    (records, their mappings, row tuples) and makes no cycles; the collector's passes over them cost a fifth
    of the ingest time (bench.core), for nothing: reference counting frees the chunk when it goes. Whoever
    produces the chunks sweeps the young generations after each (`gc.collect(1)`)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class AccountZones:
    """Time zones of the accounts a batch refers to, and the check that its references exist."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._zones: dict[int, ZoneInfo] = {}
        self._deployments: dict[int, int] = {}  # deployment id → its account id
        self._providers: set[int] = set()

    def __getitem__(self, account_id: int) -> ZoneInfo:
        if account_id not in self._zones:
            name = self._session.scalar(select(Account.timezone).where(Account.id == account_id))
            if name is None:
                raise NotFound(f"No account with id {account_id}.")
            self._zones[account_id] = ZoneInfo(name)
        return self._zones[account_id]

    def check_references(self, references: Iterable[Reference]) -> None:
        """usage_records has no foreign keys (bulk speed): refuse unknown or foreign ids here, per batch."""
        references = list(references)
        for account_id in {r[1] for r in references}:
            self[account_id]
        wanted = {r[2] for r in references if r[2]} - self._deployments.keys()
        if wanted:
            found = self._session.execute(select(Deployment.id, Deployment.account_id).where(Deployment.id.in_(wanted)))
            self._deployments.update({row[0]: row[1] for row in found})
        providers = {r[3] for r in references if r[3]} - self._providers
        if providers:
            self._providers.update(self._session.scalars(select(Provider.id).where(Provider.id.in_(providers))))
        for external_id, account_id, deployment_id, provider_id in references:
            if deployment_id and self._deployments.get(deployment_id) != account_id:
                raise InvalidInput(f"Usage {external_id}: deployment {deployment_id} is not one of account "
                                   f"{account_id}'s deployments.")
            if provider_id and provider_id not in self._providers:
                raise InvalidInput(f"Usage {external_id}: no provider with id {provider_id}.")


def _validate(rec: UsageIn, dimension_sets: dict[int, _Pairs]) -> _Row:
    """The record as a stored row would read; `dimension_sets` caches the pairs of each dimension mapping
    by identity (sources share one mapping between records), valid while the chunk holding them lives."""
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
        _currency(rec.currency),
        _utc(rec.period_start),
        _utc(rec.period_end),
        _shared_pairs(rec.dimensions, dimension_sets),
        rec.attributes,
    )


def _pairs(mapping: dict[str, Any] | None) -> _Pairs:
    """A mapping in a comparable, hashable form (sorted text pairs), the same for stored and incoming."""
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items())) if mapping else ()


_DIMENSION_SETS: dict[tuple[tuple[str, Any], ...], _Pairs] = {}
_DIMENSION_SETS_LIMIT = 50_000


def _shared_pairs(mapping: dict[str, Any], by_identity: dict[int, _Pairs]) -> _Pairs:
    if not mapping:
        return ()
    found = by_identity.get(id(mapping))
    if found is None:
        found = by_identity[id(mapping)] = _dimension_pairs(mapping)
    return found


def _dimension_pairs(mapping: dict[str, Any]) -> _Pairs:
    """`_pairs` of a record's dimensions, cached by content: a source repeats a few hundred dimension sets
    millions of times, and handing out one shared tuple per set also makes the rollup grouping cheap."""
    if not mapping:
        return ()
    content = tuple(mapping.items())
    try:
        hash(content)
    except TypeError:  # an unhashable value (not text): convert it, uncached
        return _pairs(mapping)
    return _remembered(_DIMENSION_SETS, content, lambda: _pairs(mapping))


_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


def _remembered(cache: dict[_Key, _Value], key: _Key, make: Callable[[], _Value]) -> _Value:
    """`cache[key]`, made on first sight. A full cache is emptied rather than grown: sources repeat a few hundred
    values (dimension sets, their stored texts) millions of times, so it fills again with what is in use."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= _DIMENSION_SETS_LIMIT:
            cache.clear()
        found = cache[key] = make()
    return found


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


@lru_cache(maxsize=64)
def _currency(code: str) -> str:
    return normalize_currency(code)


def _validated_chunks(records: Iterable[UsageIn], size: int) -> Iterator[tuple[Rows, _Keyed | None]]:
    """`stored_rows` of `size` records at a time; with every record's row too when a key repeats in the
    chunk, whose references are checked all the same (pure: runs beside the writer)."""
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        rows = stored_rows(chunk)
        every = None if len(rows) == len(chunk) else [((r.source, r.external_id), _validate(r, {})) for r in chunk]
        yield rows, every
        gc.collect(1)


def _write_chunk(session: Session, incoming: Rows, zones: AccountZones, every: _Keyed | None = None) -> IngestResult:
    every_row = incoming.items() if every is None else every
    zones.check_references((key[1], row[0], row[1], row[2]) for key, row in every_row)
    deltas = Deltas(zones)
    result = upsert_rows(session, incoming, existing_rows(session, list(incoming)), deltas)
    deltas.apply(session)
    return result


def upsert_rows(session: Session, incoming: Rows, existing: dict[tuple[str, str], tuple[int, _Row]],
                deltas: Deltas) -> IngestResult:
    """Insert the rows not stored yet, update those stored with other values, and count both in `deltas`."""
    inserts: list[tuple[tuple[str, str], _Row]] = []
    updates: list[tuple[int, tuple[str, str], _Row]] = []
    unchanged = 0
    for key, row in incoming.items():
        old = existing.get(key)
        if old is None:
            inserts.append((key, row))
            deltas.add(row, +1)
        elif old[1] == row:
            unchanged += 1
        else:
            updates.append((old[0], key, row))
            deltas.add(old[1], -1)
            deltas.add(row, +1)
    if inserts:
        _bulk_insert(session, inserts)
    if updates:
        set_ids = dimension_set_ids(session, (row[10] for _id, _key, row in updates))
        session.execute(
            update(USAGE).where(USAGE.c.id == bindparam("_id")),
            [{"_id": row_id, **_as_columns(row, set_ids)} for row_id, _key, row in updates],
        )
    return IngestResult(inserted=len(inserts), updated=len(updates), unchanged=unchanged)


def existing_rows(session: Session, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, _Row]]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, external_id in keys:
        by_source[source].append(external_id)
    found: dict[tuple[str, str], tuple[int, _Row]] = {}
    instant = _instants(session.get_bind().dialect.name == "sqlite")
    for source, ids in by_source.items():
        stored = list(_stored(session, source, ids))
        pairs = _dimension_sets(session, {r[12] for r in stored})
        for r in stored:
            row: _Row = (
                r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], instant(r[10]), instant(r[11]),
                pairs[r[12]], json.loads(r[13]) if r[13] else {},
            )
            found[(source, r[1])] = (r[0], row)
    return found


def _dimension_sets(session: Session, ids: set[int]) -> dict[int, _Pairs]:
    """The pairs of stored dimension sets by id (0: none)."""
    found: dict[int, _Pairs] = {0: ()}
    wanted = sorted(ids - {0})
    if wanted:
        rows = session.execute(select(DIMENSION_SETS.c.id, cast(DIMENSION_SETS.c.dimensions, Text))
                               .where(DIMENSION_SETS.c.id.in_(wanted)))
        found.update({set_id: stored_pairs(text) for set_id, text in rows})
    return found


#: Dimension set ids by their sorted pairs, as `dimension_set_ids` gives them.
SetIds = dict[_Pairs, int]


def dimension_set_ids(session: Session, sets: Iterable[_Pairs]) -> SetIds:
    """The id of each dimension set (sorted pairs; () is 0), stored on first sight. Two writers storing the same
    new set at once both end up with the one row (the digest is unique; the second insert does nothing)."""
    ids: SetIds = {(): 0}
    digests = {_set_digest(pairs): pairs for pairs in set(sets) if pairs}
    if not digests:
        return ids
    known = select(DIMENSION_SETS.c.digest, DIMENSION_SETS.c.id).where(DIMENSION_SETS.c.digest.in_(list(digests)))
    found = {row.digest: row.id for row in session.execute(known)}
    # In digest order: two writers storing overlapping new sets lock them in the same order (no deadlock).
    missing = [{"digest": d, "dimensions": dict(digests[d])} for d in sorted(digests) if d not in found]
    if missing:
        insert = (sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert)(DIMENSION_SETS)
        session.execute(insert.on_conflict_do_nothing(index_elements=["digest"]), missing)
        found = {row.digest: row.id for row in session.execute(known)}
    ids.update({digests[d]: set_id for d, set_id in found.items()})
    return ids


def _set_digest(pairs: _Pairs) -> str:
    """What identifies a dimension set: a digest of its sorted pairs (as migration 0009 computes it too), cached:
    every batch of a source asks again for the same few hundred sets."""
    return _remembered(_SET_DIGESTS, pairs, lambda: hashlib.blake2b(json.dumps(pairs, separators=(",", ":")).encode(),
                                                                     digest_size=16).hexdigest())


_SET_DIGESTS: dict[_Pairs, str] = {}


def _stored(session: Session, source: str, ids: list[str]) -> Iterable[Sequence[Any]]:
    """The stored rows of `ids` as the driver reads them, asked with one parameter instead of thousands.

    Through the driver, not the column types: quantities and costs stay integer micro-units, and attributes
    come as text: decoding jsonb or JSON per row through the column type cost more than the whole lookup
    (bench.focus re-import).
    """
    columns = ("id, external_id, account_id, deployment_id, provider_id, meter, unit, quantity, cost, currency, "
               "period_start, period_end, dimension_set_id, CAST(attributes AS TEXT)")
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # The ids as one binary array; probed through the unique index only. Within a bulk load the
        # statistics still say "empty table", and the planner's bitmap scan then reads every row of the
        # source that this transaction inserted so far: a lookup that grows with the load.
        raw = connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            cursor.execute("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off")
            cursor.execute(f"SELECT {columns} FROM usage_records WHERE source = %s AND external_id = ANY(%b)",
                           (source, ids))
            found: list[Sequence[Any]] = cursor.fetchall()
            cursor.execute("RESET enable_bitmapscan; RESET enable_seqscan")
        return found
    # SQLite: the ids as one JSON parameter too; compiling an IN of 20 k bound values cost a sixth of the ingest.
    return connection.exec_driver_sql(
        f"SELECT {columns} FROM usage_records WHERE source = ? AND external_id IN (SELECT value FROM json_each(?))",
        (source, json.dumps(ids))).all()


def _instants(sqlite: bool) -> Callable[[Any], datetime]:
    """Stored instants as aware UTC datetimes: SQLite keeps naive-UTC text (parsed once per text, a batch
    shares a few); PostgreSQL's driver hands them in the session's time zone, which need not be UTC (the
    rollup deltas truncate to the hour: 10:30+05:30 must count in 05:00 UTC, not 10:00)."""
    if not sqlite:
        return _utc
    parsed: dict[str, datetime] = {}
    return lambda text: _remembered(parsed, text, lambda: datetime.fromisoformat(text).replace(tzinfo=UTC))


def _driver_converter(sqlite: bool) -> Callable[[Any], Any]:
    """`types.driver_value`, remembered per value: a batch shares a few instants and days (convert each once)."""
    converted: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        found = converted.get(value)
        if found is None:
            found = converted[value] = driver_value(value, sqlite)
        return found

    return convert


_STORED_DIMENSIONS: dict[str, _Pairs] = {}


def stored_pairs(text: str | None) -> _Pairs:
    """`_pairs` of a stored dimensions text, cached by text: stored rows repeat few dimension sets."""
    if not text:
        return ()
    return _remembered(_STORED_DIMENSIONS, text, lambda: _pairs(json.loads(text)))


def _as_columns(row: _Row, set_ids: SetIds) -> dict[str, Any]:
    """The columns an update writes (not the key)."""
    return {
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
        "dimension_set_id": set_ids[row[10]],
        "attributes": row[11],
    }


class Deltas:
    """Exact integer changes to the three rollups, keyed like their primary keys.

    Hourly and daily move record by record. For the dimension rollup records are first gathered per
    (account, day, meter, unit, dimension set), then each group is spread over its dimensions: a batch
    has far fewer groups than records × dimensions. Groups are kept (and spread) in the order of their
    last record, so a rollup row's `unit` is still that of the last record that touched it.
    """

    def __init__(self, zones: AccountZones) -> None:
        self._zones = zones
        self.hourly: dict[tuple[Any, ...], list[Any]] = {}
        self.daily: dict[tuple[Any, ...], list[Any]] = {}
        self._dimension_sets: dict[tuple[Any, ...], list[int]] = {}  # → [quantity, cost, records]
        self._dimensions: dict[tuple[Any, ...], list[Any]] = {}  # dimension buckets added already spread
        self._days: dict[tuple[int, datetime], tuple[datetime, date]] = {}

    def buckets(self, account: int, start: datetime) -> tuple[datetime, date]:
        """The UTC hour and the account's local day of `start` (a batch shares few instants: cache them)."""
        key = (account, start)
        found = self._days.get(key)
        if found is None:
            hour = start.replace(minute=0, second=0, microsecond=0)
            found = self._days[key] = (hour, start.astimezone(self._zones[account]).date())
        return found

    def add(self, row: _Row, sign: int) -> None:
        """Count `row` in (sign +1) or out of (sign -1) its buckets."""
        account, deployment, provider, meter, unit, qty, cost = row[:7]
        start: datetime = row[8]
        hour, day = self.buckets(account, start)
        dep, prov = deployment or 0, provider or 0
        self.hour((account, hour, dep, prov, meter), unit, sign * qty, sign * cost, sign)
        self.day((account, day, dep, prov, meter), unit, sign * qty, sign * cost, sign)
        if row[10]:
            self.dimension_set((account, day, meter, unit, row[10]), sign * qty, sign * cost, sign)

    def hour(self, key: tuple[Any, ...], unit: str, qty: int, cost: int, records: int) -> None:
        """Add to the hourly bucket (account, UTC hour, deployment or 0, provider or 0, meter)."""
        _bump(self.hourly, key, unit, qty, cost, records)

    def day(self, key: tuple[Any, ...], unit: str, qty: int, cost: int, records: int) -> None:
        """Add to the daily bucket (account, local day, deployment or 0, provider or 0, meter)."""
        _bump(self.daily, key, unit, qty, cost, records)

    def dimension_set(self, key: tuple[Any, ...], qty: int, cost: int, records: int) -> None:
        """Add to the group (account, local day, meter, unit, dimension pairs), spread over its dimensions later."""
        _gather(self._dimension_sets, key, qty, cost, records)

    def dimension(self, key: tuple[Any, ...], unit: str, qty: int, cost: int, records: int) -> None:
        """Add to the dimension bucket (account, local day, dimension key, dimension value, meter) directly, for
        whoever spreads its groups itself (`ingest_table`, a column at a time)."""
        _bump(self._dimensions, key, unit, qty, cost, records)

    def apply(self, session: Session) -> None:
        dimension = self._dimensions
        for (account, day, meter, unit, dims), (q, c, n) in self._dimension_sets.items():
            for dim_key, dim_value in dims:
                _bump(dimension, (account, day, dim_key, dim_value, meter), unit, q, c, n)
        _upsert(session, HOURLY, ("account_id", "hour", "deployment_id", "provider_id", "meter"), self.hourly)
        _upsert(session, DAILY, ("account_id", "day", "deployment_id", "provider_id", "meter"), self.daily)
        _upsert(session, DIMENSION, ("account_id", "day", "dim_key", "dim_value", "meter"), dimension)


def _gather(groups: dict[tuple[Any, ...], list[int]], key: tuple[Any, ...], qty: int, cost: int, n: int) -> None:
    """Add to the group of `key`, moving it last: the dict's order is that of each group's last record."""
    slot = groups.pop(key, None)
    if slot is None:
        groups[key] = [qty, cost, n]
    else:
        slot[0] += qty
        slot[1] += cost
        slot[2] += n
        groups[key] = slot


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
    """Add the deltas to the rollup rows (creating them), then drop buckets a correction emptied."""
    rows = [(*key, unit, q, c, n) for key, (unit, q, c, n) in deltas.items() if q or c or n]
    if not rows:
        return
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    cols = (*key_cols, "unit", "quantity", "cost", "records")
    mark = "?" if sqlite else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))}) "
        f"ON CONFLICT ({', '.join(key_cols)}) DO UPDATE SET unit = excluded.unit, "
        f"quantity = {table.name}.quantity + excluded.quantity, cost = {table.name}.cost + excluded.cost, "
        f"records = {table.name}.records + excluded.records"
    )
    if sqlite:
        bucket = _driver_converter(sqlite)  # only the second key column is an instant or a day (hour, day)
        connection.exec_driver_sql(sql, [(row[0], bucket(row[1]), *row[2:]) for row in rows])
    else:
        # COPY the deltas into a scratch table, then one set-based upsert: no round trip per row.
        scratch = f"delta_{table.name}"
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {scratch} (LIKE {table.name}) ON COMMIT DROP")
        _copy(session, scratch, cols, rows)
        values = f"VALUES ({', '.join([mark] * len(cols))})"
        connection.exec_driver_sql(sql.replace(values, f"SELECT {', '.join(cols)} FROM {scratch}"))
        connection.exec_driver_sql(f"TRUNCATE {scratch}")
    emptied = [key for key, (_u, _q, _c, n) in deltas.items() if n < 0]
    for key in emptied:  # a record moved out of this bucket; drop the bucket if nothing is left in it
        session.execute(
            delete(table).where(*(table.c[col] == val for col, val in zip(key_cols, key, strict=True)),
                                table.c.records <= 0)
        )


USAGE_COLUMNS = ("source", "external_id", "account_id", "deployment_id", "provider_id", "meter", "unit", "quantity",
                  "cost", "currency", "period_start", "period_end", "dimension_set_id", "attributes")


def _bulk_insert(session: Session, rows: Sequence[tuple[tuple[str, str], _Row]]) -> None:
    """Insert new usage rows through the driver directly (COPY on PostgreSQL).

    SQLAlchemy's per-row parameter processing costs more than the database's own work here, and the
    values are already exactly what the column types would store (integer micro-units, UTC instants).
    """
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    moment = _driver_converter(sqlite)
    set_ids = dimension_set_ids(session, (r[10] for _key, r in rows))
    tuples: list[tuple[Any, ...]] = [
        (key[0], key[1], r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], moment(r[8]), moment(r[9]), set_ids[r[10]])
        for key, r in rows
    ]
    columns: Sequence[str] = USAGE_COLUMNS
    if any(r[11] for _, r in rows):
        tuples = [(*t, _json(r[11]) if r[11] else "{}") for t, (_, r) in zip(tuples, rows, strict=True)]
    else:  # metering agents send no attributes: the column's default ('{}') fills it, one value less per row
        columns = USAGE_COLUMNS[:-1]
    if sqlite:
        marks = ", ".join("?" * len(columns))
        connection.exec_driver_sql(f"INSERT INTO usage_records ({', '.join(columns)}) VALUES ({marks})", tuples)
        return
    _copy(session, "usage_records", columns, tuples)


def _json(mapping: dict[str, Any]) -> str:
    """`json.dumps(mapping)`, byte for byte; text-only mappings (what sources send) encoded at twice the speed."""
    try:
        return "{" + ", ".join([_string(k) + ": " + _string(v) for k, v in mapping.items()]) + "}"
    except TypeError:  # a key or value that is not text
        return json.dumps(mapping)


def copy_binary(session: Session, table: str, columns: Sequence[str], data: bytes) -> None:
    """PostgreSQL COPY of data in its binary format (`binary_copy.copy_data`) through the session's own
    connection."""
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(data)


def _copy(session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL COPY through the session's own connection (same transaction)."""
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# --- invoices and payments -------------------------------------------------------------------------


def next_number(session: Session, counter: str) -> int:
    """The next value of a monotonic counter (row-locked on PostgreSQL, so two writers never share one).

    One upsert, because two writers may both be first: an update-else-insert lets both see no row and the
    second insert fail (two providers' first invoices synced at once)."""
    stmt = text("INSERT INTO counters (name, value) VALUES (:name, 1) "
                "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value")
    return int(session.execute(stmt, {"name": counter}).scalar_one())


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
