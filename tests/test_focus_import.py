"""FOCUS import as a user meets it: every spec sample lands (or its malformed rows are named), and
`/billing usage` for the account then shows exactly the file's BilledCost; re-imports change nothing."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from billing_core.db.engine import Database
from billing_core.db.models import AuditEntry, Deployment, Provider, UsageHourly, UsageRecord
from billing_core.db.queries import NONE_LABEL
from billing_core.fmt import money
from billing_core.imports import FileReport, import_focus
from billing_core.periods import Period
from billing_core.service import Billing
from tests import factories
from tests.slack_harness import BotHarness

DATA = Path(__file__).parent / "data" / "focus"
SAMPLES = sorted(DATA.glob("*.csv"))
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CENT = Decimal("0.01")
# Chunks of a few rows mix column-wise and row-by-row reading; the result must not tell the difference.
PARSING = pytest.mark.parametrize("chunk_bytes", [None, 200], ids=["default-chunks", "chunks-of-a-few-rows"])
# The spec's own malformed rows: a charge period ending at hour 30.
MALFORMED = {
    "commitment_discount_scenarios__commitment_discount_purchase_scenario_2.csv": {4},
    "commitment_discount_scenarios__commitment_discount_purchase_scenario_3.csv": {5},
}


def _account(db: Database, name: str = "acme", currency: str = "USD", tz: str = "America/New_York") -> None:
    with db.unit_of_work() as s:
        factories.account(s, name, currency=currency, tz=tz)


def _billed_sum(path: Path, skip_lines: frozenset[int] | set[int] = frozenset()) -> Decimal:
    """The file's BilledCost total, read independently of the importer."""
    total = Decimal(0)
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            if not any(v.strip() for v in row.values() if v) or reader.line_num in skip_lines:
                continue
            total += Decimal(row["BilledCost"].strip().lstrip("$").replace(",", ""))
    return total


def _usage_total(db: Database, report: FileReport, account: str = "acme") -> Decimal:
    assert report.first_day and report.last_day
    period = Period(report.first_day, report.last_day + timedelta(days=1), "the file")
    return Billing(db).usage(account, period).total_cost


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _rows(sample: str) -> tuple[list[str], list[list[str]]]:
    with (DATA / sample).open(encoding="utf-8-sig", newline="") as f:
        header, *rows = [r for r in csv.reader(f) if r]
    return header, rows


AI = "ai_billing__multi_model_usage.csv"


def _hourly(count: int) -> tuple[list[str], list[list[str]]]:
    """`count` rows like the AI sample's first, one per hour from 2025-05-01 00:00 UTC, the i-th costing i.5."""
    header, [row, *_] = _rows(AI)
    cost, start, end = (header.index(c) for c in ("BilledCost", "ChargePeriodStart", "ChargePeriodEnd"))
    rows = []
    for i in range(count):
        hour = datetime(2025, 5, 1, tzinfo=UTC) + timedelta(hours=i)
        rows.append([*row])
        rows[-1][cost], rows[-1][start] = f"{i}.5", hour.isoformat()
        rows[-1][end] = (hour + timedelta(hours=1)).isoformat()
    return header, rows
SAAS = "saas_examples__simple_agreements__simple_saas_agreements_c.csv"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem[-48:])
def test_every_spec_sample_is_imported_and_usage_equals_its_billed_cost(db: Database, sample: Path) -> None:
    _account(db)
    [report] = import_focus(db, "acme", [sample], now=NOW)
    bad_lines = MALFORMED.get(sample.name, set())
    assert {(r.line, r.column) for r in report.rejections} == {(line, "ChargePeriodEnd") for line in bad_lines}
    for rejection in report.rejections:
        assert "'2023-02-01T30:00:00Z' is not a date-time" in rejection.reason
    expected = _billed_sum(sample, bad_lines)
    assert report.cost == expected
    assert report.result.inserted == report.rows > 0
    assert _usage_total(db, report).quantize(CENT) == expected.quantize(CENT)


