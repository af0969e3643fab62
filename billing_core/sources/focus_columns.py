"""FOCUS rows read column-wise (pyarrow), a chunk of the file at a time, into stored usage tables (pure).

Same contract as the row parser (`billing_core.sources.focus`), row for row: the same records, external ids,
dimensions and attributes. What makes it fast is where the work is done: the CSV is split and converted by
Arrow's C++ reader, every cell of a low-cardinality column (dates, services, regions, tags, sub-accounts…) is
read as a dictionary, so the parser's own functions run once per distinct value or combination of values
instead of once per row; amounts are converted by Arrow's decimal cast and rounded half-even to micro-units.
Per row, Python computes only the identity digest.

A chunk it cannot read exactly as the row parser would returns None, and is read row by row instead: a row of
the wrong width, a line that is not UTF-8, an empty or malformed cell, a date before its start, an amount
written like `$1,000.00`… Rejections (with their line and column) therefore always come from the row parser,
and a clean chunk never needs them.

What it makes of a chunk is a `billing_core.usage_table` (the stored form, column-wise).
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from billing_core.money import MAX_AMOUNT
from billing_core.sources.focus import (
    MAX_UNIT,
    MAX_VALUE,
    NULLS,
    SEPARATOR,
    Categories,
    FocusParser,
    _RowError,
    clean,
    digests_of,
    id_hour,
)
from billing_core.usage_table import EPOCH, HOUR_MICROS, INSTANT, TEXT, USAGE_TABLE, as_strings, distinct_rows

_DECIMAL = pa.decimal128(38, 18)  # any amount below MAX_AMOUNT with up to 18 decimals, exactly
_MICRO_DECIMAL = pa.decimal128(38, 6)
_NULL_SPELLINGS = pa.array(sorted(NULLS))
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


# An import keeps three processes busy (this reader, the importer, the database): below four cores, Arrow's
# parsing threads only take turns with them (1 M-row import on 2 cores: 108 k -> 117 k rows/s without them).
_PARSE_THREADS = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) >= 4


class ColumnReader:
    """Reads chunks of one file (whole records, no header) through the file's `FocusParser`."""

    def __init__(self, parser: FocusParser) -> None:
        self.parser = parser
        self.amounts = {parser.cost_at, *(at for _k, _n, at in parser.other_costs)}
        if parser.qty_at is not None:
            self.amounts.add(parser.qty_at)
        used = {parser.start_at, parser.end_at, *self.amounts, *parser.meter_at, *parser.provider_at,
                *parser.identity_at, *parser.dimension_at,
                *(i for _k, at in parser.text_attributes for i in at)}
        used.update(i for i in (parser.currency_at, parser.unit_at, parser.sub_id_at, parser.sub_name_at)
                    if i is not None)
        self.names = [str(i) for i in range(parser.width)]
        self._read = pa_csv.ReadOptions(column_names=self.names, use_threads=_PARSE_THREADS, block_size=1 << 20)
        self._parse = pa_csv.ParseOptions(newlines_in_values=True)
        self._convert = pa_csv.ConvertOptions(
            include_columns=[str(i) for i in sorted(used)], strings_can_be_null=False, null_values=[],
            quoted_strings_can_be_null=False, check_utf8=True,
            column_types={str(i): pa.string() if i in self.amounts else TEXT for i in used})

    def read(self, data: bytes) -> tuple[pa.Table, Decimal] | None:
        """The chunk's rows as a stored usage table and the sum of their cost, or None if any row of it must be
        read by the row parser (see the module doc)."""
        try:
            data.decode("utf-8")  # every line, not only the columns read: the row parser rejects one that is not
            chunk = pa_csv.read_csv(io.BytesIO(data), read_options=self._read, parse_options=self._parse,
                                    convert_options=self._convert)
        except (UnicodeDecodeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None  # a row of the wrong width, a line that is not UTF-8, an unclosed quote…
        return self.read_table(chunk)

    def read_table(self, chunk: pa.Table) -> tuple[pa.Table, Decimal] | None:
        """`read` of rows already split into columns, named by their position in the header (`text_columns`
        makes them of any Arrow table)."""
        try:
            return _Chunk(self.parser, chunk).table()
        except _Unreadable:
            return None

    def text_columns(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        """The columns this reader uses, as the CSV reader gives them: text as written (dates, numbers and
        JSON objects written out, a missing value empty), dictionary-encoded but for amounts."""
        columns, names = [], []
        for at in sorted(int(name) for name in self._convert.include_columns):
            text = as_text(batch.column(at))
            columns.append(text if at in self.amounts else pc.dictionary_encode(text))
            names.append(str(at))
        return pa.Table.from_arrays(columns, names=names)


def as_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column of any type as text, as a FOCUS CSV would write it: JSON for maps, structs and lists (Parquet
    exports keep Tags as a map), ISO 8601 for instants, nothing for a missing value."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if pa.types.is_map(kind):
        values = [json.dumps(dict(v)) if v is not None else "" for v in array.to_pylist()]
        return pa.array(values, pa.string())
    if pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.array([json.dumps(v) if v is not None else "" for v in array.to_pylist()], pa.string())
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
    text = array if pa.types.is_string(array.type) else as_strings(array)
    return text.fill_null("")


class _Unreadable(Exception):
    """A cell this reader cannot read exactly as the row parser would (the row parser decides its fate)."""


class _Chunk:
    def __init__(self, parser: FocusParser, chunk: pa.Table) -> None:
        self.parser = parser
        self.chunk = chunk
        self.rows = chunk.num_rows
        self._cleaned: dict[int, tuple[np.ndarray[Any, Any], list[str]]] = {}

    def table(self) -> tuple[pa.Table, Decimal]:
        p = self.parser
        start, end = self._instant(p.start_at, "ChargePeriodStart"), self._instant(p.end_at, "ChargePeriodEnd")
        if np.any(end < start):
            raise _Unreadable
        cost = _micros(self._amount_column(p.cost_at), required=True)
        self._check_currency()
        quantity, unit = self._quantity()
        categories, category_of = self._categories()
        attributes = self._attributes()
        # Last, once every cell is known to be readable: numbering the ids counts repeats in the file, which a
        # chunk handed to the row parser must not have done already.
        external_ids = self._external_ids([c.provider for c in categories], category_of, start)
        columns: dict[str, pa.Array] = {
            "external_id": external_ids,
            "account_id": pa.array(np.full(self.rows, p.options.account_id, dtype=np.int64)),
            "deployment_id": _taken([c.deployment_id for c in categories], category_of, pa.int64()),
            "provider_id": _taken([c.provider_id for c in categories], category_of, pa.int64()),
            "meter": _encoded([c.meter for c in categories], category_of),
            "unit": unit,
            "quantity": pa.array(quantity),
            "cost": pa.array(cost),
            "currency": _encoded([p.currency], np.zeros(self.rows, dtype=np.int32)),
            "period_start": pa.array(start, INSTANT),
            "period_end": pa.array(end, INSTANT),
            "dimensions": _encoded([json.dumps(c.dimensions) for c in categories], category_of),
            "attributes": attributes,
        }
        # Summed as Python integers: ten amounts near the ledger's limit would overflow 64 bits silently.
        return pa.Table.from_pydict(columns, schema=USAGE_TABLE), Decimal(sum(cost.tolist())).scaleb(-6)

    # --- cells ---------------------------------------------------------------------------------------------

    def _text(self, at: int) -> tuple[np.ndarray[Any, Any], list[str]]:
        """A dictionary column's indices and its cleaned values (each distinct cell cleaned once)."""
        found = self._cleaned.get(at)
        if found is None:
            column = self.chunk.column(str(at)).combine_chunks()
            indices = column.indices.to_numpy(zero_copy_only=False)
            found = self._cleaned[at] = (indices, [clean(v) for v in column.dictionary.to_pylist()])
        return found

    def _decoded(self, at: int) -> pa.Array:
        indices, values = self._text(at)
        return pa.array(values, pa.string()).take(pa.array(indices))

    def _amount_column(self, at: int) -> pa.Array:
        return self.chunk.column(str(at)).combine_chunks()

    def _instant(self, at: int, column: str) -> np.ndarray[Any, Any]:
        """Microseconds since the epoch (UTC) of a date-time column, each distinct text parsed by the parser."""
        indices, values = self._text(at)
        try:
            parsed = [self.parser.instants.parse(v, column) for v in values]
        except _RowError:
            raise _Unreadable from None
        micros: np.ndarray[Any, Any] = np.array([_epoch_micros(moment) for moment in parsed], dtype=np.int64)[indices]
        return micros

    def _check_currency(self) -> None:
        at = self.parser.currency_at
        if at is None:
            return
        indices, values = self._text(at)
        try:
            for used in np.unique(indices).tolist():
                self.parser.check_currency(values[used])
        except _RowError:
            raise _Unreadable from None

    def _quantity(self) -> tuple[np.ndarray[Any, Any], pa.Array]:
        """ConsumedQuantity in micro-units and ConsumedUnit (both nothing where no quantity is given)."""
        p = self.parser
        if p.qty_at is None:
            return np.zeros(self.rows, dtype=np.int64), _encoded([""], np.zeros(self.rows, dtype=np.int32))
        raw = self._amount_column(p.qty_at)
        given = pc.invert(pc.is_in(raw, _NULL_SPELLINGS)).to_numpy(zero_copy_only=False)
        quantity = _micros(pc.if_else(pa.array(given), raw, "0"), required=False)
        if p.unit_at is None:
            return quantity, _encoded([""], np.zeros(self.rows, dtype=np.int32))
        indices, values = self._text(p.unit_at)
        units = [v[:MAX_UNIT] for v in values]
        none = len(units)
        return quantity, _encoded([*units, ""], np.where(given, indices, none).astype(np.int32))

    # --- per combination of low-cardinality cells ----------------------------------------------------------

    def _categories(self) -> tuple[list[Categories], np.ndarray[Any, Any]]:
        """`parser.categories` of each distinct combination of the cells it reads, and each row's combination."""
        p = self.parser
        positions = sorted({*p.meter_at, *p.provider_at, *p.dimension_at,
                            *(i for i in (p.sub_id_at, p.sub_name_at) if i is not None)})
        combinations, inverse = _combinations([self._text(at)[0] for at in positions], self.rows)
        cells = [""] * p.width
        values = [(at, self._text(at)[1]) for at in positions]
        categories = []
        try:
            for combination in combinations:
                for (at, texts), index in zip(values, combination, strict=True):
                    cells[at] = texts[index]
                categories.append(p.categories(cells))
        except _RowError:
            raise _Unreadable from None
        return categories, inverse

    def _external_ids(self, providers: list[str | None], category_of: np.ndarray[Any, Any],
                      start: np.ndarray[Any, Any]) -> pa.Array:
        """The rows' ids: the hour of their start and a digest of their identity cells and provider, numbered on
        repeats — `FocusParser.external_id`, a column at a time."""
        p = self.parser
        provider_names = pa.array([provider or "" for provider in providers], pa.string()).take(pa.array(category_of))
        joined = pc.binary_join_element_wise(*(self._decoded(at) for at in p.identity_at), provider_names, SEPARATOR)
        digests = digests_of(joined.cast(pa.binary()).to_pylist())
        numbers = np.array(p.occurrences.numbers(digests))
        distinct, hour_of = np.unique(start // HOUR_MICROS, return_inverse=True)
        heads = pa.array([p.prefix + id_hour(EPOCH + timedelta(hours=h)) for h in distinct.tolist()], pa.string())
        ids = pc.binary_join_element_wise(heads.take(pa.array(hour_of)), _hex(b"".join(digests), self.rows), ":")
        repeats = numbers > 1
        if not repeats.any():
            return ids
        suffixes = np.full(self.rows, "", dtype=object)
        suffixes[repeats] = [f":{n}" for n in numbers[repeats].tolist()]
        return pc.binary_join_element_wise(ids, pa.array(suffixes, pa.string()), "")

    def _attributes(self) -> pa.Array:
        """Each row's attributes as JSON text, keys in the row parser's order, empty values left out."""
        p = self.parser
        pieces: list[pa.Array] = []
        for key, positions in p.text_attributes:
            pieces.append(_json_pair(key, pc.coalesce(*(self._literals(at) for at in positions))))
        for key, _name, at in p.other_costs:
            raw = self._amount_column(at)
            given = pc.invert(pc.is_in(raw, _NULL_SPELLINGS))
            _decimals(pc.if_else(given, raw, "0"))  # kept as written, once it is known to be a number (ASCII)
            kept = pc.if_else(given, pc.utf8_slice_codeunits(raw, 0, MAX_VALUE), pa.scalar(None, pa.string()))
            pieces.append(_json_pair(key, pc.binary_join_element_wise('"', kept, '"', "")))
        # Each present pair ends with ", ", an absent one is empty; the last ", " goes (a JSON value ends in `"`).
        body = pc.binary_join_element_wise(*(pc.binary_join_element_wise(piece, ", ", "") for piece in pieces), "",
                                           null_handling="replace", null_replacement="") if pieces else \
            pa.array([""] * self.rows, pa.string())
        return pc.binary_join_element_wise("{", pc.utf8_rtrim(body, characters=", "), "}", "")

    def _literals(self, at: int) -> pa.Array:
        """A text column's cleaned cells as JSON string literals (cut to the ledger's width), null where empty."""
        indices, values = self._text(at)
        literals = [json.dumps(v[:MAX_VALUE]) if v else None for v in values]
        return pa.array(literals, pa.string()).take(pa.array(indices))


def _micros(raw: pa.Array, *, required: bool) -> np.ndarray[Any, Any]:
    """Integer micro-units of a column of amounts as written, rounded half-even like the row parser's `_amount`."""
    if required and pc.any(pc.is_in(raw, _NULL_SPELLINGS)).as_py():
        raise _Unreadable
    exact = _decimals(raw)
    smallest, largest = pc.min_max(exact).values()
    if smallest.is_valid and (abs(smallest.as_py()) >= MAX_AMOUNT or abs(largest.as_py()) >= MAX_AMOUNT):
        raise _Unreadable
    rounded = pc.cast(pc.round(exact, ndigits=6, round_mode="half_to_even"), _MICRO_DECIMAL)
    # decimal128 is a 128-bit two's complement unscaled integer: in micro-units, below MAX_AMOUNT, its low
    # 64 bits are the value itself.
    words = np.frombuffer(rounded.buffers()[1], dtype="<i8")
    micros: np.ndarray[Any, Any] = words[2 * rounded.offset:2 * (rounded.offset + len(rounded)):2].copy()
    return micros


def _decimals(raw: pa.Array) -> pa.Array:
    """Amounts as written, exactly; what Arrow does not read as a number (`$1,000.00`, blanks, more than 18
    decimals) is left to the row parser, which reads it or says why not."""
    try:
        return pc.cast(raw, _DECIMAL)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _Unreadable from None


def _combinations(indices: list[np.ndarray[Any, Any]], rows: int) -> tuple[list[tuple[int, ...]], np.ndarray[Any, Any]]:
    """The distinct combinations of the index columns' values, and for each row the number of its combination."""
    if not indices:
        return [()], np.zeros(rows, dtype=np.int32)
    first, inverse = distinct_rows(indices, rows)
    combinations = np.stack([column[first] for column in indices], axis=1).tolist()
    return [tuple(c) for c in combinations], inverse.astype(np.int32)


def _encoded(values: list[str], indices: np.ndarray[Any, Any]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), pa.array(values, pa.string()))


def _taken(values: list[Any], indices: np.ndarray[Any, Any], kind: pa.DataType) -> pa.Array:
    return pa.array(values, kind).take(pa.array(indices))


def _json_pair(key: str, literal: pa.Array) -> pa.Array:
    """`"key": literal`, null where the literal is null (a value left out)."""
    return pc.binary_join_element_wise(json.dumps(key) + ": ", literal, "")


def _epoch_micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _hex(digests: bytes, count: int) -> pa.Array:
    """The hex text (`bytes.hex`) of each of `count` equal-sized digests laid end to end, as strings."""
    raw = np.frombuffer(digests, dtype=np.uint8)
    text = np.empty(raw.size * 2, dtype=np.uint8)
    text[0::2], text[1::2] = _HEX_DIGITS[raw >> 4], _HEX_DIGITS[raw & 15]
    width = text.size // count if count else 0
    offsets = np.arange(0, width * count + 1, max(width, 1), dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(text))
