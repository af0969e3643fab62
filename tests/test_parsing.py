"""What people type after /billing: understood, or answered with what was wrong and an example."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing_core.errors import InvalidInput
from billing_core.money import parse_amount
from billing_core.periods import Granularity
from billing_core.results import InvoiceStatus
from bot.parsing import (
    EXAMPLES,
    SUBCOMMANDS,
    near_grouping,
    parse_command,
    parse_invoice_filters,
    parse_member,
    parse_money,
    parse_payment_filters,
    parse_usage,
)

TODAY = date(2026, 11, 22)


def test_empty_is_the_overview_and_aliases_work() -> None:
    assert parse_command("").name == "overview"
    assert parse_command("  budgets ").name == "budget"
    assert parse_command("INV-0042").name == "invoice"


@pytest.mark.parametrize(("typed", "suggested"), [("invocies", "invoices"), ("forcast", "forecast"),
                                                  ("usge", "usage"), ("paymnts", "payments")])
def test_unknown_subcommand_suggests_the_closest(typed: str, suggested: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_command(typed)
    assert f"`{typed}`" in err.value.message and f"/billing {suggested}" in (err.value.hint or "")


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_has_an_example_that_asks_for_it(name: str) -> None:
    assert parse_command(EXAMPLES[name].removeprefix("/billing ")).name == name


def test_garbage_is_refused_politely() -> None:
    with pytest.raises(InvalidInput, match="I read at most 300"):
        parse_command("x" * 10_000)
    with pytest.raises(InvalidInput) as err:
        parse_command("¯\\_(ツ)_/¯")
    assert "/billing help" in (err.value.hint or "")


def test_invoice_filters_in_natural_forms() -> None:
    query, page = parse_invoice_filters(("overdue", "last", "90", "days"), TODAY)
    assert query.statuses == (InvoiceStatus.OVERDUE,) and query.issued_from == date(2026, 8, 25)
    assert query.issued_to == TODAY and page == 1
    query, page = parse_invoice_filters(("unpaid", "from", "2026-01-01", "to", "2026-03-31", "inv-00", "page", "3"),
                                        TODAY)
    assert query.statuses == (InvoiceStatus.PENDING, InvoiceStatus.OVERDUE)
    assert (query.issued_from, query.issued_to, query.search, page) == (date(2026, 1, 1), date(2026, 3, 31),
                                                                        "inv-00", 3)


@pytest.mark.parametrize(("args", "message"), [
    (("from", "2026-03-01", "to", "2026-01-01"), "is before"),
    (("from", "yesterdayish"), "not a date"),
    (("from",), "needs a date"),
    (("page", "x"), "whole number"),
    (("banana",), "don't understand `banana`"),
])
def test_bad_invoice_filters_say_what_was_wrong(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as err:
        parse_invoice_filters(args, TODAY)
    assert err.value.hint


def test_usage_periods_groups_and_granularity() -> None:
    req = parse_usage(("month", "by", "provider"), TODAY)
    assert (req.period.start, req.group_by, req.granularity) == (date(2026, 11, 1), "provider", Granularity.DAY)
    req = parse_usage(("last", "7", "days", "by", "model", "hourly"), TODAY)
    assert (req.period.days, req.group_by, req.granularity) == (7, "model", Granularity.HOUR)
    req = parse_usage(("2026-10-01..2026-10-15",), TODAY)
    assert req.period.days == 15
    req = parse_usage(("year",), TODAY)
    assert req.granularity is Granularity.WEEK
    with pytest.raises(InvalidInput, match="before the start"):
        parse_usage(("2026-10-15..2026-10-01",), TODAY)
    with pytest.raises(InvalidInput, match="can't group by"):
        parse_usage(("by", "<!channel>"), TODAY)


@pytest.mark.parametrize(("typed", "meant"), [("dployment", "deployment"), ("provder", "provider"),
                                               ("Resouce", "resource"), ("deploymnts", "deployments"),
                                               ("source", "resource")])
def test_a_grouping_like_a_standard_one_is_flagged_as_a_likely_typo(typed: str, meant: str) -> None:
    """Flagged, not refused: the handler refuses it only when no usage carries such a key (a real `source` tag
    must still work), where `by dployment` used to answer "(no dployment) — $4,512.20 (100%)"."""
    request = parse_usage(("month", "by", typed), TODAY)
    assert near_grouping(request.group_by) == meant


@pytest.mark.parametrize("plural", ["types", "meters", "leases", "deployments", "providers"])
def test_plural_grouping_words_mean_the_grouping(plural: str) -> None:
    assert parse_usage(("month", "by", plural), TODAY).group_by in ("resource", "deployment", "provider")


@pytest.mark.parametrize(("typed", "key"), [("model", "model"), ("region", "region"), ("Region", "region"),
                                            ("tier", "tier"), ("tag.team", "tag.team"),
                                            ("sku.ModelId", "sku.ModelId"), ("resource_group", "resource_group"),
                                            ("provider_name", "provider_name")])
def test_dimension_keys_are_still_grouped_by_as_stored(typed: str, key: str) -> None:
    assert parse_usage(("month", "by", typed), TODAY).group_by == key


@pytest.mark.parametrize(("args", "both"), [
    (("month", "by", "deployment", "by", "provider"), ("`by deployment`", "`by provider`")),
    (("month", "by", "model", "by", "region"), ("`by model`", "`by region`")),
    (("month", "daily", "weekly"), ("`daily`", "`weekly`")),
])
def test_two_groupings_or_two_bucket_sizes_are_refused_naming_both(args: tuple[str, ...],
                                                                  both: tuple[str, str]) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_usage(args, TODAY)
    assert both[0] in err.value.message and both[1] in err.value.message
    assert (err.value.hint or "").startswith("e.g. `/billing usage month")


def test_two_periods_in_one_usage_question_are_refused_naming_both() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_usage(("month", "2026-10"), TODAY)
    assert "Pick one period" in err.value.message and "October 2026" in err.value.message
    assert parse_usage(("2026-10", "by", "provider", "2026-10"), TODAY).period.label == "October 2026"  # the same


def test_the_same_grouping_twice_is_not_a_conflict() -> None:
    assert parse_usage(("by", "type", "by", "resource", "daily", "daily"), TODAY).group_by == "resource"


def test_usage_and_payments_read_from_and_to_like_invoices() -> None:
    req = parse_usage(("from", "2026-11-01", "to", "2026-11-30", "by", "provider"), TODAY)
    assert (req.period.start, req.period.days, req.group_by) == (date(2026, 11, 1), 30, "provider")
    assert parse_usage(("since", "2026-11-01"), TODAY).period.end == date(2026, 11, 23)  # through today
    query = parse_payment_filters(("from", "2026-01-01"), TODAY)
    assert (query.paid_from, query.paid_to) == (date(2026, 1, 1), TODAY)
    query = parse_payment_filters(("from", "2026-01-01", "to", "2026-03-31"), TODAY)
    assert (query.paid_from, query.paid_to) == (date(2026, 1, 1), date(2026, 3, 31))
    invoices, _ = parse_invoice_filters(("to", "2026-03-31", "paid", "from", "2026-01-01"), TODAY)
    assert (invoices.issued_from, invoices.issued_to) == (date(2026, 1, 1), date(2026, 3, 31))


@pytest.mark.parametrize(("args", "message"), [
    (("from", "2026-11-30", "to", "2026-11-01"), "`to 2026-11-01` is before `from 2026-11-30`"),
    (("to", "2026-11-30"), "needs a start date"),
    (("from",), "needs a date"),
    (("from", "2027-01-01"), "after today"),
])
def test_bad_usage_and_payment_ranges_say_what_was_wrong(args: tuple[str, ...], message: str) -> None:
    for parse in (parse_usage, parse_payment_filters):
        with pytest.raises(InvalidInput, match=message) as err:
            parse(args, TODAY)
        assert err.value.hint


def test_last_n_years_is_counted_on_the_calendar_up_to_three() -> None:
    req = parse_usage(("last", "2", "years"), TODAY)
    assert (req.period.start, req.period.end, req.period.label) == (date(2024, 11, 23), date(2026, 11, 23),
                                                                    "last 2 years")
    assert parse_payment_filters(("last", "1", "year"), TODAY).paid_from == date(2025, 11, 23)
    with pytest.raises(InvalidInput, match="between 1 and 3 years") as err:
        parse_usage(("last", "5", "years"), TODAY)
    assert err.value.hint == "e.g. last 3 years"
    with pytest.raises(InvalidInput, match="between 1 and 156 weeks"):
        parse_usage(("last", "99999999", "weeks"), TODAY)
    with pytest.raises(InvalidInput, match="days, weeks, months or years"):
        parse_usage(("last", "5", "decades"), TODAY)


def test_a_future_month_is_refused_rather_than_shown_as_nothing_spent() -> None:
    with pytest.raises(InvalidInput, match="January 2030 is in the future") as err:
        parse_usage(("2030-01",), TODAY)
    assert "/billing usage 2026-11" in (err.value.hint or "")
    assert parse_usage(("2026-11",), TODAY).period.start == date(2026, 11, 1)  # this month so far is fine


def test_payment_ranges_and_member_mentions() -> None:
    assert parse_payment_filters(("last", "30", "days"), TODAY).paid_from == date(2026, 10, 24)
    with pytest.raises(InvalidInput, match="range of payments"):
        parse_payment_filters(("lots",), TODAY)
    assert parse_member("<@U123ABC|jane>") == "U123ABC"
    assert parse_member("U_VIEWER") == "U_VIEWER"
    with pytest.raises(InvalidInput):
        parse_member("jane")


@pytest.mark.parametrize(("typed", "locale", "amount"), [
    ("12,500.00", "en_US", "12500.00"), ("12500", "en_US", "12500"), ("12.5", "en_US", "12.5"),
    ("12.500,00", "de_DE", "12500.00"), ("12.500,00", "pt_BR", "12500.00"), ("12500", "de_DE", "12500"),
    ("12,5", "de_DE", "12.5"), ("12 500,00", "fr_FR", "12500.00"), (" 750 ", "pt_BR", "750"),
])
def test_money_is_read_in_the_readers_locale(typed: str, locale: str, amount: str) -> None:
    assert parse_money(typed, locale) == Decimal(amount)


@pytest.mark.parametrize(("typed", "locale"), [
    ("12,500.00", "de_DE"), ("12.500,00", "en_US"), ("12,5", "en_US"), ("lots", "en_US"), ("", "pt_BR"),
    ("1e15", "en_US"), ("NaN", "en_US"), ("-5", "en_US"), ("9" * 13, "en_US"),
])
def test_an_ambiguous_or_invalid_amount_is_refused_on_its_field_with_a_local_example(typed: str,
                                                                                      locale: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_money(typed, locale, field="amount")
    assert err.value.field == "amount"
    assert err.value.hint and ("1.250,75" if locale != "en_US" else "1,250.75") in err.value.hint


def test_the_core_never_reads_a_european_amount_as_a_smaller_one() -> None:
    """Deleting every comma made `12.500,00` 12.5; only thousands-grouping commas are accepted now."""
    assert parse_amount("12,500.00") == Decimal("12500.00")
    with pytest.raises(InvalidInput, match="not a number"):
        parse_amount("12.500,00")
    with pytest.raises(InvalidInput, match="not a number"):
        parse_amount("12,5")