def test_importing_the_same_files_twice_changes_nothing(db: Database) -> None:
    _account(db)
    files = [DATA / AI, DATA / SAAS]
    year = Period(date(2025, 1, 1), date(2026, 1, 1), "2025")
    import_focus(db, "acme", files, now=NOW)
    before = Billing(db).usage("acme", year, group_by="service")
    again = import_focus(db, "acme", files, now=NOW)
    assert [(r.result.inserted, r.result.updated, r.result.unchanged) for r in again] == [(0, 0, 4), (0, 0, 3)]
    after = Billing(db).usage("acme", year, group_by="service")
    assert after.rows == before.rows and after.total_cost == Decimal("35904.50")
    with db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(UsageRecord)) == 7
        audit = [e.after for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "import.focus")
                                            .order_by(AuditEntry.id))]
    assert [(a["file"], a["inserted"], a["unchanged"]) for a in audit if a] == [
        (AI, 4, 0), (SAAS, 3, 0), (AI, 0, 4), (SAAS, 0, 3)]


def test_the_same_file_twice_in_one_import_is_imported_once(db: Database) -> None:
    _account(db)  # the first file finds the account empty (nothing looked up); the second must see its rows
    first, second = import_focus(db, "acme", [DATA / AI, DATA / AI], now=NOW)
    assert (first.result.inserted, second.result.inserted, second.result.unchanged) == (4, 0, 4)
    with db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(UsageRecord)) == 4


def test_a_corrected_file_replaces_what_it_corrects_and_correction_rows_add_up(db: Database, tmp_path: Path) -> None:
    _account(db)
    [original] = import_focus(db, "acme", [DATA / SAAS], now=NOW)
    header, rows = _rows(SAAS)
    cost, klass, billed_from, billed_to = (header.index(c) for c in ("BilledCost", "ChargeClass",
                                                                     "BillingPeriodStart", "BillingPeriodEnd"))
    rows[1][cost] = "$12,950.00 "  # May restated: 650 → 647.5 licences
    correction = list(rows[0])  # and a FOCUS correction of April's charge, billed in June
    correction[cost], correction[klass] = "-100.00", "Correction"
    correction[billed_from], correction[billed_to] = "6/1/25", "7/1/25"
    [restated] = import_focus(db, "acme", [_write(tmp_path / "restated.csv", header, [*rows, correction])], now=NOW)
    assert (restated.result.inserted, restated.result.updated, restated.result.unchanged) == (1, 1, 2)
    assert _usage_total(db, original) == Decimal("35800.00") - 50 - 100
    april = Period(date(2025, 3, 31), date(2025, 4, 1), "April charges (New York day of 1 April 00:00 UTC)")
    by_class = Billing(db).usage("acme", april, group_by="charge_class")
    assert {r.key: r.cost for r in by_class.rows} == {"Correction": Decimal(-100), "(no charge_class)": Decimal(10100)}


@PARSING
def test_a_malformed_row_is_named_by_line_and_column_and_the_good_rows_land(db: Database, tmp_path: Path,
                                                                           chunk_bytes: int | None) -> None:
    _account(db)
    header, rows = _rows(AI)
    start, cost = header.index("ChargePeriodStart"), header.index("BilledCost")
    rows[0][start] = "2025-13-01T00:00:00Z"  # line 2
    rows[1][cost] = "fifty"  # line 3
    short = rows[3][:5]  # line 5: a row cut short
    path = _write(tmp_path / "broken.csv", header, [rows[0], rows[1], rows[2], short, rows[3]])
    [report] = import_focus(db, "acme", [path], now=NOW, chunk_bytes=chunk_bytes)
    assert [(r.line, r.column) for r in report.rejections] == [(2, "ChargePeriodStart"), (3, "BilledCost"), (5, None)]
    assert "'fifty' is not a number" in report.rejections[1].reason
    assert "5 fields where the header has 32" in report.rejections[2].reason
    assert report.rows == 2 and report.result.inserted == 2
    assert _usage_total(db, report) == Decimal("4.50")


