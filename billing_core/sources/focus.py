"""FOCUS 1.x cost-and-usage CSV → `UsageIn` records, streamed row by row (pure: no database).

The contract, as `billing-bot import focus` applies it:

- **Cost.** `BilledCost` (what the invoice charges) drives `cost` by default; `--cost effective|list|
  contracted` picks `EffectiveCost`, `ListCost` or `ContractedCost` instead. Every other cost column
  the file has is kept, as written, as an attribute of the record (`billed_cost`, `effective_cost`,
  `list_cost`, `contracted_cost`), so under a commitment (BilledCost 0, EffectiveCost > 0) both figures
  survive.
  Amounts are exact decimals; a cost or quantity with more than 6 decimals is rounded half-even to the
  ledger's micro-units.
- **When.** `ChargePeriodStart`/`ChargePeriodEnd` are the record's period; the whole cost lands on the
  account's local day (and UTC hour) of the start. ISO 8601 (`Z`, offsets, naive = UTC, date only) and
  the US `M/D/YY` / `M/D/YYYY` form of the spec's SaaS examples are read; anything else is rejected.
- **What.** meter = `ServiceName`, else `ServiceCategory`, else `ChargeCategory`; quantity and unit =
  `ConsumedQuantity`/`ConsumedUnit` (empty or `null` → 0, e.g. purchases and unused commitments).
- **Who.** provider = `ServiceProviderName` (FOCUS 1.1+), else `ProviderName` (1.0), else
  `HostProviderName`, else `InvoiceIssuerName`, else the importer's default; deployment = the sub-account
  (`SubAccountName`, else `SubAccountId`). The caller's `Resolver` turns those names into ids.
- **Dimensions** (groupings for `/billing usage … by <key>`, rolled up per day; the service itself is
  the meter): service_category, charge_category, charge_class (`Correction` rows are imported as the
  adjustments they are, on the charge period they correct), region, sub_account_id, sku_id,
  pricing_category, commitment_discount_status, billing_account, billing_period, and the JSON columns
  flattened: `SkuPriceDetails` → `sku.<Key>` (e.g. `by sku.ModelId`), `Tags` → `tag.<key>`.
- **Attributes** (kept on the record, never rolled up: values nearly unique per row would cost one
  rollup row each): the other cost columns, resource_id and resource_name.
- **Identity** (idempotent re-import, corrections replace). external_id = account id, the UTC hour of the
  charge start (`1:2026010113:…`: ids sort in time order) and a BLAKE2b digest of the row's identity —
  BillingAccountId, BillingPeriodStart, ChargePeriodStart/End, ChargeCategory, ChargeClass,
  ChargeFrequency, ChargeDescription, SubAccountId, ResourceId, ServiceName, SkuId,
  SkuPriceId, SkuMeter, PricingCategory, PricingUnit, RegionId, AvailabilityZone, CommitmentDiscountId,
  CommitmentDiscountStatus, CapacityReservationId, Tags (cells as written) and the provider — i.e.
  everything but the measures (costs, prices, quantities). Importing a file twice changes nothing; a
  restated file whose rows keep their identity but change their amounts *updates* those rows; a row
  whose identity appears again in the same file gets `:2`, `:3`… in file order (so true duplicates are
  kept, not merged). Rows missing from a restated file are not deleted (FOCUS restates with
  `ChargeClass=Correction` rows, which add up).
- **Rejections** name the file line (1 = header) and the column; good rows are never lost because of a
  bad one. A file without a required column (ChargePeriodStart, ChargePeriodEnd, ChargeCategory, the
  cost column) is rejected as a whole, on line 1.
"""

from __future__ import annotations

import csv
import hashlib
import json
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Protocol

import numpy as np

from billing_core.errors import InvalidInput
from billing_core.money import MAX_AMOUNT, MICRO, normalize_currency
from billing_core.records import UsageIn

SOURCE = "focus"
COST_COLUMNS = {"billed": "BilledCost", "effective": "EffectiveCost", "list": "ListCost",
                "contracted": "ContractedCost"}
_COST_ATTRIBUTES = {"BilledCost": "billed_cost", "EffectiveCost": "effective_cost", "ListCost": "list_cost",
                    "ContractedCost": "contracted_cost"}
