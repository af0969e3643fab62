"""The column-wise FOCUS reader gives exactly what the row parser gives, and numbers repeats the same way."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from billing_core.db.ingest import stored_rows
from billing_core.db.ingest_table import rows_table, table_rows
from billing_core.focus_files import Batch, Piece, focus_batches, focus_batches_apart
from billing_core.sources.focus import FocusOptions, FocusParser, Rejection, _Occurrences, focus_parser, read_focus
from billing_core.sources.focus_columns import ColumnReader

SAMPLES = sorted((Path(__file__).parent / "data" / "focus").glob("*.csv"))


def _resolve(provider: str | None, sub_id: str | None, sub_name: str | None) -> tuple[int | None, int | None]:
    return (len(provider) if provider else None), (len(sub_id or sub_name or "") or None)


def _by_rows(path: Path) -> dict[tuple[str, str], tuple[object, ...]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        records = [r for r in read_focus(f, FocusOptions(account_id=3, currency="USD"), _resolve)
                   if not isinstance(r, Rejection)]
    return table_rows("focus", rows_table(stored_rows(records)))


def _by_chunks(path: Path, chunk_bytes: int) -> dict[tuple[str, str], tuple[object, ...]]:
    rows = {}
    with path.open("rb") as raw:
        for item in focus_batches(raw, FocusOptions(account_id=3, currency="USD"), _resolve, batch_rows=7,
                                  chunk_bytes=chunk_bytes):
            if isinstance(item, Batch):
                rows.update(table_rows("focus", item.table))
    return rows


def _generated(tmp_path: Path, rows: int) -> Path:
    """A file with repeated identities, nulls, quoted commas and newlines, tags, and odd amounts."""
    header = ["BilledCost", "EffectiveCost", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ServiceName",
              "ConsumedQuantity", "ConsumedUnit", "SubAccountId", "ProviderName", "ResourceId", "Tags",
              "ChargeDescription", "BillingCurrency"]
    rnd = random.Random(7)
    path = tmp_path / "generated.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        row: list[str] = []
        for i in range(rows):
            hour = i % 5
            if i % 10 == 9:  # the same charge twice: kept twice, the second numbered :2
                writer.writerow(row)
                continue
            row = [
                rnd.choice(["0.0000004", "12.5", "1E+2", "-3.2500005", "0"]), rnd.choice(["", "null", "1.0000001"]),
                f"2025-03-0{1 + hour % 3}T0{hour}:00:00Z", f"2025-03-0{1 + hour % 3}T0{hour + 1}:00:00Z",
                rnd.choice(["Usage", "Tax", "Credit"]), rnd.choice(["Compute", "Stóráge", ""]),
                rnd.choice(["", "NULL", "3.5", "0.0000015"]), rnd.choice(["Hours", "GB"]),
                rnd.choice(["111", "222", ""]), rnd.choice(["AWS", "Azure", ""]), rnd.choice([f"r-{i % 13}", ""]),
                rnd.choice(["", json.dumps({"team": "a", "env": "prod"}), json.dumps({"n": 1, "x": None})]),
                rnd.choice(["plain", "with, comma", "two\nlines", 'quote " inside']), "USD"]
            writer.writerow(row)
    return path


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_spec_sample_reads_the_same_by_chunks_as_by_rows(sample: Path) -> None:
    assert _by_chunks(sample, 1 << 20) == _by_rows(sample)


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 300, 1])
def test_chunks_of_any_size_read_a_generated_file_like_the_row_parser(tmp_path: Path, chunk_bytes: int) -> None:
    path = _generated(tmp_path, 400)
    expected = _by_rows(path)
    assert len(expected) == 400 and any(key[1].endswith(":2") for key in expected)  # repeats are numbered
    assert _by_chunks(path, chunk_bytes) == expected


def test_a_bad_row_in_a_chunk_is_rejected_by_line_and_the_rest_is_read(tmp_path: Path) -> None:
    path = _generated(tmp_path, 50)
    lines = path.read_bytes().split(b"\n")
    text = path.read_text().replace("2025-03-02T01:00:00Z,2025-03-02T02:00:00Z", "2025-03-02T01:00:00Z,yesterday", 1)
    path.write_text(text)
    bad_line = next(i for i, line in enumerate(text.split("\n"), start=1) if "yesterday" in line)
    rejections: list[Rejection] = []
    rows = 0
    with path.open("rb") as raw:
        for item in focus_batches(raw, FocusOptions(account_id=3, currency="USD"), _resolve, batch_rows=100):
            if isinstance(item, Batch):
                rows += item.table.num_rows
            else:
                rejections += item.rejections
    assert [(r.line, r.column) for r in rejections] == [(bad_line, "ChargePeriodEnd")]
    assert rows == 49 and len(lines) > 50


def test_numbering_a_chunk_at_once_equals_numbering_one_by_one() -> None:
    class Crowded(_Occurrences):
        BITS = 1 << 10  # a filter this small makes false positives, which must fall the same way

    for kind in (_Occurrences, Crowded):
        rnd = random.Random(11)
        pool = [os.urandom(16) for _ in range(2_000)]
        digests = [rnd.choice(pool) for _ in range(12_000)]
        one_by_one = kind()
        expected = [one_by_one.number(d) for d in digests]
        at_once, found, i = kind(), [], 0
        while i < len(digests):
            size = rnd.randint(1, 2_500)
            found += at_once.numbers(digests[i:i + size])
            i += size
        assert found == expected and max(expected) > 5


def test_a_clean_file_is_read_column_wise_not_handed_to_the_row_parser(tmp_path: Path) -> None:
    header, _, body = _generated(tmp_path, 400).read_bytes().partition(b"\n")
    parser = focus_parser(next(csv.reader([header.decode()])), FocusOptions(account_id=3, currency="USD"), _resolve)
    assert isinstance(parser, FocusParser)
    read = ColumnReader(parser).read(body)
    assert read is not None and read[0].num_rows == 400
    assert ColumnReader(parser).read(body.replace(b"12.5,", b"$12.50,", 1)) is None  # the row parser's to read


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 90, 40, 1])
def test_a_stray_quote_in_a_plain_value_does_not_move_where_records_end(tmp_path: Path, chunk_bytes: int) -> None:
    path = tmp_path / "stray.csv"
    lines = ["BilledCost,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ChargeDescription"]
    for i in range(12):
        description = {3: 'disk 5" SSD', 7: '"two\nlines"', 9: 'a ""b'}.get(i, f"row {i}")
        lines.append(f"{i}.5,2025-03-01T0{i % 9}:00:00Z,2025-03-01T0{i % 9}:30:00Z,Usage,{description}")
    path.write_text("\n".join(lines) + "\n")
    expected = _by_rows(path)
    assert len(expected) == 12
    assert _by_chunks(path, chunk_bytes) == expected


def test_a_file_read_in_a_child_process_gives_what_it_gives_read_here(tmp_path: Path) -> None:
    """`focus_batches_apart`: the same batches, pieces and rejections; the child asks for each name's ids once."""
    path = tmp_path / "export.csv"
    header, rows = _sample_rows()
    _write_csv(path, header, [*rows, ["not", "enough", "fields"], *rows])
    asked: list[tuple[str | None, str | None, str | None]] = []

    def resolve(provider: str | None, sub_id: str | None, sub_name: str | None) -> tuple[int | None, int | None]:
        asked.append((provider, sub_id, sub_name))
        return _resolve(provider, sub_id, sub_name)

    options = FocusOptions(account_id=3, currency="USD")
    apart = list(focus_batches_apart(path, options, resolve, batch_rows=5, chunk_bytes=300))
    with path.open("rb") as raw:
        here = list(focus_batches(raw, options, _resolve, batch_rows=5, chunk_bytes=300))
    assert [_described(item) for item in apart] == [_described(item) for item in here]
    assert any(isinstance(item, Piece) and item.rejections for item in apart)
    assert asked and len(asked) == len(set(asked))
    assert _readers() == []


