"""FOCUS files → batches of usage tables (`billing_core.usage_table`), read as they stream by (no database).

A file is CSV, plain or gzip-compressed, or Parquet (recognised by its content, not its name). A Parquet file is
read a batch of rows at a time and each batch goes the way of a CSV chunk (`_parquet_pieces`). After its header,
a CSV file is cut into
chunks of whole records (`CHUNK_BYTES` or so). A chunk is read column-wise (`focus_columns`), or, if anything in
it needs the row parser (a malformed row, a line that is not UTF-8, an amount written `$1,000.00`…), row by row
(`focus.FocusParser.rows`, then `ingest.stored_rows`): either way into the same usage table, through the one
parser of the file, so ids and numbering do not depend on how a chunk was read. Rejections name the file line.

The chunks' rows are then joined and cut into batches of exactly `batch_rows` rows (the import writes one batch
per transaction). Memory holds a chunk and a batch or two, whatever the size of the file.

`focus_batches_apart` reads a file in a child process, so the importer's process is left to write: reading and
writing each take most of a core, and in one process they would share one interpreter lock.
"""

from __future__ import annotations

import codecs
import csv
import functools
import gc
import io
import multiprocessing
import pickle
import signal
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from itertools import chain
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.ipc
import pyarrow.parquet as pq

from billing_core.db.ingest import stored_rows
from billing_core.db.ingest_table import rows_table
from billing_core.records import UsageIn
from billing_core.sources.focus import FocusOptions, FocusParser, Rejection, Resolver, focus_parser
from billing_core.sources.focus_columns import ColumnReader, as_text

CHUNK_BYTES = 8 << 20  # Arrow's reader splits a chunk across threads in blocks of 1 MiB
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib reads the gzip header and trailer itself


def focus_batches(raw: IO[bytes], options: FocusOptions, resolve: Resolver, *, batch_rows: int,
                  chunk_bytes: int = CHUNK_BYTES) -> Iterator[Batch | Piece]:
    """The file's rows in batches of `batch_rows` (the last one shorter), each preceded by the pieces it was made
    of, for their counts: rows read, rejections, cost. `raw` is the file opened in binary."""
    counted = CountingReader(raw)
    if _is_parquet(raw):
        pieces = _parquet_pieces(raw, counted, options, resolve, chunk_bytes)
    else:
        pieces = _pieces(_uncompressed(io.BufferedReader(counted, 1 << 20)), options, resolve, chunk_bytes)
    pending: list[pa.Table] = []
    held = 0
    for piece in pieces:
        piece.read_bytes = counted.read_bytes
        yield piece
        if piece.table is not None and piece.table.num_rows:
            pending.append(piece.table)
            held += piece.table.num_rows
        while held >= batch_rows:
            table = pa.concat_tables(pending)
            yield _batch(table.slice(0, batch_rows))
            pending, held = [table.slice(batch_rows)], held - batch_rows
            gc.collect(1)  # a batch makes no cycles; the young generations are swept after each
    if held:
        yield _batch(pa.concat_tables(pending))


def focus_batches_apart(path: Path, options: FocusOptions, resolve: Resolver, *, batch_rows: int,
                        chunk_bytes: int = CHUNK_BYTES) -> Iterator[Batch | Piece]:
    """`focus_batches` of the file at `path`, read in a child process while the caller writes what it yields.

    The child asks this process for provider and deployment ids (`resolve`: only the caller's process touches
    the database), and runs at most a batch ahead (the pipe holds one). An exception in the child is raised
    here; when the caller stops early or fails, the child is stopped. The child is forked: it starts in
    milliseconds with pyarrow already loaded, where a fresh interpreter would import it again for half a second.
    """
    ours, theirs = multiprocessing.Pipe()
    for stream in (sys.stdout, sys.stderr):  # the child flushes its copy of what is buffered when it ends
        stream.flush()
    child = multiprocessing.get_context("fork").Process(
        target=_read_in_child, args=(theirs, ours, path, options, batch_rows, chunk_bytes), name="focus-reader",
        daemon=True)
    child.start()
    theirs.close()
    try:
        while True:
            try:
                kind, payload = ours.recv()
            except EOFError:
                child.join()
                raise RuntimeError(f"the process reading {path.name} ended without a word "
                                   f"(exit code {child.exitcode})") from None
            if kind == "resolve":
                ours.send(resolve(*payload))
            elif kind == "batch":
                table, first_start, last_start = payload
                yield Batch(pa.ipc.open_stream(table).read_all(), first_start, last_start)
            elif kind == "piece":
                yield payload
            elif kind == "failed":
                raise payload
            else:
                break
        child.join()
    finally:
        ours.close()
        if child.is_alive():
            child.terminate()
            child.join()