REQUIRED = ("ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory")
PROVIDER_COLUMNS = ("ServiceProviderName", "ProviderName", "HostProviderName", "InvoiceIssuerName")
IDENTITY = ("BillingAccountId", "BillingPeriodStart", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
            "ChargeClass", "ChargeFrequency", "ChargeDescription", "SubAccountId", "ResourceId", "ServiceName",
            "SkuId", "SkuPriceId", "SkuMeter", "PricingCategory", "PricingUnit", "RegionId", "AvailabilityZone",
            "CommitmentDiscountId", "CommitmentDiscountStatus", "CapacityReservationId", "Tags")
# (key, columns tried in order): plain text columns kept as they are, as dimensions or as attributes.
_TEXT_DIMENSIONS = (
    ("service_category", ("ServiceCategory",)),
    ("charge_category", ("ChargeCategory",)), ("charge_class", ("ChargeClass",)),
    ("region", ("RegionName", "RegionId")), ("sub_account_id", ("SubAccountId",)), ("sku_id", ("SkuId",)),
    ("pricing_category", ("PricingCategory",)), ("commitment_discount_status", ("CommitmentDiscountStatus",)),
    ("billing_account", ("BillingAccountId",)),
)
_TEXT_ATTRIBUTES = (("resource_id", ("ResourceId",)), ("resource_name", ("ResourceName",)))
NULLS = frozenset({"", "null", "NULL", "Null"})  # how FOCUS exports spell a missing value
SEPARATOR = "\x1f"  # between the identity cells of a row (a control character no cell holds)
_ZERO = Decimal(0)
_MAX_KEY, MAX_VALUE, _MAX_METER, MAX_UNIT = 64, 200, 64, 32  # the ledger's column widths

#: (provider name, sub-account id, sub-account name) → (provider id, deployment id); supplied by the caller.
Resolver = Callable[[str | None, str | None, str | None], tuple[int | None, int | None]]


@dataclass(frozen=True)
class Rejection:
    """A row (or the whole file, line 1) that was not imported, and why."""

    line: int  # line of the file, 1 = the header
    column: str | None
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}" + (f", column {self.column}" if self.column else "") + f": {self.reason}"


@dataclass(frozen=True)
class FocusOptions:
    account_id: int
    currency: str  # the account's currency: rows billed in another one are rejected
    cost: str = "billed"
    default_provider: str | None = None
    source: str = SOURCE

    @property
    def cost_column(self) -> str:
        if self.cost not in COST_COLUMNS:
            raise InvalidInput(f"Unknown cost basis {self.cost!r}.", hint="billed, effective, list or contracted")
        return COST_COLUMNS[self.cost]


class _RowError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def read_focus(lines: Iterable[str], options: FocusOptions, resolve: Resolver) -> Iterator[UsageIn | Rejection]:
    """Each data row of a FOCUS CSV as a `UsageIn`, or a `Rejection` naming its line and column.

    `lines` are the file's lines as text, line endings kept (a file opened with `encoding="utf-8-sig",
    newline=""` will do). Memory stays bounded whatever the file size.
    """
    reader = csv.reader(lines)
    parser = focus_parser(next(reader, None), options, resolve)
    if isinstance(parser, Rejection):
        yield parser
        return
    yield from parser.rows(reader)


def focus_parser(header: list[str] | None, options: FocusOptions, resolve: Resolver) -> FocusParser | Rejection:
    """The parser of a file with this header row, or why no row of it can be imported (line 1)."""
    if header is None:
        return Rejection(1, None, "the file is empty (no header row)")
    columns = _Columns(header)
    missing = [c for c in (*REQUIRED, options.cost_column) if c not in columns]
    if missing:
        return Rejection(1, missing[0], f"missing required column{'s' if len(missing) > 1 else ''} "
                                        f"{', '.join(missing)} (is this a FOCUS 1.x file?)")
    return FocusParser(columns, len(header), options, resolve)


class _Columns:
    """Header positions by canonical FOCUS name; matched case-insensitively (the spec's own examples
    spell `SkuPriceid`)."""

    def __init__(self, header: list[str]) -> None:
        self.index: dict[str, int] = {}
        for i, name in enumerate(header):
            self.index.setdefault(name.strip().lower(), i)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.index

    def get(self, name: str) -> int | None:
        return self.index.get(name.lower())

    def required(self, name: str) -> int:
        return self.index[name.lower()]


@dataclass(frozen=True)
class Categories:
    """What a row's low-cardinality cells make of it: the same for every row sharing those cells, so the
    column-wise reader works it out once per distinct combination (`focus_columns`)."""

    meter: str
    provider: str | None  # as named in the file (part of the row's identity), or the default provider
    provider_id: int | None
    deployment_id: int | None
    dimensions: dict[str, str]