def test_a_file_without_a_required_column_is_rejected_on_line_1(db: Database, tmp_path: Path) -> None:
    _account(db)
    header, rows = _rows(AI)
    i = header.index("ChargePeriodStart")
    path = _write(tmp_path / "no_start.csv", header[:i] + header[i + 1:], [r[:i] + r[i + 1:] for r in rows])
    [report] = import_focus(db, "acme", [path], now=NOW)
    assert [(r.line, r.column) for r in report.rejections] == [(1, "ChargePeriodStart")]
    assert "missing required column ChargePeriodStart" in report.rejections[0].reason
    assert report.rows == 0


def test_byte_order_mark_and_us_dates(db: Database) -> None:
    sample = DATA / "saas_examples__virtual_currency_pricing_model_c.csv"
    assert sample.read_bytes().startswith(b"\xef\xbb\xbf") and ",4/1/25," in sample.read_text()
    _account(db, tz="UTC")
    [report] = import_focus(db, "acme", [sample], now=NOW)
    assert report.rejections == [] and report.cost == Decimal("53000.00")
    with db.unit_of_work() as s:
        starts = sorted(s.scalars(select(UsageRecord.period_start)))
    assert starts == [datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC)]
    assert (report.first_day, report.last_day) == (date(2025, 4, 1), date(2025, 10, 1))


def test_the_cost_column_is_a_choice_and_the_others_are_kept(db: Database) -> None:
    sample = DATA / "commitment_discount_scenarios__commitment_discount_usage_scenario_4.csv"
    _account(db, "billed", tz="UTC")
    _account(db, "effective", tz="UTC")
    [billed] = import_focus(db, "billed", [sample], now=NOW)
    [effective] = import_focus(db, "effective", [sample], now=NOW, cost="effective")
    assert (_usage_total(db, billed, "billed"), _usage_total(db, effective, "effective")) == (Decimal("0.50"),
                                                                                               Decimal("1.50"))
    with db.unit_of_work() as s:
        records = list(s.scalars(select(UsageRecord).order_by(UsageRecord.id)))
    attributes, dims = [r.attributes for r in records], [r.dimensions for r in records]
    assert attributes[0]["effective_cost"] == "1.00" and attributes[2]["billed_cost"] == "0.00"
    assert dims[0]["commitment_discount_status"] == "Used"
    assert not {"effective_cost", "billed_cost", "resource_id"} & {k for d in dims for k in d}  # never rolled up


def test_identical_rows_are_both_kept(db: Database) -> None:
    sample = DATA / ("commitment_discount_flexibility__one_hundred_percent_utilization_with_commitment_discount_"
                     "flexibility_with_2_resources.csv")
    _account(db)
    [report] = import_focus(db, "acme", [sample], now=NOW, cost="effective")
    assert report.result.inserted == 3 and _usage_total(db, report, "acme") == Decimal("2.00")


def test_providers_and_sub_accounts_become_providers_and_deployments(db: Database, tmp_path: Path) -> None:
    _account(db)
    header, rows = _rows(SAAS)  # FOCUS 1.0-style ProviderName
    sub_id, sub_name = header.index("SubAccountId"), header.index("SubAccountName")
    rows[0][sub_id], rows[0][sub_name] = "1234-5678", "licensing-prod"
    tags = header.index("Tags")
    rows[0][tags] = '{"team": "finance", "env": "prod"}'
    [saas] = import_focus(db, "acme", [_write(tmp_path / "saas.csv", header, rows)], now=NOW)
    [ai] = import_focus(db, "acme", [DATA / AI], now=NOW)  # FOCUS 1.2: ServiceProviderName
    billing = Billing(db)
    period = Period(date(2025, 3, 1), date(2025, 7, 1), "spring")
    assert {r.key: r.cost for r in billing.usage("acme", period, group_by="provider").rows} == {
        "ACMECORP": Decimal(35800), "Solora AI": Decimal("104.50")}
    assert {r.key: r.cost for r in billing.usage("acme", period, group_by="deployment").rows} == {
        "licensing-prod": Decimal(10100), NONE_LABEL: Decimal("25804.50")}
    by_tag = billing.usage("acme", period, group_by="tag.team")
    assert by_tag.rows[0].key == "(no tag.team)" and {r.key for r in by_tag.rows} == {"finance", "(no tag.team)"}
    by_model = billing.usage("acme", period, group_by="sku.ModelId")
    assert {r.key: r.cost for r in by_model.rows}["solora-atlas-5.5"] == Decimal(100)
    with db.unit_of_work() as s:
        deployment = s.scalar(select(Deployment).where(Deployment.name == "licensing-prod"))
        assert deployment is not None and deployment.provider is not None
        assert deployment.provider.name == "ACMECORP"
        assert s.scalar(select(func.count()).select_from(Provider)) == 2
    assert saas.rejections == [] and ai.rejections == []