def _read_in_child(conn: Connection, parents_end: Connection, path: Path, options: FocusOptions, batch_rows: int,
                   chunk_bytes: int) -> None:
    """The child's side of `focus_batches_apart`: each batch and piece sent as it is read, then "done", or the
    exception that stopped the reading. A batch goes as an Arrow IPC stream of its own rows (pickling a slice
    would send the whole table it was cut from); a piece goes without its table (the batch carries its rows)."""
    parents_end.close()  # else a parent killed outright leaves the pipe open, and this child waiting on it forever
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the child

    @functools.cache  # asked of the parent once per names: a chunk asks again for each, and the parent is writing
    def resolve(provider: str | None, sub_id: str | None, sub_name: str | None) -> tuple[int | None, int | None]:
        conn.send(("resolve", (provider, sub_id, sub_name)))
        found: tuple[int | None, int | None] = conn.recv()
        return found

    try:
        with path.open("rb") as raw:
            for item in focus_batches(raw, options, resolve, batch_rows=batch_rows, chunk_bytes=chunk_bytes):
                if isinstance(item, Batch):
                    conn.send(("batch", (_ipc_bytes(item.table), item.first_start, item.last_start)))
                else:
                    conn.send(("piece", replace(item, table=None)))
    except Exception as exc:  # whatever stopped the reading is the parent's to raise
        conn.send(("failed", _sendable(exc)))
    else:
        conn.send(("done", None))
    finally:
        conn.close()