class CsvReader(Protocol):
    """What `csv.reader` returns: rows, and the line of the file it has read up to."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...


class FocusParser:
    """The rows of one FOCUS file, by its header. Holds what the file's rows share — parsed instants, dimension
    sets, the occurrence numbering of identities — so every piece of the file must go through the same parser,
    row by row (`rows`) or column-wise (`focus_columns.ColumnReader`)."""

    def __init__(self, columns: _Columns, width: int, options: FocusOptions, resolve: Resolver) -> None:
        self.width = width
        self.options = options
        self.resolve = resolve
        self.currency = normalize_currency(options.currency)
        at = columns.get
        self.cost_name = options.cost_column
        self.cost_at = columns.required(self.cost_name)
        self.other_costs = [(key, name, columns.required(name)) for name, key in _COST_ATTRIBUTES.items()
                            if name != self.cost_name and name in columns]
        self.start_at, self.end_at = columns.required("ChargePeriodStart"), columns.required("ChargePeriodEnd")
        self.billing_period_at = at("BillingPeriodStart")
        self.currency_at = at("BillingCurrency")
        self.qty_at, self.unit_at = at("ConsumedQuantity"), at("ConsumedUnit")
        self.meter_at = [i for i in (at("ServiceName"), at("ServiceCategory"), at("ChargeCategory")) if i is not None]
        self.provider_at = [i for i in (at(c) for c in PROVIDER_COLUMNS) if i is not None]
        self.sub_id_at, self.sub_name_at = at("SubAccountId"), at("SubAccountName")
        self.identity_at = [i for i in (at(c) for c in IDENTITY) if i is not None]
        self.text_dims = _positions(columns, _TEXT_DIMENSIONS)
        self.text_attributes = _positions(columns, _TEXT_ATTRIBUTES)
        self.json_dims = [(prefix, name, i) for prefix, name in (("sku", "SkuPriceDetails"), ("tag", "Tags"))
                          if (i := at(name)) is not None]
        self.instants = _InstantCache()
        self.occurrences = _Occurrences()
        self._json: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        self.prefix = id_prefix(options.account_id)
        self.identity = _cells_at(self.identity_at)
        dimension_at = {i for _key, idx in self.text_dims for i in idx} | {at for _p, _n, at in self.json_dims}
        if self.billing_period_at is not None:
            dimension_at.add(self.billing_period_at)
        self.dimension_at = sorted(dimension_at)
        self._dimension_cells = _cells_at(self.dimension_at)
        self._dimension_sets: dict[tuple[str, ...], dict[str, str]] = {}

    def rows(self, reader: CsvReader, line_offset: int = 0) -> Iterator[UsageIn | Rejection]:
        """The records of a CSV reader's rows; a rejection's line is the reader's line plus `line_offset` (the
        file line before the reader's first)."""
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank lines: several spec examples separate rows with them
            line = reader.line_num + line_offset
            if len(row) != self.width:
                yield Rejection(line, None, f"{len(row)} fields where the header has {self.width}")
                continue
            try:
                yield self.parse(row)
            except _RowError as exc:
                yield Rejection(line, exc.column, exc.reason)

    def parse(self, row: list[str]) -> UsageIn:
        cells = [clean(raw) for raw in row]
        start, end = self.period(cells)
        cost = _amount(cells[self.cost_at], self.cost_name)
        if self.currency_at is not None:
            self.check_currency(cells[self.currency_at])
        quantity, unit = _ZERO, ""
        if self.qty_at is not None and cells[self.qty_at]:
            quantity = _amount(cells[self.qty_at], "ConsumedQuantity")
            unit = cells[self.unit_at][:MAX_UNIT] if self.unit_at is not None else ""
        what = self.categories(cells)
        return UsageIn(
            account_id=self.options.account_id, meter=what.meter, quantity=quantity, unit=unit, cost=cost,
            currency=self.currency, period_start=start, period_end=end, source=self.options.source,
            external_id=self.external_id(self.identity_digest(self.identity(cells), what.provider), id_hour(start)),
            deployment_id=what.deployment_id, provider_id=what.provider_id, dimensions=what.dimensions,
            attributes=self._attributes(cells),
        )

    def period(self, cells: list[str]) -> tuple[datetime, datetime]:
        known = self.instants.known
        start = known.get(cells[self.start_at]) or self.instants.parse(cells[self.start_at], "ChargePeriodStart")
        end = known.get(cells[self.end_at]) or self.instants.parse(cells[self.end_at], "ChargePeriodEnd")
        if end < start:
            raise _RowError("ChargePeriodEnd", f"{cells[self.end_at]!r} is before ChargePeriodStart "
                                               f"{cells[self.start_at]!r}")
        return start, end

    def categories(self, cells: list[str]) -> Categories:
        """Meter, provider, sub-account and dimensions of a row (cleaned cells)."""
        provider = _first(cells, self.provider_at) or self.options.default_provider
        sub_id = cells[self.sub_id_at] if self.sub_id_at is not None else ""
        sub_name = cells[self.sub_name_at] if self.sub_name_at is not None else ""
        provider_id, deployment_id = self.resolve(provider, sub_id or None, sub_name or None)
        return Categories((_first(cells, self.meter_at) or "other")[:_MAX_METER], provider, provider_id,
                          deployment_id, self._dimensions(cells))

    def identity_digest(self, identity: tuple[str, ...], provider: str | None) -> bytes:
        return digest_of(identity_text(identity, provider))

    def external_id(self, digest: bytes, hour: str, occurrence: int | None = None) -> str:
        """The stored id of a row by its identity digest and `id_hour`; a repeat of an identity in the file gets
        `:2`, `:3`…"""
        n = self.occurrences.number(digest) if occurrence is None else occurrence
        return f"{self.prefix}{hour}:{digest.hex()}" + (f":{n}" if n > 1 else "")

    def check_currency(self, code: str) -> None:
        if code == self.currency or not code or code.upper() == self.currency:
            return
        try:
            normalize_currency(code)
        except InvalidInput:
            raise _RowError("BillingCurrency", f"unknown currency {code!r}") from None
        raise _RowError("BillingCurrency", f"billed in {code.upper()}, but the account bills in {self.currency}")

    def _attributes(self, cells: list[str]) -> dict[str, str]:
        attributes = _texts(cells, self.text_attributes)
        for key, name, at in self.other_costs:
            value = cells[at]
            if value:
                try:
                    Decimal(value)  # kept as written (exact, any precision) once it is known to be a number
                except InvalidOperation:
                    value = str(_amount(value, name))
                attributes[key] = value[:MAX_VALUE]
        return attributes

    def _dimensions(self, cells: list[str]) -> dict[str, str]:
        """The row's dimensions; rows with the same dimension cells share one mapping (read-only, like the
        frozen record holding it): an export has a few thousand sets, and one object per set keeps the
        rollup grouping of the records cheap (`ingest.stored_rows` reads each shared mapping once)."""
        key = self._dimension_cells(cells)
        found = self._dimension_sets.get(key)
        if found is None:
            if len(self._dimension_sets) >= _InstantCache.LIMIT:
                self._dimension_sets.clear()
            found = self._dimension_sets[key] = self._dimensions_of(cells)
        return found

    def _dimensions_of(self, cells: list[str]) -> dict[str, str]:
        dims = _texts(cells, self.text_dims)
        if self.billing_period_at is not None and cells[self.billing_period_at]:
            dims["billing_period"] = self.instants.parse(cells[self.billing_period_at], "BillingPeriodStart") \
                .date().isoformat()
        for prefix, name, at in self.json_dims:
            if cells[at]:
                dims.update(self.flattened(cells[at], prefix, name))
        return dims

    def flattened(self, text: str, prefix: str, column: str) -> tuple[tuple[str, str], ...]:
        """A JSON column's pairs, cached: tags and price details repeat across an export's rows."""
        key = (prefix, text)
        found = self._json.get(key)
        if found is None:
            if len(self._json) >= _InstantCache.LIMIT:
                self._json.clear()
            found = self._json[key] = _flatten(text, prefix, column)
        return found