def test_rows_billed_in_another_currency_are_rejected(db: Database) -> None:
    _account(db, currency="EUR")
    [report] = import_focus(db, "acme", [DATA / AI], now=NOW)
    assert report.rows == 0 and report.rejected == 4
    assert {(r.column, r.reason) for r in report.rejections} == {
        ("BillingCurrency", "billed in USD, but the account bills in EUR")}


@PARSING
def test_a_big_file_streams_in_batches_with_progress(db: Database, tmp_path: Path, chunk_bytes: int | None) -> None:
    _account(db, tz="UTC")
    header, rows = _rows(AI)
    cost, start, end, sku = (header.index(c) for c in ("BilledCost", "ChargePeriodStart", "ChargePeriodEnd", "SkuId"))
    generated = []
    for i in range(45):
        row = list(rows[i % 4])
        day = datetime(2025, 5, 1, tzinfo=UTC) + timedelta(hours=i)
        row[start], row[end] = day.isoformat(), (day + timedelta(hours=1)).isoformat()
        row[cost], row[sku] = f"{i}.25", f"sku-{i}"
        generated.append(row)
    generated[20][cost] = "n/a"
    seen: list[tuple[int, int, int]] = []
    [report] = import_focus(db, "acme", [_write(tmp_path / "big.csv", header, generated)], now=NOW, batch_rows=10,
                            progress=lambda _name, n, done, size: seen.append((n, done, size)),
                            chunk_bytes=chunk_bytes)
    assert report.result.inserted == 44 and [(r.line, r.column) for r in report.rejections] == [(22, "BilledCost")]
    read, done = [n for n, _d, _s in seen], [d for _n, d, _s in seen]
    assert len(seen) == 6  # before each of the 5 batches (10 good rows each, then 4), then at the end
    assert read == sorted(read) and read[-1] == 45 and done == sorted(done) and done[-1] == seen[-1][2]
    if chunk_bytes:  # read a few rows at a time: progress moves with the file
        assert read[0] < 20
    assert _usage_total(db, report) == sum(Decimal(f"{i}.25") for i in range(45) if i != 20)


CLI = [sys.executable, "-m", "billing_core.cli"]


def test_the_command_line_reports_rows_and_exit_codes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "DATABASE_URL": url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120, check=False)

    assert run("db", "upgrade").returncode == 0
    db = Database(url)
    _account(db)
    db.dispose()
    good = run("import", "focus", str(DATA / AI), "--account", "acme")
    assert good.returncode == 0, good.stderr
    assert "4 rows read — 4 inserted, 0 updated, 0 unchanged, 0 rejected; cost $104.50 (BilledCost)" in good.stdout
    bad = run("import", "focus", str(DATA / next(iter(MALFORMED))), str(DATA / AI), "--account", "acme")
    assert bad.returncode == 1
    assert "rejected line 4, column ChargePeriodEnd: '2023-02-01T30:00:00Z' is not a date-time" in bad.stdout
    assert "4 rows read — 0 inserted, 0 updated, 4 unchanged" in bad.stdout
    assert "All 2 files: 7 rows read" in bad.stdout
    unknown = run("import", "focus", str(DATA / AI), "--account", "nobody")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "nobody" in unknown.stderr
    assert run("import", "focus", "missing.csv", "--account", "acme").returncode == 2
    assert run("import", "focus", str(DATA / AI), "--account", "acme", "--cost", "cheapest").returncode == 2