def _ipc_bytes(table: pa.Table) -> bytes:
    """The table's own rows (one chunk, one dictionary per column) as an Arrow IPC stream."""
    table = table.unify_dictionaries().combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _sendable(exc: Exception) -> Exception:
    """The exception itself if the parent can rebuild it from a pickle, else a RuntimeError naming it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # e.g. an __init__ whose arguments are not the exception's args
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


@dataclass
class Piece:
    """A chunk of the file, read: its rows as a usage table, and what the report counts of them."""

    table: pa.Table | None = None
    rows: int = 0  # rows read (a row given twice is one stored row but two read)
    rejections: list[Rejection] = field(default_factory=list)
    cost: Decimal = Decimal(0)
    read_bytes: int = 0  # of the file (compressed, if it is), by the end of this piece


@dataclass
class Batch:
    """Rows written in one transaction, with the earliest and latest charge period start among them."""

    table: pa.Table
    first_start: datetime
    last_start: datetime


def _batch(table: pa.Table) -> Batch:
    first, last = pc.min_max(table.column("period_start")).values()
    return Batch(table, first.as_py().astimezone(UTC), last.as_py().astimezone(UTC))


def _pieces(data: io.BufferedReader, options: FocusOptions, resolve: Resolver, chunk_bytes: int) -> Iterator[Piece]:
    """The file read a chunk at a time: column-wise where the chunk allows (`focus_columns`), else row by row
    (`FocusParser.rows`)."""
    header = _header(data)
    parser = header if isinstance(header, Rejection) else focus_parser(header, options, resolve)
    if isinstance(parser, Rejection):
        yield Piece(rejections=[parser])
        return
    columns = ColumnReader(parser)
    for chunk in _chunks(data, chunk_bytes):
        if isinstance(chunk, Rejection):
            yield Piece(rejections=[chunk])
            continue
        read = columns.read(chunk.data)
        if read is not None:
            table, cost = read
            yield Piece(table, table.num_rows, [], cost)
            continue
        yield _read_by_rows(parser, chunk)


def _is_parquet(raw: IO[bytes]) -> bool:
    """A Parquet file starts (and ends) with its magic bytes; a seekable file is looked at and rewound."""
    if not raw.seekable():
        return False
    start = raw.read(len(PARQUET_MAGIC))
    raw.seek(0)
    return start == PARQUET_MAGIC


def _parquet_pieces(raw: IO[bytes], counted: CountingReader, options: FocusOptions, resolve: Resolver,
                    chunk_bytes: int) -> Iterator[Piece]:
    """A Parquet file (FOCUS exports come as Parquet too) read a batch of rows at a time, like a CSV chunk: its
    header is the schema's column names, every cell is read as the text a CSV export would hold (`as_text`),
    and a batch the column reader cannot read is written out as CSV for the row parser, its rejections naming
    the row as its line (the header being line 1). Progress counts the row groups' bytes."""
    try:
        file = pq.ParquetFile(raw)
    except (pa.ArrowInvalid, OSError) as exc:
        yield Piece(rejections=[Rejection(1, None, f"not a readable Parquet file ({exc})")])
        return
    parser = focus_parser(file.schema_arrow.names, options, resolve)
    if isinstance(parser, Rejection):
        yield Piece(rejections=[parser])
        return
    columns = ColumnReader(parser)
    rows_per_batch = max(1, chunk_bytes // 400)  # about as many rows as a CSV chunk of that size holds
    line, total = 2, max(file.metadata.num_rows, 1)
    size = raw.seek(0, io.SEEK_END)
    for batch in file.iter_batches(batch_size=rows_per_batch):
        read = columns.read_table(columns.text_columns(batch))
        if read is not None:
            piece = Piece(read[0], read[0].num_rows, [], read[1])
        else:
            piece = _read_by_rows(parser, _Chunk(_csv_of(batch), line))
        line += batch.num_rows
        counted.read_bytes = size * (line - 2) // total
        yield piece


def _csv_of(batch: pa.RecordBatch) -> bytes:
    """A batch's rows as CSV lines of text cells (no header), as the row parser reads a CSV chunk."""
    text = pa.table([as_text(column) for column in batch.columns], names=[str(i) for i in range(batch.num_columns)])
    buffer = io.BytesIO()
    pa_csv.write_csv(text, buffer, pa_csv.WriteOptions(include_header=False))
    return buffer.getvalue()


def _read_by_rows(parser: FocusParser, chunk: _Chunk) -> Piece:
    records, rejections = _rows(parser, chunk)
    return Piece(rows_table(stored_rows(records)), len(records), rejections, sum((r.cost for r in records),
                                                                               Decimal(0)))


def _header(data: io.BufferedReader) -> list[str] | Rejection:
    try:
        line = data.readline()
    except (EOFError, zlib.error) as exc:
        return Rejection(1, None, f"the compressed file is damaged or cut short ({exc}); nothing could be read")
    if line.startswith(codecs.BOM_UTF8):
        line = line[len(codecs.BOM_UTF8):]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(1, None, f"the header is not UTF-8 text (byte {exc.start + 1}: {exc.reason})")
    return next(csv.reader([text]), None) or Rejection(1, None, "the file is empty (no header row)")


def _rows(parser: FocusParser, chunk: _Chunk) -> tuple[list[UsageIn], list[Rejection]]:
    """A chunk read row by row: its records, and its rejections by line and column."""
    records: list[UsageIn] = []
    rejections: list[Rejection] = []
    lines = _decoded(io.BytesIO(chunk.data), chunk.first_line, rejections.append)
    for item in parser.rows(csv.reader(lines), line_offset=chunk.first_line - 1):
        if isinstance(item, Rejection):
            rejections.append(item)
        else:
            records.append(item)
    rejections.sort(key=lambda r: r.line)
    return records, rejections


@dataclass(frozen=True)
class _Chunk:
    data: bytes  # whole records
    first_line: int  # the file line it starts on


def _chunks(data: io.BufferedReader, size: int) -> Iterator[_Chunk | Rejection]:
    """The file after its header in chunks of whole records, about `size` bytes each (a record ends at a line
    break outside quotes). Compressed data that is damaged or cut short ends the file at the last whole record
    before the damage, with a rejection saying so."""
    pending = b""
    line = 2
    while True:
        try:
            block = data.read1(size)
        except (EOFError, zlib.error) as exc:
            cut = _records_end(pending)
            if cut:
                yield _Chunk(pending[:cut], line)
                line += pending.count(b"\n", 0, cut)
            yield Rejection(line, None, f"the compressed file is damaged or cut short ({exc}); "
                                        f"nothing after line {line - 1} could be read")
            return
        if not block:
            break
        pending += block
        if len(pending) < size:
            continue
        cut = _records_end(pending)
        if cut:
            yield _Chunk(pending[:cut], line)
            line += pending.count(b"\n", 0, cut)
            pending = pending[cut:]
    if pending:
        yield _Chunk(pending, line)


def _records_end(data: bytes) -> int:
    """Where the last whole record of `data` (which starts with a record) ends; 0 when none does.

    Where no line holds an odd number of quotes, no value spans lines, and every line break ends a record (the
    common case, checked with numpy). Otherwise the csv module itself says where records end: a quote only
    opens a value at the start of a field (`5" disk` is text), which counting quotes cannot tell."""
    end = data.rfind(b"\n") + 1
    if not end:
        return 0
    if not _odd_quotes_on_a_line(data, end):
        return end
    lines = data[:end].split(b"\n")[:-1]
    reader = csv.reader(chain((line.decode("latin-1") + "\n" for line in lines), [_SENTINEL]))
    boundary = 0
    for _record in reader:
        if reader.line_num > len(lines):
            break  # this record ran into the sentinel: it does not end within `data`
        boundary = reader.line_num
    return sum(len(line) + 1 for line in lines[:boundary])


def _odd_quotes_on_a_line(data: bytes, end: int) -> bool:
    """Whether a line of `data[:end]` holds an odd number of quotes: then some line break comes after an odd
    number of quotes from the start (the break of the first such line does). Counted by searching the breaks
    among the quotes' positions: a running parity over every byte took four times as long."""
    text = np.frombuffer(data, dtype=np.uint8, count=end)
    quotes = np.flatnonzero(text == ord('"'))
    breaks = np.flatnonzero(text == ord("\n"))
    return bool(np.any(np.searchsorted(quotes, breaks) & 1))


_SENTINEL = "\x1e\n"  # a line after the data: a record still open at its end swallows it


def _uncompressed(data: io.BufferedReader) -> io.BufferedReader:
    """The file itself, or its content when it is gzip-compressed (how AWS Data Exports and Azure deliver FOCUS
    files: `.csv.gz`), recognised by its magic bytes rather than its name; decompressed as it is read."""
    return io.BufferedReader(_Gunzipped(data), 1 << 20) if data.peek(2)[:2] == GZIP_MAGIC else data


def _decoded(data: Iterable[bytes], first_line: int, reject: Callable[[Rejection], object]) -> Iterator[str]:
    """Lines as text. A line that is not UTF-8 is rejected (by its number) and read as a blank line, so the CSV
    reader's line numbers stay those of the file."""
    for number, line in enumerate(data, start=first_line):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            reject(Rejection(number, None, f"not UTF-8 text (byte {exc.start + 1}: {exc.reason})"))
            yield "\n"


class CountingReader(io.RawIOBase):
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


