"""Column-wise ingestion of usage tables (`billing_core.usage_table`, what the FOCUS import reads): the rules of
`billing_core.db.ingest`, without a Python object per row.

A table none of whose keys is stored yet (a file's first import) is inserted straight from its columns (SQLite:
one executemany over them; PostgreSQL: COPY in its binary format, `binary_copy`), and its rollup deltas are
summed with numpy per bucket — hourly, daily, and per dimension set — then added to `ingest.Deltas` in the order
of each bucket's last row, so the rollups read exactly as if the rows had been added one by one (a bucket's unit
is that of its last row). A table with stored keys among its rows is compared with them first: when they are all
unchanged (a re-import, a restated export) only its new rows are written, column-wise; when one of them changed
(a corrected file), the whole table goes through `ingest.upsert_rows` row by row, in file order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from billing_core.db.binary_copy import column_types, copy_data
from billing_core.db.ingest import (
    USAGE_COLUMNS,
    AccountZones,
    Deltas,
    Rows,
    SetIds,
    copy_binary,
    dimension_set_ids,
    existing_rows,
    stored_pairs,
    upsert_rows,
)
from billing_core.db.types import driver_value
from billing_core.results import IngestResult
from billing_core.usage_table import EPOCH, HOUR_MICROS, USAGE_TABLE, codes, distinct_rows


@dataclass(frozen=True)
class RowsWritten:
    """What `write_rows` did, and the rollup moves it leaves to apply (`Deltas.apply`) in the same transaction."""

    result: IngestResult
    rollups: Deltas


def write_rows(session: Session, source: str, table: pa.Table, *, fresh: bool = False,
               set_ids: SetIds | None = None) -> RowsWritten:
    """Upsert the table's rows (keys unique within it) by (source, external_id) in the session's transaction, and
    count them in the rollup deltas it returns. `fresh`: the caller knows that none of the keys is stored (no
    lookup first).

    The rollups are left to the caller, who may apply them after writing the next table's rows on another
    connection (an import's batches: their keys differ, their rollup rows do not).

    `set_ids`: dimension set ids the caller keeps from one table to the next of an import, filled here (asking
    for a batch's thousand sets again cost a tenth of a PostgreSQL import). A set stored by a transaction that
    then fails is gone: after a failed table the caller must drop what it kept (an import stops there)."""
    zones = AccountZones(session)
    deltas = Deltas(zones)
    if not table.num_rows:
        return RowsWritten(IngestResult(), deltas)
    table = table.unify_dictionaries().combine_chunks()
    zones.check_references(_references(table))
    ids = table.column("external_id")
    existing = {} if fresh else existing_rows(session, [(source, i) for i in ids.to_pylist()])
    rows = table_rows(source, table) if existing else {}
    if any(key in existing and existing[key][1] != row for key, row in rows.items()):
        # Row by row, in file order: updates and inserts count in the rollups in the order they come.
        return RowsWritten(upsert_rows(session, rows, existing, deltas), deltas)
    # (what a restated export mostly is: the rows already stored, unchanged, and new ones)
    stored = pc.is_in(ids, pa.array([external_id for _source, external_id in existing], pa.string()))
    new = table.filter(pc.invert(stored))
    if new.num_rows:
        # In key order: the unique index takes the rows page by page (FOCUS ids begin with their charge hour,
        # `focus.id_hour`, so a batch's keys lie together near the index's end, not at random all over it).
        _insert(session, source, new.sort_by("external_id"), {} if set_ids is None else set_ids,
                meanwhile=lambda: _count(deltas, zones, new))
    return RowsWritten(IngestResult(inserted=new.num_rows, unchanged=len(existing)), deltas)


def rows_table(rows: Rows) -> pa.Table:
    """`ingest.stored_rows` of one source as a usage table (how rows read by the row parser join the others)."""
    texts: dict[Any, str] = {}
    columns: list[Sequence[Any]] = list(zip(*((key[1], *row) for key, row in rows.items()), strict=True))
    if not columns:
        columns = [() for _name in USAGE_TABLE.names]
    (external_id, account, deployment, provider, meter, unit, quantity, cost, currency, start, end, dimensions,
     attributes) = columns
    return pa.Table.from_pydict({
        "external_id": external_id, "account_id": account, "deployment_id": deployment, "provider_id": provider,
        "meter": meter, "unit": unit, "quantity": quantity, "cost": cost, "currency": currency,
        "period_start": start, "period_end": end,
        "dimensions": [texts.get(p) or texts.setdefault(p, json.dumps(dict(p))) for p in dimensions],
        "attributes": [json.dumps(a) for a in attributes],
    }, schema=USAGE_TABLE)


def table_rows(source: str, table: pa.Table) -> Rows:
    """A usage table's rows as `ingest` compares them (stored pairs of dimensions, attributes as a mapping)."""
    columns = [_python_values(table.column(name), stored_pairs if name == "dimensions" else None)
               for name in USAGE_TABLE.names]
    rows: Rows = {}
    for (external_id, account, deployment, provider, meter, unit, quantity, cost, currency, start, end, dimensions,
         attributes) in zip(*columns, strict=True):
        rows[(source, external_id)] = (account, deployment, provider, meter, unit, quantity, cost, currency,
                                       start, end, dimensions, json.loads(attributes))
    return rows


def _python_values(column: pa.ChunkedArray | pa.Array, convert: Callable[[Any], Any] | None = None,
                   instant: Callable[[datetime], Any] = lambda moment: moment.astimezone(UTC)) -> list[Any]:
    """A column as Python values, one object per distinct value where the column repeats them: instants through
    `instant` (aware UTC datetimes by default), a dictionary's values through `convert`. A datetime made per row
    cost more than the rest of a re-import."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_timestamp(array.type):
        array = pc.dictionary_encode(array)
        return _shared([instant(moment) for moment in array.dictionary.to_pylist()], array.indices)
    if pa.types.is_dictionary(array.type):
        values = array.dictionary.to_pylist()
        return _shared([convert(v) for v in values] if convert else values, array.indices)
    plain: list[Any] = array.to_pylist()
    return plain


def _references(table: pa.Table) -> list[tuple[str, int, int | None, int | None]]:
    """One row of each distinct (account, deployment, provider): what `AccountZones.check_references` checks."""
    names = ("account_id", "deployment_id", "provider_id")
    first, _ = distinct_rows([codes(table.column(n)) for n in names], table.num_rows)
    picked = table.take(pa.array(first))
    return list(zip(picked.column("external_id").to_pylist(), *(picked.column(n).to_pylist() for n in names),
                    strict=True))


def _insert(session: Session, source: str, table: pa.Table, set_ids: SetIds, meanwhile: Callable[[], None]) -> None:
    """Insert the rows, calling `meanwhile()` (work that needs no database) while PostgreSQL takes them."""
    columns = [pa.array([source] * table.num_rows, pa.string()),
               *(_set_ids(session, table.column(name), set_ids) if name == "dimensions" else table.column(name)
                 for name in USAGE_TABLE.names)]
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        marks = ", ".join("?" * len(USAGE_COLUMNS))
        connection.exec_driver_sql(f"INSERT INTO usage_records ({', '.join(USAGE_COLUMNS)}) VALUES ({marks})",
                                   list(zip(*(_driver_values(c) for c in columns), strict=True)))
        meanwhile()  # (SQLite steps its B-trees a row at a time, taking the interpreter lock back for each)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="copy") as database:  # Arrow and the driver release the lock
        copied = database.submit(_copy_table, session, pa.table(columns, names=USAGE_COLUMNS))
        meanwhile()
        copied.result()


def _copy_table(session: Session, table: pa.Table) -> None:
    """COPY the table in PostgreSQL's binary format, each column as the database declares it."""
    types = column_types(session, "usage_records", table.column_names)
    copy_binary(session, "usage_records", table.column_names, copy_data(table, types))


def _set_ids(session: Session, dimensions: pa.ChunkedArray, known: SetIds) -> pa.Array:
    """Each row's dimension set id (`ingest.dimension_set_ids` of the sets not `known` yet), from the table's JSON
    texts of the sets."""
    array = dimensions.combine_chunks()
    pairs = [stored_pairs(text) for text in array.dictionary.to_pylist()]
    unknown = [p for p in pairs if p not in known]
    if unknown:
        known.update(dimension_set_ids(session, unknown))
    return pa.array([known[p] for p in pairs], pa.int64()).take(array.indices)


def _driver_values(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """A column as SQLite's driver takes it: instants as the stored text (`types.driver_value`)."""
    return _python_values(column, instant=lambda moment: driver_value(moment, True))


def _shared(values: list[Any], indices: pa.Array) -> list[Any]:
    """Each index's value, as one list (the values' objects shared, not one per row)."""
    objects = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # one by one: numpy would unpack values that are tuples into dimensions
        objects[i] = value
    taken: list[Any] = objects[indices.to_numpy(zero_copy_only=False)].tolist()
    return taken


def _count(deltas: Deltas, zones: AccountZones, table: pa.Table) -> None:
    """Add the new rows to the hourly, daily and dimension buckets, a bucket at a time."""
    rows = _BucketKeys.of(table, zones)
    last, (q, c, n) = _groups([*rows.ids, rows.hours - rows.hours.min(), rows.meter_at], rows.measures)
    for at, bq, bc, bn in zip(last.tolist(), q.tolist(), c.tolist(), n.tolist(), strict=True):
        deltas.hour((rows.account_of(at), EPOCH + timedelta(hours=int(rows.hours[at])), int(rows.deployment[at]),
                     int(rows.provider[at]), rows.meter_of(at)), rows.unit_of(at), bq, bc, bn)
    last, (q, c, n) = _groups([*rows.ids, rows.day_at, rows.meter_at], rows.measures)
    for at, bq, bc, bn in zip(last.tolist(), q.tolist(), c.tolist(), n.tolist(), strict=True):
        deltas.day((rows.account_of(at), rows.day_of(at), int(rows.deployment[at]), int(rows.provider[at]),
                    rows.meter_of(at)), rows.unit_of(at), bq, bc, bn)
    _count_dimensions(deltas, rows, table.column("dimensions").combine_chunks())


@dataclass(frozen=True)
class _BucketKeys:
    """What a table's rows are bucketed by, a column each: the referenced ids (and their codes), UTC hours, local
    days (codes into `days`), meter and unit codes with their names; and what buckets sum (quantity, cost, 1)."""

    account: np.ndarray[Any, Any]
    deployment: np.ndarray[Any, Any]  # 0 for none
    provider: np.ndarray[Any, Any]
    ids: list[np.ndarray[Any, Any]]  # codes of account, deployment, provider
    hours: np.ndarray[Any, Any]
    day_at: np.ndarray[Any, Any]
    days: list[date]
    meter_at: np.ndarray[Any, Any]
    meter_names: list[str]
    unit_at: np.ndarray[Any, Any]
    unit_names: list[str]
    measures: tuple[np.ndarray[Any, Any], ...]

    @classmethod
    def of(cls, table: pa.Table, zones: AccountZones) -> _BucketKeys:
        start = table.column("period_start").combine_chunks().cast(pa.int64()).to_numpy()
        account, deployment, provider = (table.column(n).fill_null(0).to_numpy() for n in
                                         ("account_id", "deployment_id", "provider_id"))
        meter, unit = (table.column(n).combine_chunks() for n in ("meter", "unit"))
        day_at, days = _local_days(zones, account, start)
        return cls(account, deployment, provider,
                   [codes(table.column(n)) for n in ("account_id", "deployment_id", "provider_id")],
                   start // HOUR_MICROS, day_at, days, codes(meter), meter.dictionary.to_pylist(), codes(unit),
                   unit.dictionary.to_pylist(),
                   (table.column("quantity").to_numpy(), table.column("cost").to_numpy(),
                    np.ones(table.num_rows, dtype=np.int64)))

    def account_of(self, row: int) -> int:
        return int(self.account[row])

    def day_of(self, row: int) -> date:
        return self.days[int(self.day_at[row])]

    def meter_of(self, row: int) -> str:
        return self.meter_names[int(self.meter_at[row])]

    def unit_of(self, row: int) -> str:
        return self.unit_names[int(self.unit_at[row])]


def _count_dimensions(deltas: Deltas, rows: _BucketKeys, dimensions: pa.DictionaryArray) -> None:
    """Add the rows to the buckets of each of their dimensions: rows are grouped per (account, day, meter, unit,
    dimension set), each group spread over its set's pairs (one entry per group and pair), and the entries summed
    per (account, day, pair, meter); a bucket's unit is that of its last group."""
    set_at = codes(dimensions)
    last, sums = _groups([rows.ids[0], rows.day_at, rows.meter_at, rows.unit_at, set_at], rows.measures)
    pair_of: dict[tuple[str, str], int] = {}
    set_pairs = [[pair_of.setdefault(pair, len(pair_of)) for pair in stored_pairs(text)]
                 for text in dimensions.dictionary.to_pylist()]
    sizes = np.array([len(pairs) for pairs in set_pairs], dtype=np.int64)
    flat = np.array([code for pairs in set_pairs for code in pairs], dtype=np.int64)
    group_set = set_at[last]
    group_size = sizes[group_set]
    entry_group = np.repeat(np.arange(len(last)), group_size)  # entries in the order of their group's last row
    if not len(entry_group):
        return  # no row has a dimension
    within = np.arange(len(entry_group)) - np.repeat(np.cumsum(group_size) - group_size, group_size)
    entry_pair = flat[np.repeat((np.cumsum(sizes) - sizes)[group_set], group_size) + within]
    row = last[entry_group]
    entry_last, (q, c, n) = _groups([rows.ids[0][row], rows.day_at[row], entry_pair, rows.meter_at[row]],
                                    tuple(total[entry_group] for total in sums))
    pairs = list(pair_of)
    for at, bq, bc, bn in zip(entry_last.tolist(), q.tolist(), c.tolist(), n.tolist(), strict=True):
        dim_key, dim_value = pairs[entry_pair[at]]
        r = int(row[at])
        deltas.dimension((rows.account_of(r), rows.day_of(r), dim_key, dim_value, rows.meter_of(r)), rows.unit_of(r),
                         bq, bc, bn)


def _groups(keys: list[np.ndarray[Any, Any]],
            measures: tuple[np.ndarray[Any, Any], ...]) -> tuple[np.ndarray[Any, Any], list[np.ndarray[Any, Any]]]:
    """The last row of each bucket of rows with equal keys, in the order of their last row, and the bucket's sum
    of each measure in the same order. The last row stands for the bucket: its unit is the bucket's."""
    rows = len(measures[0])
    _, bucket = distinct_rows(keys, rows)
    order = np.argsort(bucket, kind="stable")
    sorted_bucket = bucket[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_bucket[1:] != sorted_bucket[:-1])))
    ends = np.append(starts[1:], rows)
    last = order[ends - 1]
    by_last = np.argsort(last)
    return last[by_last], [_sums(measure[order], starts)[by_last] for measure in measures]


def _sums(values: np.ndarray[Any, Any], starts: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Sums of the runs starting at `starts`, exact: in Python integers when 64 bits might not hold them (a
    bucket's sum too big for the ledger's columns must fail there, loudly, not wrap around)."""
    if len(values) and int(np.abs(values).max()) * len(values) >= 1 << 63:
        values = values.astype(object)
    sums: np.ndarray[Any, Any] = np.add.reduceat(values, starts)
    return sums


def _local_days(zones: AccountZones, account: np.ndarray[Any, Any],
                start: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], list[date]]:
    """Each row's account-local day of its start, as an index into the list of days (a table has few instants)."""
    first, inverse = distinct_rows([account - account.min(), start - start.min()], len(start))
    days: list[date] = []
    for at in first.tolist():
        zone: ZoneInfo = zones[int(account[at])]
        days.append((EPOCH + timedelta(microseconds=int(start[at]))).astimezone(zone).date())
    distinct = sorted(set(days))
    number = {day: i for i, day in enumerate(distinct)}
    return np.array([number[d] for d in days], dtype=np.int64)[inverse], distinct