def test_rows_naming_no_provider_take_the_default_one(db: Database) -> None:
    _account(db, tz="UTC")
    sample = DATA / "commitment_discount_scenarios__commitment_discount_usage_scenario_4.csv"  # no provider column
    [report] = import_focus(db, "acme", [sample], now=NOW, default_provider="Contoso Cloud")
    summary = Billing(db).usage("acme", Period(date(2023, 1, 1), date(2023, 1, 2), "1 Jan 2023"), group_by="provider")
    assert report.rejections == [] and [(r.key, r.cost) for r in summary.rows] == [("Contoso Cloud", Decimal("0.50"))]


@PARSING
def test_a_line_that_is_not_utf8_is_rejected_alone(db: Database, tmp_path: Path, chunk_bytes: int | None) -> None:
    _account(db)
    header, rows = _rows(AI)
    path = _write(tmp_path / "latin1.csv", header, rows)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"Output tokens", b"Sortie \xe9t\xe9")  # Latin-1 bytes on line 3
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(lines))
    [report] = import_focus(db, "acme", [path], now=NOW, chunk_bytes=chunk_bytes)
    assert [(r.line, r.column) for r in report.rejections] == [(3, None)]
    assert report.rejections[0].reason.startswith("not UTF-8 text (byte ")
    assert report.rows == 3 and report.cost == Decimal("54.50")


def test_slash_usage_over_an_imported_file_shows_its_billed_cost_and_a_chart(bot: BotHarness) -> None:
    """The user's view of an import: `/billing usage FROM..TO` in #finance totals the file's BilledCost."""
    [report] = import_focus(bot.db, "acme-corp", [DATA / AI], now=NOW)
    assert report.first_day and report.last_day
    bot.command(f"usage {report.first_day.isoformat()}..{report.last_day.isoformat()} by model")
    bot.settle()
    answer = bot.fake.messages("C_FINANCE")[-1]
    shown = json.dumps(answer.blocks)
    assert money(_billed_sum(DATA / AI), "USD", "en_US") in shown
    assert any(f.filename == "usage.png" and f.thread_ts == answer.ts for f in bot.fake.files())