def clean(raw: str) -> str:
    """A cell as the parser reads it: without surrounding blanks, and empty for the spellings of null."""
    return "" if (c := raw.strip()) in NULLS else c


def identity_text(identity: tuple[str, ...], provider: str | None) -> bytes:
    """What a row's identity digest is taken of: its identity cells and its provider, separated by US."""
    return f"{SEPARATOR.join(identity)}{SEPARATOR}{provider or ''}".encode()


def id_prefix(account_id: int) -> str:
    """How the ids of an account's rows begin (ids are unique per source, and every account has rows of its own)."""
    return f"{account_id}:"


def id_hour(start: datetime) -> str:
    """The UTC hour of a row's charge start, as its id holds it (`2026010113`), before the digest: exports come in
    time order, so a batch's ids land together at the end of the id index instead of at random places all over it
    (which made every commit rewrite most of the index: a 1 M-row import wrote 40 % slower)."""
    utc = start.astimezone(UTC)
    return f"{utc.year:04}{utc.month:02}{utc.day:02}{utc.hour:02}"  # strftime's %Y does not pad years before 1000


def digest_of(identity: bytes) -> bytes:
    """The digest a row's id is made of, of its `identity_text`."""
    return digests_of([identity])[0]


def digests_of(identities: Iterable[bytes]) -> list[bytes]:
    """`digest_of` each identity (a column of them: one call for all)."""
    blake2b = hashlib.blake2b
    return [blake2b(identity, digest_size=16).digest() for identity in identities]


