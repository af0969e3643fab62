"""Usage records column-wise (Arrow), as `usage_records` stores them: what the FOCUS import hands from its reader
(`billing_core.sources.focus_columns`) to its writer (`billing_core.db.ingest_table`). Pure: no database.

One source per table (given beside it). Quantity and cost are integer micro-units, instants UTC; `dimensions` is
each row's dimension set as JSON text and `attributes` each row's attributes as JSON text. Low-cardinality text
columns are dictionary-encoded: a file has few meters, units and dimension sets, and the writer groups by them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MICROS = 3_600_000_000
TEXT = pa.dictionary(pa.int32(), pa.string())
INSTANT = pa.timestamp("us", tz="UTC")
USAGE_TABLE = pa.schema([
    ("external_id", pa.string()), ("account_id", pa.int64()), ("deployment_id", pa.int64()),
    ("provider_id", pa.int64()), ("meter", TEXT), ("unit", TEXT), ("quantity", pa.int64()), ("cost", pa.int64()),
    ("currency", TEXT), ("period_start", INSTANT), ("period_end", INSTANT), ("dimensions", TEXT),
    ("attributes", pa.string()),
])


def distinct_rows(columns: list[np.ndarray[Any, Any]], rows: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The first row of each distinct combination of the (non-negative integer) columns, in the order of the
    combinations, and for each row the number of its combination.

    Columns are folded into one integer key, renumbering the combinations seen so far densely whenever the key
    could outgrow 62 bits: sorting one column of integers is far cheaper than sorting rows."""
    key = np.zeros(rows, dtype=np.int64)
    span = 1
    for column in columns:
        size = int(column.max()) + 1 if len(column) else 1
        if span * size >= 1 << 62:
            _, key = np.unique(key, return_inverse=True)
            span = int(key.max()) + 1
        key = key * size + column.astype(np.int64)
        span *= size
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, np.asarray(inverse).reshape(-1)


def codes(column: pa.ChunkedArray | pa.Array) -> np.ndarray[Any, Any]:
    """Non-negative integer codes of a column (equal values, equal codes): a dictionary column's indices, or an
    integer column's values shifted to start at 0 (a null counted as -1 before the shift)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        return np.asarray(array.indices.to_numpy(zero_copy_only=False))
    if array.null_count:
        array = array.fill_null(-1)
    values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)
    return values - values.min() if len(values) else values


def as_strings(array: pa.Array) -> pa.Array:
    """`pc.cast(array, pa.string())`, instants cast once per distinct instant: Arrow formats each instant in its
    time zone slowly (a column of 20 k instants took 21 ms, its few distinct ones 0.2 ms)."""
    if not pa.types.is_timestamp(array.type):
        return pc.cast(array, pa.string())
    instants = pc.dictionary_encode(array)
    return pc.cast(instants.dictionary, pa.string()).take(instants.indices)