@PARSING
def test_a_gzip_compressed_export_imports_like_the_plain_file(db: Database, tmp_path: Path,
                                                              chunk_bytes: int | None) -> None:
    """Clouds deliver FOCUS exports as `.csv.gz`; recognised by content, whatever the file is called. Written
    here as two gzip members (concatenated .gz files are one valid file, and `gzip -d` reads both)."""
    _account(db)
    content = (DATA / AI).read_bytes()
    middle = content.index(b"\n", len(content) // 2) + 1
    compressed = tmp_path / "export-00001.csv.gz"
    compressed.write_bytes(gzip.compress(content[:middle]) + gzip.compress(content[middle:]))
    [report] = import_focus(db, "acme", [compressed], now=NOW, chunk_bytes=chunk_bytes)
    assert report.rejections == [] and report.result.inserted == report.rows > 0
    assert report.cost == _billed_sum(DATA / AI)
    assert _usage_total(db, report).quantize(CENT) == report.cost.quantize(CENT)
    [again] = import_focus(db, "acme", [DATA / AI], now=NOW)  # the same rows, uncompressed: nothing new
    assert again.result.unchanged == report.rows and again.result.inserted == 0


@PARSING
def test_a_truncated_gzip_export_keeps_every_complete_row_before_the_damage_and_says_where(
        db: Database, tmp_path: Path, chunk_bytes: int | None) -> None:
    _account(db)
    header, [row, *_] = _rows(AI)
    cost, description = header.index("BilledCost"), header.index("ChargeDescription")
    rows = [[*row[:cost], f"{i}.25", *row[cost + 1:]] for i in range(1, 601)]
    for r in rows:  # text that does not compress away, so half the bytes hold about half the rows
        r[description] = os.urandom(24).hex()
    whole = gzip.compress(_write(tmp_path / "big.csv", header, rows).read_bytes())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[:len(whole) // 2])
    [report] = import_focus(db, "acme", [cut], now=NOW, chunk_bytes=chunk_bytes)
    [damage] = report.rejections
    assert "the compressed file is damaged or cut short" in damage.reason
    assert f"nothing after line {damage.line - 1} could be read" in damage.reason
    assert 200 < report.rows == damage.line - 2 < 400  # every complete row before the cut, not the cut one
    assert report.result.inserted == report.rows
    assert report.cost == sum(Decimal(f"{i}.25") for i in range(1, report.rows + 1))


def test_a_gzip_export_cut_inside_its_header_is_rejected_on_line_1(db: Database, tmp_path: Path) -> None:
    _account(db)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress((DATA / AI).read_bytes())[:30])
    [report] = import_focus(db, "acme", [cut], now=NOW)
    assert [r.line for r in report.rejections] == [1] and report.rows == 0
    assert "damaged or cut short" in report.rejections[0].reason


@PARSING
def test_zero_padding_after_a_gzip_export_is_ignored_and_a_damaged_second_member_keeps_the_first(
        db: Database, tmp_path: Path, chunk_bytes: int | None) -> None:
    """gzip itself ignores zero padding (tape and block devices add it); a damaged member must not take the rows
    of the good member before it down with it."""
    _account(db)
    content = (DATA / AI).read_bytes()
    padded = tmp_path / "padded.csv.gz"
    padded.write_bytes(gzip.compress(content) + b"\0" * 512)
    [report] = import_focus(db, "acme", [padded], now=NOW, chunk_bytes=chunk_bytes)
    assert report.rejections == [] and report.cost == _billed_sum(DATA / AI)
    damaged = tmp_path / "damaged.csv.gz"
    damaged.write_bytes(gzip.compress(content) + b"\x1f\x8b" + os.urandom(64))
    [again] = import_focus(db, "acme", [damaged], now=NOW, chunk_bytes=chunk_bytes)
    [damage] = again.rejections
    assert "damaged or cut short" in damage.reason
    assert again.result.unchanged == again.rows == report.rows  # every row of the good member, once


def _as_parquet(sample: Path, path: Path, *, typed: bool) -> Path:
    """The sample as a Parquet export: every cell kept as written (typed=False), or with the types Arrow infers
    from the text (timestamps, doubles, integers), as exports write them."""
    options = None if typed else pa_csv.ConvertOptions(column_types=dict.fromkeys(_rows(sample.name)[0],
                                                                                   pa.string()))
    pq.write_table(pa_csv.read_csv(sample, convert_options=options), path)
    return path


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem[-48:])
def test_every_spec_sample_as_parquet_imports_like_the_csv(db: Database, sample: Path, tmp_path: Path) -> None:
    _account(db)
    [report] = import_focus(db, "acme", [_as_parquet(sample, tmp_path / "sample.parquet", typed=False)], now=NOW)
    bad_lines = MALFORMED.get(sample.name, set())
    assert report.rejected == len(bad_lines) and report.cost == _billed_sum(sample, bad_lines)
    assert _usage_total(db, report).quantize(CENT) == report.cost.quantize(CENT)
    [again] = import_focus(db, "acme", [tmp_path / "sample.parquet"], now=NOW)
    assert (again.result.inserted, again.result.updated, again.result.unchanged) == (0, 0, report.result.inserted)


def test_a_typed_parquet_export_with_map_tags_and_a_missing_cost(db: Database, tmp_path: Path) -> None:
    _account(db, tz="UTC")
    start = datetime(2025, 5, 1, tzinfo=UTC)
    table = pa.table({
        "BilledCost": pa.array([Decimal("1.25"), None, Decimal("0.0000015")], pa.decimal128(18, 7)),
        "ChargePeriodStart": pa.array([start] * 3, pa.timestamp("ms", tz="UTC")),
        "ChargePeriodEnd": pa.array([start + timedelta(hours=1)] * 3, pa.timestamp("ms", tz="UTC")),
        "ChargeCategory": ["Usage"] * 3, "ServiceName": ["Compute", "Compute", "Storage"],
        "ConsumedQuantity": pa.array([2.5, 1.0, None]), "ConsumedUnit": ["Hours", "Hours", "GB"],
        "Tags": pa.array([[("team", "a")], [("team", "b")], None], pa.map_(pa.string(), pa.string())),
    })
    path = tmp_path / "export.parquet"
    pq.write_table(table, path)
    [report] = import_focus(db, "acme", [path], now=NOW)
    assert [(r.line, r.column) for r in report.rejections] == [(3, "BilledCost")]  # the second row
    assert report.result.inserted == 2 and report.cost == Decimal("1.250002")  # micro-units, half-even
    day = Period(date(2025, 5, 1), date(2025, 5, 2), "the day")
    by_team = Billing(db).usage("acme", day, group_by="tag.team")
    assert [(row.key, row.cost) for row in by_team.rows] == [("a", Decimal("1.25")),  # b was the rejected row
                                                              ("(no tag.team)", Decimal("0.000002"))]
    assert by_team.total_cost == Decimal("1.250002")