def test_what_stops_the_child_is_raised_here_and_a_reader_left_early_is_stopped(tmp_path: Path) -> None:
    options = FocusOptions(account_id=3, currency="USD")
    with pytest.raises(FileNotFoundError):
        list(focus_batches_apart(tmp_path / "missing.csv", options, _resolve, batch_rows=5))
    path = tmp_path / "export.csv"
    header, rows = _sample_rows()
    _write_csv(path, header, rows * 50)
    batches = focus_batches_apart(path, options, _resolve, batch_rows=5, chunk_bytes=300)
    next(batches)
    assert len(_readers()) == 1
    batches.close()  # what a failed write does to the generator
    assert _readers() == []


def _readers() -> list[multiprocessing.process.BaseProcess]:
    """This process's FOCUS reader children (other tests leave render pools running)."""
    return [p for p in multiprocessing.active_children() if p.name == "focus-reader"]


def _sample_rows() -> tuple[list[str], list[list[str]]]:
    with SAMPLES[0].open(encoding="utf-8-sig", newline="") as f:
        header, *rows = [r for r in csv.reader(f) if r]
    return header, rows


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def _described(item: Batch | Piece) -> tuple[object, ...]:
    if isinstance(item, Batch):
        return "batch", item.table.to_pylist(), item.first_start, item.last_start
    return "piece", item.rows, item.cost, [(r.line, r.column, r.reason) for r in item.rejections], item.read_bytes


def test_a_reader_whose_importer_is_killed_outright_ends_too(tmp_path: Path) -> None:
    """An importer killed by SIGKILL (the OOM killer, `kill -9`) runs no cleanup: its reader must still end."""
    path = tmp_path / "export.csv"
    header, rows = _sample_rows()
    _write_csv(path, header, rows * 400)
    script = f"""
import multiprocessing, os, signal
from pathlib import Path
from billing_core.focus_files import focus_batches_apart
from billing_core.sources.focus import FocusOptions
batches = focus_batches_apart(Path({str(path)!r}), FocusOptions(account_id=3, currency="USD"),
                              lambda *names: (None, None), batch_rows=5, chunk_bytes=300)
next(batches)
[reader] = [p for p in multiprocessing.active_children() if p.name == "focus-reader"]
print(reader.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    reader = int(killed.stdout)
    deadline = time.monotonic() + 20
    while _running(reader) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(reader)


def _running(pid: int) -> bool:
    """Whether the process runs (a zombie has ended: it only waits for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