def _cells_at(positions: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """A function picking the cells at `positions` as a tuple (itemgetter, in C, but always a tuple)."""
    if len(positions) >= 2:
        return operator.itemgetter(*positions)
    return lambda cells: tuple(cells[i] for i in positions)


def _positions(columns: _Columns, keys: tuple[tuple[str, tuple[str, ...]], ...]) -> list[tuple[str, list[int]]]:
    """(key, positions of the columns tried in order) for each key the header has a column of."""
    return [(key, idx) for key, names in keys if (idx := [i for i in (columns.get(n) for n in names) if i is not None])]


def _texts(cells: list[str], positions: list[tuple[str, list[int]]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, at in positions:
        value = _first(cells, at)
        if value:
            found[key] = value[:MAX_VALUE]
    return found


def _first(cells: list[str], positions: list[int]) -> str:
    for i in positions:
        if cells[i]:
            return cells[i]
    return ""


def _amount(raw: str, column: str) -> Decimal:
    """An exact decimal from a cleaned cell; tolerates the SaaS examples' `"$10,100.00 "` (symbol,
    thousands separators)."""
    if not raw:
        raise _RowError(column, "is empty")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        cleaned = raw.lstrip("$€£¥").replace(",", "").strip()
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            raise _RowError(column, f"{raw[:40]!r} is not a number") from None
    if not value.is_finite():
        raise _RowError(column, f"{raw[:40]!r} is not a finite number")
    if abs(value) >= MAX_AMOUNT:
        raise _RowError(column, f"{raw[:40]} is out of range")
    dot = raw.find(".")
    if (dot >= 0 and len(raw) - dot > 7) or "e" in raw or "E" in raw:
        value = value.quantize(MICRO, rounding=ROUND_HALF_EVEN)  # the ledger keeps micro-units
    return value


def _flatten(raw: str, prefix: str, column: str) -> tuple[tuple[str, str], ...]:
    try:
        data: Any = json.loads(raw)
    except ValueError:
        raise _RowError(column, f"{raw[:40]!r} is not JSON") from None
    if not isinstance(data, dict):
        raise _RowError(column, "must be a JSON object")
    return tuple((f"{prefix}.{key}"[:_MAX_KEY],
                  (value if isinstance(value, str) else json.dumps(value, separators=(",", ":")))[:MAX_VALUE])
                 for key, value in data.items() if value is not None)


class _InstantCache:
    """Parsed date-times by their text: an export repeats a few hundred distinct instants millions of times."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self.known: dict[str, datetime] = {}

    def parse(self, text: str, column: str) -> datetime:
        found = self.known.get(text)
        if found is None:
            if len(self.known) >= self.LIMIT:
                self.known.clear()
            found = self.known[text] = parse_instant(text, column)
        return found


def parse_instant(text: str, column: str = "date") -> datetime:
    """ISO 8601 (naive = UTC) or the US `M/D/YY[YY][ H:MM[:SS]]` form, as an aware UTC datetime."""
    raw = text.strip()
    if not raw or raw in NULLS:
        raise _RowError(column, "is empty")
    try:
        moment = _slashed(raw) if "/" in raw else datetime.fromisoformat(raw)
    except ValueError as exc:
        raise _RowError(column, f"{raw[:40]!r} is not a date-time (ISO 8601 or M/D/YY): {exc}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _slashed(raw: str) -> datetime:
    day_part, _, time_part = raw.partition(" ")
    month, day, year = (int(p) for p in day_part.split("/"))
    if year < 100:
        year += 2000  # FOCUS exists since 2023: a two-digit year is this century
    hour = minute = second = 0
    if time_part.strip():
        pieces = [int(p) for p in time_part.strip().split(":")]
        hour, minute, second = [*pieces, 0, 0][:3]
    return datetime(year, month, day, hour, minute, second)


_ENTRY_BITS = 24  # entries of a chunk's probes, numbered in the low bits of the (probe, entry) sort keys


class _Occurrences:
    """Numbers the repeats of an identity 2, 3… in file order, in bounded memory.

    A Bloom filter (16 MiB, 4 probes) remembers identities seen; only those it reports as maybe seen
    are counted exactly. A false positive merely numbers that row `:2` instead of leaving it bare —
    still unique and, for the same sequence of identities, the same on every import, whether the rows were
    numbered one by one (`number`) or a chunk at a time (`numbers`, what the column-wise reader does).
    """

    BITS = 1 << 27
    SHIFT = 27  # probes are consecutive 27-bit slices of the 128-bit digest

    def __init__(self) -> None:
        self._bits = bytearray(self.BITS >> 3)
        self._repeats: dict[bytes, int] = {}

    def number(self, digest: bytes) -> int:
        h = int.from_bytes(digest, "little")
        bits, mask, shift = self._bits, self.BITS - 1, self.SHIFT
        p0, p1, p2, p3 = h & mask, (h >> shift) & mask, (h >> 2 * shift) & mask, (h >> 3 * shift) & mask
        b0, b1, b2, b3 = 1 << (p0 & 7), 1 << (p1 & 7), 1 << (p2 & 7), 1 << (p3 & 7)
        if bits[p0 >> 3] & b0 and bits[p1 >> 3] & b1 and bits[p2 >> 3] & b2 and bits[p3 >> 3] & b3:
            return self._repeat(digest)
        bits[p0 >> 3] |= b0
        bits[p1 >> 3] |= b1
        bits[p2 >> 3] |= b2
        bits[p3 >> 3] |= b3
        return 1

    def numbers(self, digests: list[bytes]) -> list[int]:
        """`[number(d) for d in digests]`, the filter probed for all of them at once: a row is maybe seen when
        each of its probe bits was set before the chunk or by an earlier row of the chunk."""
        count = len(digests)
        if not count or count >= 1 << (_ENTRY_BITS - 2):
            return [self.number(d) for d in digests]
        words = np.frombuffer(b"".join(digests), dtype="<u8").reshape(count, 2)
        low, high = words[:, 0], words[:, 1]
        shift = self.SHIFT
        probes = (np.stack([low, low >> np.uint64(shift),
                            (low >> np.uint64(2 * shift)) | (high << np.uint64(64 - 2 * shift)),
                            high >> np.uint64(3 * shift - 64)], axis=1) & np.uint64(self.BITS - 1)).ravel()
        bits = np.frombuffer(self._bits, dtype=np.uint8)
        set_before = bits[(probes >> np.uint64(3)).astype(np.intp)] & (np.uint8(1) << (probes & np.uint64(7))
                                                                        .astype(np.uint8)) != 0
        # Sorting (probe, entry) pairs puts each probe's entries together, its first entry in the chunk first.
        entries = np.sort((probes << np.uint64(_ENTRY_BITS)) | np.arange(len(probes), dtype=np.uint64))
        probe, entry = entries >> np.uint64(_ENTRY_BITS), (entries & np.uint64((1 << _ENTRY_BITS) - 1)).astype(np.intp)
        starts = np.ones(len(probe), dtype=bool)
        starts[1:] = probe[1:] != probe[:-1]
        first_entry = np.empty(len(probe), dtype=np.intp)
        first_entry[entry] = entry[np.flatnonzero(starts)][np.cumsum(starts) - 1]
        set_earlier = (first_entry // 4).reshape(count, 4) < np.arange(count)[:, None]
        maybe_seen = np.all(set_before.reshape(count, 4) | set_earlier, axis=1)
        self._set(probe[starts])
        found = [1] * count
        for i in np.flatnonzero(maybe_seen).tolist():
            found[i] = self._repeat(digests[i])
        return found

    def _set(self, probes: np.ndarray[Any, Any]) -> None:
        """Set the bits of distinct, sorted probes (bits sharing a byte are OR-ed together first)."""
        bits = np.frombuffer(self._bits, dtype=np.uint8)
        byte = (probes >> np.uint64(3)).astype(np.intp)
        starts = np.flatnonzero(np.concatenate(([True], byte[1:] != byte[:-1])))
        masks = np.uint8(1) << (probes & np.uint64(7)).astype(np.uint8)
        bits[byte[starts]] |= np.bitwise_or.reduceat(masks, starts)

    def _repeat(self, digest: bytes) -> int:
        n = self._repeats.get(digest, 1) + 1
        self._repeats[digest] = n
        return n