def test_a_correction_and_a_new_row_in_one_hour_leave_the_unit_of_the_last_row(db: Database, tmp_path: Path) -> None:
    _account(db, tz="UTC")
    header = ["BilledCost", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ServiceName", "ResourceId",
              "ConsumedQuantity", "ConsumedUnit"]
    hour = ["2025-05-01T10:00:00Z", "2025-05-01T11:00:00Z", "Usage", "Compute"]
    import_focus(db, "acme", [_write(tmp_path / "first.csv", header, [["1.00", *hour, "a", "1", "h"]])], now=NOW)
    [report] = import_focus(db, "acme", [_write(tmp_path / "second.csv", header, [
        ["2.00", *hour, "b", "2", "h"], ["1.50", *hour, "a", "1", "GB"]])], now=NOW)
    assert (report.result.inserted, report.result.updated) == (1, 1)
    with db.unit_of_work() as s:
        [(unit, cost)] = s.execute(select(UsageHourly.unit, UsageHourly.cost)).all()
    assert (unit, cost) == ("GB", Decimal("3.50"))  # the corrected row came last


def test_a_line_not_utf8_in_a_column_the_importer_does_not_read_is_still_rejected(db: Database, tmp_path: Path) -> None:
    _account(db)
    header, rows = _rows(AI)
    unused = header.index("PrincipalId")
    path = _write(tmp_path / "latin1.csv", header, rows)
    lines = path.read_bytes().split(b"\n")
    cells = lines[2].split(b",")
    cells[unused] = "Müller".encode("latin-1")
    lines[2] = b",".join(cells)
    path.write_bytes(b"\n".join(lines))
    [report] = import_focus(db, "acme", [path], now=NOW)
    assert [(r.line, r.column) for r in report.rejections] == [(3, None)] and report.result.inserted == len(rows) - 1


