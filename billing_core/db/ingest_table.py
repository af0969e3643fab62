"""Column-wise ingestion of usage tables (`billing_core.usage_table`, what the FOCUS import reads): the rules of
`billing_core.db.ingest`, without a Python object per row.

A table none of whose keys is stored yet (a file's first import) is inserted straight from its columns (SQLite:
one executemany over them; PostgreSQL: COPY of the table as Arrow writes it in CSV), and its rollup deltas are
summed with numpy per bucket — hourly, daily, and per dimension set — then added to `ingest.Deltas` in the order
of each bucket's last row, so the rollups read exactly as if the rows had been added one by one (a bucket's unit
is that of its last row). A table with stored keys among its rows is compared with them first: when they are all
unchanged (a re-import, a restated export) only its new rows are written, column-wise; when one of them changed
(a corrected file), the whole table goes through `ingest.upsert_rows` row by row, in file order.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy.orm import Session

from billing_core.db.ingest import (
    USAGE_COLUMNS,
    AccountZones,
    Deltas,
    Rows,
    copy_text,
    dimension_set_ids,
    existing_rows,
    stored_pairs,
    upsert_rows,
)
from billing_core.db.types import driver_value
from billing_core.results import IngestResult
from billing_core.usage_table import EPOCH, HOUR_MICROS, USAGE_TABLE, codes, distinct_rows


def write_table(session: Session, source: str, table: pa.Table, *, fresh: bool = False) -> IngestResult:
    """Upsert the table's rows (keys unique within it) by (source, external_id) and move the rollups, in the
    session's transaction. `fresh`: the caller knows that none of the keys is stored (no lookup first)."""
    if not table.num_rows:
        return IngestResult()
    table = table.unify_dictionaries().combine_chunks()
    zones = AccountZones(session)
    zones.check_references(_references(table))
    deltas = Deltas(zones)
    ids = table.column("external_id")
    existing = {} if fresh else existing_rows(session, [(source, i) for i in ids.to_pylist()])
    rows = table_rows(source, table) if existing else {}
    if any(key in existing and existing[key][1] != row for key, row in rows.items()):
        # Row by row, in file order: updates and inserts count in the rollups in the order they come.
        result = upsert_rows(session, rows, existing, deltas)
    else:  # (what a restated export mostly is: the rows already stored, unchanged, and new ones)
        stored = pc.is_in(ids, pa.array([external_id for _source, external_id in existing], pa.string()))
        new = table.filter(pc.invert(stored))
        if new.num_rows:
            # In key order: the unique index takes the rows page by page (FOCUS ids begin with their charge hour,
            # `focus.id_hour`, so a batch's keys lie together near the index's end, not at random all over it).
            _insert(session, source, new.sort_by("external_id"))
            _count(deltas, zones, new)
        result = IngestResult(inserted=new.num_rows, unchanged=len(existing))
    deltas.apply(session)
    return result


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


def _insert(session: Session, source: str, table: pa.Table) -> None:
    columns = [pa.array([source] * table.num_rows, pa.string()),
               *(_set_ids(session, table.column(name)) if name == "dimensions" else table.column(name)
                 for name in USAGE_TABLE.names)]
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        marks = ", ".join("?" * len(USAGE_COLUMNS))
        connection.exec_driver_sql(f"INSERT INTO usage_records ({', '.join(USAGE_COLUMNS)}) VALUES ({marks})",
                                   list(zip(*(_driver_values(c) for c in columns), strict=True)))
        return
    # COPY the table as Arrow writes it in CSV: strings quoted (an empty one stays empty), nulls bare (NULL).
    plain = pa.table([_plain(c) for c in columns], names=list(USAGE_COLUMNS))
    buffer = io.BytesIO()
    pa_csv.write_csv(plain, buffer, pa_csv.WriteOptions(include_header=False))
    copy_text(session, "usage_records", USAGE_COLUMNS, buffer.getvalue())


def _set_ids(session: Session, dimensions: pa.ChunkedArray) -> pa.Array:
    """Each row's dimension set id (`ingest.dimension_set_ids`), from the table's JSON texts of the sets."""
    array = dimensions.combine_chunks()
    pairs = [stored_pairs(text) for text in array.dictionary.to_pylist()]
    ids = dimension_set_ids(session, pairs)
    return pa.array([ids[p] for p in pairs], pa.int64()).take(array.indices)


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


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column


def _count(deltas: Deltas, zones: AccountZones, table: pa.Table) -> None:
    """Add the new rows to the hourly, daily and dimension-set buckets, a bucket at a time."""
    rows = table.num_rows
    start = table.column("period_start").combine_chunks().cast(pa.int64()).to_numpy()
    account, deployment, provider = (table.column(n).fill_null(0).to_numpy() for n in
                                     ("account_id", "deployment_id", "provider_id"))
    meter, unit, dimensions = (table.column(n).combine_chunks() for n in ("meter", "unit", "dimensions"))
    meter_names, unit_names = meter.dictionary.to_pylist(), unit.dictionary.to_pylist()
    meter_at, unit_at = codes(meter), codes(unit)
    quantity, cost = table.column("quantity").to_numpy(), table.column("cost").to_numpy()
    hours = start // HOUR_MICROS
    day_at, days = _local_days(zones, account, start)
    ids = [codes(table.column(n)) for n in ("account_id", "deployment_id", "provider_id")]
    for at, q, c, n in _groups([*ids, hours - hours.min(), meter_at], rows, quantity, cost):
        deltas.hour((int(account[at]), EPOCH + timedelta(hours=int(hours[at])), int(deployment[at]),
                     int(provider[at]), meter_names[meter_at[at]]), unit_names[unit_at[at]], q, c, n)
    for at, q, c, n in _groups([*ids, day_at, meter_at], rows, quantity, cost):
        deltas.day((int(account[at]), days[day_at[at]], int(deployment[at]), int(provider[at]),
                    meter_names[meter_at[at]]), unit_names[unit_at[at]], q, c, n)
    dimension_at = codes(dimensions)
    texts = dimensions.dictionary.to_pylist()
    for at, q, c, n in _groups([ids[0], day_at, meter_at, unit_at, dimension_at], rows, quantity, cost):
        pairs = stored_pairs(texts[dimension_at[at]])
        if pairs:
            deltas.dimension_set((int(account[at]), days[day_at[at]], meter_names[meter_at[at]],
                                  unit_names[unit_at[at]], pairs), q, c, n)


def _groups(keys: list[np.ndarray[Any, Any]], rows: int, quantity: np.ndarray[Any, Any],
            cost: np.ndarray[Any, Any]) -> list[tuple[int, int, int, int]]:
    """(last row, quantity, cost, rows) of each bucket of rows with equal keys, in the order of their last row.

    The last row stands for the bucket: its unit is the bucket's (a bucket's unit is that of its last row)."""
    _, bucket = distinct_rows(keys, rows)
    order = np.argsort(bucket, kind="stable")
    sorted_bucket = bucket[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_bucket[1:] != sorted_bucket[:-1])))
    ends = np.append(starts[1:], rows)
    last = order[ends - 1]
    sums_q, sums_c = _sums(quantity[order], starts), _sums(cost[order], starts)
    counts = ends - starts
    by_last = np.argsort(last)
    return list(zip(last[by_last].tolist(), sums_q[by_last].tolist(), sums_c[by_last].tolist(),
                    counts[by_last].tolist(), strict=True))


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
