"""PostgreSQL's binary COPY built from Arrow columns (`binary_copy`, how the FOCUS import inserts usage rows)
stores exactly the values the columns hold, whatever their type declares, nulls and edge values included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from billing_core.db.binary_copy import column_types, copy_data
from billing_core.db.engine import Database
from billing_core.db.ingest import copy_binary
from tests.conftest import _pg_database

ROWS: list[tuple[Any, ...]] = [
    (1, 7, 2**62, datetime(2026, 3, 8, 7, 30, 0, 123456, tzinfo=UTC), "Amazon EC2", "", '{"a": "b"}', '{"k": 1}'),
    (-32768, None, -(2**63), datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "Zürich – 東京", "x" * 300,
     '{"tag": "é\\"q\\""}', '{"n": [1, 2]}'),
    (32767, -(2**31), None, datetime(1970, 1, 1, tzinfo=UTC), "Amazon EC2", None, None, None),
    (0, 2**31 - 1, 0, None, "", "line\nbreak,comma\t\"quote\"", "{}", "{}"),
]


@pytest.fixture
def session(pg_schema: str) -> Iterator[Session]:
    database: Database = _pg_database(pg_schema)
    with database.unit_of_work() as session:
        session.execute(text(
            "CREATE TEMP TABLE copied (small int2, whole int4, big int8, moment timestamptz, "
            "name varchar(64) NOT NULL, note text, doc json, bin_doc jsonb)"))
        yield session
        session.rollback()
    database.dispose()


def _table(rows: list[tuple[Any, ...]]) -> pa.Table:
    small, whole, big, moment, name, note, doc, bin_doc = zip(*rows, strict=True)
    return pa.table({
        "small": pa.array(small, pa.int64()), "whole": pa.array(whole, pa.int64()), "big": pa.array(big, pa.int64()),
        "moment": pa.array(moment, pa.timestamp("us", tz="UTC")),
        "name": pa.array(name, pa.string()).dictionary_encode(),  # each distinct value encoded once
        "note": pa.array(note, pa.string()).dictionary_encode(),  # a null among them: a null index
        "doc": pa.array(doc, pa.string()),
        "bin_doc": pa.array(bin_doc, pa.string()),
    })


def _stored(session: Session) -> list[tuple[Any, ...]]:
    # json as the text stored (kept as sent, spacing and all); jsonb as the driver reads it back
    found = session.execute(text("SELECT small, whole, big, moment, name, note, CAST(doc AS TEXT), bin_doc "
                                 "FROM copied ORDER BY small")).all()
    return [tuple(row) for row in found]


def _copy(session: Session, table: pa.Table) -> None:
    data = copy_data(table, column_types(session, "copied", table.column_names))
    copy_binary(session, "copied", table.column_names, data)


def test_every_value_is_stored_as_the_columns_hold_it(session: Session) -> None:
    _copy(session, _table(ROWS))

    expected = [(*row[:7], None if row[7] is None else json.loads(row[7])) for row in ROWS]
    assert _stored(session) == sorted(expected, key=lambda row: row[0])


def test_a_slice_of_a_table_copies_only_its_own_rows(session: Session) -> None:
    _copy(session, _table(ROWS).slice(1, 2))

    assert [row[0] for row in _stored(session)] == [-32768, 32767]
    assert [row[4] for row in _stored(session)] == ["Zürich – 東京", "Amazon EC2"]


def test_a_number_too_wide_for_its_column_is_refused_before_anything_is_sent(session: Session) -> None:
    too_wide = _table([(2**15, *ROWS[0][1:])])

    with pytest.raises(OverflowError, match="int2"):
        copy_data(too_wide, column_types(session, "copied", too_wide.column_names))


def test_text_for_a_number_column_is_refused() -> None:
    with pytest.raises(TypeError, match="no binary COPY encoding of string for a int4 column"):
        copy_data(pa.table({"whole": pa.array(["7"])}), ["int4"])