def test_amounts_near_the_ledger_limit_add_up_exactly(db: Database, tmp_path: Path) -> None:
    _account(db, tz="UTC")
    header = ["BilledCost", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ResourceId"]
    days = [datetime(2025, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(12)]
    rows = [["999999999999.5", d.isoformat(), (d + timedelta(hours=1)).isoformat(), "Usage", f"r{i}"]
            for i, d in enumerate(days)]
    [report] = import_focus(db, "acme", [_write(tmp_path / "huge.csv", header, rows)], now=NOW)
    assert report.cost == Decimal("11999999999994.0")  # beyond 64 bits of micro-units: summed exactly, not wrapped


def test_a_restated_export_adds_its_new_rows_and_leaves_the_rest(db: Database, tmp_path: Path) -> None:
    """How cloud exports arrive: the month so far, again every day, with the new hours at the end."""
    _account(db, tz="UTC")
    _account(db, "fresh", tz="UTC")
    header, rows = _hourly(45)
    import_focus(db, "acme", [_write(tmp_path / "day1.csv", header, rows[:30])], now=NOW)
    restated = _write(tmp_path / "day2.csv", header, rows)
    [report] = import_focus(db, "acme", [restated], now=NOW, batch_rows=20)
    assert (report.result.inserted, report.result.updated, report.result.unchanged) == (15, 0, 30)
    [once] = import_focus(db, "fresh", [restated], now=NOW)
    month = Period(date(2025, 5, 1), date(2025, 6, 1), "May")
    for grouping in ("deployment", "service", "sku.ModelId"):
        assert Billing(db).usage("acme", month, group_by=grouping).rows == \
            Billing(db).usage("fresh", month, group_by=grouping).rows
    assert _usage_total(db, report) == _usage_total(db, once, "fresh") == sum(Decimal(f"{i}.5") for i in range(45))


@pytest.mark.parametrize("refusing", ["usage_records", "usage_hourly"])
def test_a_batch_the_database_refuses_ends_the_import_with_whole_batches_only(db: Database, tmp_path: Path,
                                                                               refusing: str) -> None:
    """Batch 3 of 5 is refused, its rows or its rollups: batches 1-2 stay, 3 leaves nothing, nor does 4 (whose
    rows PostgreSQL already took, on another connection, while 3's rollups moved); the rollups agree with the
    rows; running the import again completes it."""
    _account(db, tz="UTC")
    header, rows = _hourly(45)
    rows[25][header.index("ServiceName")] = "Refused service"
    path = _write(tmp_path / "export.csv", header, rows)
    with _refusing_meter(db, refusing, "Refused service"), pytest.raises(Exception, match="refused"):
        import_focus(db, "acme", [path], now=NOW, batch_rows=10)
    with db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(UsageRecord)) == 20
        hours = s.scalar(select(func.count()).select_from(UsageHourly))
    may = Period(date(2025, 5, 1), date(2025, 6, 1), "May")
    assert hours == 20 and Billing(db).usage("acme", may).total_cost == sum(Decimal(f"{i}.5") for i in range(20))
    [again] = import_focus(db, "acme", [path], now=NOW, batch_rows=10)
    assert (again.result.inserted, again.result.unchanged) == (25, 20)
    assert Billing(db).usage("acme", may).total_cost == sum(Decimal(f"{i}.5") for i in range(45))


@contextmanager
def _refusing_meter(db: Database, table: str, meter: str) -> Iterator[None]:
    """The database refuses rows of `meter` in `table` (a trigger) while the block runs."""
    with db.engine.begin() as connection:
        if db.dialect == "sqlite":
            connection.exec_driver_sql(f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.meter = '{meter}' "
                                       "BEGIN SELECT RAISE(ABORT, 'refused'); END")
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.meter = TG_ARGV[0] "
                "THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$")
            connection.exec_driver_sql(f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW "
                                       f"EXECUTE FUNCTION refuse('{meter}')")
    try:
        yield
    finally:
        with db.engine.begin() as connection:
            if db.dialect == "sqlite":
                connection.exec_driver_sql("DROP TRIGGER refuse")
            else:
                connection.exec_driver_sql(f"DROP TRIGGER refuse ON {table}")
                connection.exec_driver_sql("DROP FUNCTION refuse()")


def test_a_corrected_export_with_new_dimension_sets_in_every_batch_imports(db: Database, tmp_path: Path,
                                                                           request: pytest.FixtureRequest) -> None:
    """Every row of the correction is an update with a dimension set not stored yet, in every batch: on
    PostgreSQL, batch N+1's rows (which need batch N's new sets) go in while N commits, so they wait for N at
    most — never the reverse, which would hang (a lock timeout turns a hang into a failure here)."""
    if db.dialect == "postgresql":
        db = Database(db.url, connect_args={"options": f"-csearch_path={request.getfixturevalue('pg_schema')} "
                                                       "-c lock_timeout=20s"})
    _account(db, tz="UTC")
    header, rows = _hourly(45)

    def export(name: str, restated: bool) -> Path:
        if restated:
            for i, row in enumerate(rows):
                row[header.index("ServiceCategory")] = f"Restated {i % 12}"
        return _write(tmp_path / name, header, rows)

    import_focus(db, "acme", [export("first.csv", False)], now=NOW, batch_rows=10)
    [corrected] = import_focus(db, "acme", [export("corrected.csv", True)], now=NOW, batch_rows=10)
    assert (corrected.result.inserted, corrected.result.updated) == (0, 45)
    may = Period(date(2025, 5, 1), date(2025, 6, 1), "May")
    by_category = {r.key: r.cost for r in Billing(db).usage("acme", may, group_by="service_category").rows}
    assert by_category == {f"Restated {n}": sum(Decimal(f"{i}.5") for i in range(n, 45, 12)) for n in range(12)}
