"""PostgreSQL's binary COPY format, built from Arrow columns a column at a time (no Python object per row).

COPY in text or CSV makes the server parse every integer and instant back from text, and check each JSON
value's syntax in the middle of it: a quarter of its work taking FOCUS batches. In the binary format a number
is its bytes; the data is what the server stores. Each row is a field count and, per field, a 32-bit length (-1
for NULL) then the value: integers big-endian, instants as microseconds since 2000-01-01 UTC, text and JSON as
UTF-8, jsonb as version 1 then its text (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format").

Each field becomes two Arrow binary columns (lengths, values), and one `binary_join_element_wise` lays every
row's pieces end to end in C++: the joined array's data is the COPY data.

The field encodings follow the columns' types as the database declares them (`column_types`): a value sent
in the wrong width would be refused ("incorrect binary data format"), not stored wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.orm import Session

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(4) + bytes(4)  # signature, flags (no OIDs), no header extension
TRAILER = (-1).to_bytes(2, "big", signed=True)
_POSTGRES_EPOCH_MICROS = 946_684_800_000_000  # 2000-01-01T00:00:00Z, PostgreSQL's instant zero, since 1970
_INTEGERS = {"int2": ">i2", "int4": ">i4", "int8": ">i8"}
_TEXTS = {"text", "varchar", "bpchar", "json"}
_NOTHING = pa.scalar(b"", pa.binary())
_NULL_LENGTH = pa.scalar((-1).to_bytes(4, "big", signed=True), pa.binary())


def column_types(session: Session, table: str, columns: Sequence[str]) -> list[str]:
    """The type name (pg_type.typname: int4, timestamptz, varchar, json…) of each of the table's columns."""
    found: dict[str, str] = dict(session.execute(
        text("SELECT attname, typname FROM pg_attribute JOIN pg_type ON pg_type.oid = atttypid "
             "WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped"),
        {"table": table}).all())
    return [found[column] for column in columns]


def copy_data(table: pa.Table, types: Sequence[str]) -> bytes:
    """The table's rows in COPY's binary format (header and trailer included), each column encoded as its
    database type (`column_types`, in the table's column order) reads it."""
    rows = table.num_rows
    pieces = [_fixed(np.full(rows, table.num_columns), ">i2")]
    for column, type_name in zip(table.columns, types, strict=True):
        pieces.extend(_field(column.combine_chunks(), type_name))
    joined = pc.binary_join_element_wise(*pieces, _NOTHING, null_handling="replace", null_replacement="")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=rows + 1, offset=4 * joined.offset)
    body = memoryview(joined.buffers()[2])[int(offsets[0]):int(offsets[-1])]
    return b"".join((HEADER, body, TRAILER))


def _field(array: pa.Array, type_name: str) -> tuple[pa.Array, pa.Array]:
    """Each row's length (-1 for NULL) and value, as two binary columns."""
    if pa.types.is_dictionary(array.type):  # each distinct value encoded once, then taken per row
        lengths, values = _field(array.dictionary, type_name)
        return lengths.take(array.indices).fill_null(_NULL_LENGTH), values.take(array.indices)
    values = _values(array, type_name)
    lengths = pc.binary_length(values).fill_null(-1).to_numpy(zero_copy_only=False)
    return _fixed(lengths, ">i4"), values


def _values(array: pa.Array, type_name: str) -> pa.Array:
    """The values as their type's binary form, NULL where the array has none."""
    if type_name in _INTEGERS and pa.types.is_integer(array.type):
        numbers = array.fill_null(0).to_numpy()
        width = np.iinfo(_INTEGERS[type_name])
        if len(numbers) and (numbers.min() < width.min or numbers.max() > width.max):
            raise OverflowError(f"a value of {array.type} does not fit a {type_name} column")
        return _with_nulls_of(array, _fixed(numbers, _INTEGERS[type_name]))
    if type_name == "timestamptz" and pa.types.is_timestamp(array.type):
        micros = array.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).fill_null(0).to_numpy()
        return _with_nulls_of(array, _fixed(micros - _POSTGRES_EPOCH_MICROS, ">i8"))
    if type_name in _TEXTS and pa.types.is_string(array.type):
        return array.cast(pa.binary())
    if type_name == "jsonb" and pa.types.is_string(array.type):
        return pc.binary_join_element_wise(pa.scalar(b"\x01", pa.binary()), array.cast(pa.binary()), _NOTHING)
    raise TypeError(f"no binary COPY encoding of {array.type} for a {type_name} column")


def _fixed(values: np.ndarray[Any, Any], dtype: str) -> pa.Array:
    """Numbers as a binary column of their bytes in `dtype` (big-endian, fixed width)."""
    data = np.ascontiguousarray(values.astype(dtype))
    width = data.dtype.itemsize
    offsets = np.arange(0, (len(data) + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _with_nulls_of(array: pa.Array, values: pa.Array) -> pa.Array:
    return values if not array.null_count else pc.if_else(array.is_valid(), values, pa.scalar(None, pa.binary()))
