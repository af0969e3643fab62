"""What a user typed after `/billing`, turned into core queries — or a friendly `InvalidInput`.

Every error names what was not understood and shows a request that works. Nothing here talks to Slack
or the database; `today` (the account's local date) is a parameter.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import TypeVar

from babel.numbers import NumberFormatError, get_group_symbol, parse_decimal

from billing_core import fmt
from billing_core.errors import InvalidInput
from billing_core.money import parse_amount
from billing_core.periods import (
    MAX_PERIOD_DAYS,
    Granularity,
    Period,
    add_months,
    custom_period,
    default_granularity,
    last_days,
    month_period,
    today_period,
    week_period,
    year_period,
)
from billing_core.results import InvoiceQuery, InvoiceStatus, PaymentQuery

MAX_TEXT = 300
PAGE_SIZE = 10

SUBCOMMANDS: dict[str, str] = {
    "overview": "current costs, balance, projection and recent invoices",
    "invoices": "list and filter invoices",
    "invoice": "one invoice with its lines and payments",
    "usage": "cost and usage for a period, grouped and charted",
    "forecast": "month-end projection with its interval and budget",
    "payments": "payments with their receipts",
    "budget": "budgets and their progress; `budget set` and `budget delete` for admins",
    "export": "bulk export of invoices as CSV or a ZIP of PDFs",
    "link": "link this channel to a billing account (admin)",
    "unlink": "remove this channel's link (admin)",
    "access": "show, grant or revoke billing roles",
    "help": "this list, with examples",
    "reconcile": "provider invoices vs metered usage for a month, with a CSV (admin)",
    "alerts": "alert rules, routes, quiet hours, undelivered alerts; `alerts test budget` (admin)",
}
ALIASES = {
    "home": "overview", "summary": "overview", "status": "overview", "inv": "invoices", "bills": "invoices",
    "budgets": "budget", "payment": "payments", "receipts": "payments", "costs": "usage", "cost": "usage",
    "spend": "usage", "projection": "forecast", "roles": "access", "?": "help",
}
EXAMPLES = {  # one per subcommand: help shows each, and "did you mean" offers it
    "overview": "/billing overview",
    "invoices": "/billing invoices overdue last 90 days",
    "invoice": "/billing invoice INV-0042",
    "usage": "/billing usage month by provider",
    "forecast": "/billing forecast",
    "payments": "/billing payments last 30 days",
    "export": "/billing export invoices paid from 2026-01-01 pdf",
    "budget": "/billing budget set",
    "link": "/billing link acme-corp",
    "unlink": "/billing unlink",
    "access": "/billing access grant @jane viewer",
    "help": "/billing help",
    "reconcile": "/billing reconcile 2026-10",
    "alerts": "/billing alerts route overdue #finance",
}
STATUS_WORDS: dict[str, tuple[InvoiceStatus, ...]] = {
    "pending": (InvoiceStatus.PENDING,), "paid": (InvoiceStatus.PAID,), "overdue": (InvoiceStatus.OVERDUE,),
    "late": (InvoiceStatus.OVERDUE,), "cancelled": (InvoiceStatus.CANCELLED,),
    "canceled": (InvoiceStatus.CANCELLED,), "void": (InvoiceStatus.CANCELLED,), "draft": (InvoiceStatus.DRAFT,),
    "unpaid": (InvoiceStatus.PENDING, InvoiceStatus.OVERDUE), "open": (InvoiceStatus.PENDING, InvoiceStatus.OVERDUE),
}
GROUPS = {"deployment": "deployment", "deployments": "deployment", "lease": "deployment", "leases": "deployment",
          "provider": "provider", "providers": "provider", "resource": "resource", "resources": "resource",
          "meter": "resource", "meters": "resource", "type": "resource", "types": "resource"}
GRANULARITIES = {"hourly": Granularity.HOUR, "daily": Granularity.DAY, "weekly": Granularity.WEEK,
                 "monthly": Granularity.MONTH}
_DIMENSION = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$", re.IGNORECASE)
#: How alike (difflib ratio) a plain word must be to a grouping word to be read as its typo: catches `dployment`
#: (0.95) and `provder` (0.93) while real keys such as model, region or tier stay below 0.7.
_TYPO_CUTOFF = 0.8
FROM_WORDS = ("from", "since", "after")
TO_WORDS = ("to", "until", "before")
#: Days in a `last N <unit>`; years are counted on the calendar instead (see `_last_n`).
_UNIT_DAYS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30, "year": 365, "years": 365}
_INVOICE_NUMBER = re.compile(r"^[A-Za-z]{2,5}-[A-Za-z0-9-]{1,30}$")
_MENTION = re.compile(r"^<@([UW][A-Z0-9_]+)(?:\|[^>]*)?>$|^@?([UW][A-Z0-9_]{2,})$")
_CHANNEL = re.compile(r"^<#([CDG][A-Z0-9_]+)(?:\|[^>]*)?>$|^([CDG][A-Z0-9_]{2,})$")


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]


def parse_command(text: str) -> Command:
    """Split `/billing TEXT` into a subcommand and its words; an unknown word suggests the closest one."""
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"That request is {len(text):,} characters long; I read at most {MAX_TEXT}.",
                           hint="/billing help")
    words = text.split()
    if not words:
        return Command("overview", ())
    head = words[0].lower()
    if _INVOICE_NUMBER.match(words[0]) and head not in SUBCOMMANDS:
        return Command("invoice", tuple(words))  # `/billing INV-0042` is a shortcut
    name = ALIASES.get(head, head)
    if name not in SUBCOMMANDS:
        raise InvalidInput(f"I don't know `{_short(words[0])}`.", hint=_suggest(head))
    return Command(name, tuple(words[1:]))


def _closest(word: str, choices: Iterable[str], *, cutoff: float) -> str | None:
    """The choice most like `word` (difflib ratio at least `cutoff`): every "did you mean" answer uses it."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return match[0] if match else None


def _suggest(word: str) -> str:
    match = _closest(word, [*SUBCOMMANDS, *ALIASES], cutoff=0.5)
    if match:
        name = ALIASES.get(match, match)
        return f"Did you mean `/billing {name}`? e.g. `{EXAMPLES.get(name, '/billing ' + name)}`"
    return "`/billing help` lists everything I can do."


def _short(word: str) -> str:
    return word if len(word) <= 30 else word[:29] + "…"


def parse_date(word: str, today: date) -> date:
    lowered = word.lower()
    if lowered == "today":
        return today
    if lowered == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(word.replace("/", "-"))
    except ValueError:
        raise InvalidInput(f"`{_short(word)}` is not a date I can read.", hint="Dates look like 2026-10-31.") from None


def _take_number(words: list[str], i: int, what: str, example: str) -> int:
    if i >= len(words) or not words[i].isdigit() or len(words[i]) > 6:
        raise InvalidInput(f"`{what}` needs a whole number after it.", hint=example)
    return int(words[i])


def _relative_range(words: list[str], i: int, today: date) -> tuple[Period, int] | None:
    """`last N days|weeks|months|years`, `this|last month|week|year` at words[i]; the period and words used."""
    if words[i] not in ("last", "past", "this", "previous"):
        return None
    rest = words[i + 1:i + 3]
    if rest and rest[0].isdigit():
        return _last_n(words[i], rest[0], rest[1] if len(rest) > 1 else "days", today), 3
    if rest and rest[0] in ("month", "week", "year"):
        unit, this = rest[0], words[i] == "this"
        if unit == "month":
            return (month_period(today) if this else month_period(add_months(today.replace(day=1), -1))), 2
        if unit == "week":
            return (week_period(today) if this else week_period(today - timedelta(days=7))), 2
        return (year_period(today) if this else year_period(date(today.year - 1, 1, 1))), 2
    return None


def _last_n(word: str, count: str, unit: str, today: date) -> Period:
    """`last N <unit>`, refused in the user's own unit beyond the longest period anything is shown for."""
    per_unit = _UNIT_DAYS.get(unit)
    if per_unit is None:
        raise InvalidInput(f"`{word} {count} {_short(unit)}`: I count in days, weeks, months or years.",
                           hint="e.g. last 90 days")
    n = int(count) if len(count) <= 4 else 10**6  # a 5000-digit number is just "too many"
    most = MAX_PERIOD_DAYS // per_unit
    plural = unit.rstrip("s") + "s"
    if not 1 <= n <= most:
        raise InvalidInput(f"`{word} {_short(count)} {unit}` must be between 1 and {most} {plural}.",
                           hint=f"e.g. {word} {most} {plural}")
    # Years on the calendar (a leap day included), so `last 1 year` starts on this date a year ago.
    days = (today - add_months(today, -12 * n)).days if unit.startswith("year") else n * per_unit
    period = last_days(today, days)
    return period if per_unit == 1 else replace(period, label=f"last {n} {unit}")


def _date_range(words: list[str], i: int, today: date) -> tuple[date | None, date | None, int] | None:
    """`from DATE [to DATE]` or `to DATE` at words[i]: the first and last day given, and the words used.

    The one reader of typed date ranges: invoices use the open ends as they are, usage and payments through
    `parse_period`.
    """
    if words[i] in FROM_WORDS:
        start = _date_after(words, i, today)
        if i + 2 < len(words) and words[i + 2] in TO_WORDS:
            end = _date_after(words, i + 2, today)
            _check_order(start, end)
            return start, end, 4
        return start, None, 2
    if words[i] in TO_WORDS:
        return None, _date_after(words, i, today), 2
    return None


def _date_after(words: list[str], i: int, today: date) -> date:
    return parse_date(words[i + 1], today) if i + 1 < len(words) else _missing(words[i])


def _check_order(start: date | None, end: date | None) -> None:
    if start and end and end < start:
        raise InvalidInput(f"`to {end}` is before `from {start}`.", hint="e.g. from 2026-01-01 to 2026-03-31")


def parse_invoice_filters(args: tuple[str, ...], today: date) -> tuple[InvoiceQuery, int]:
    """`[status…] [from DATE] [to DATE] [last N days] [INV-…] [page N]` → query and page number."""
    words = [w.lower() for w in args]
    statuses: list[InvoiceStatus] = []
    start: date | None = None
    end: date | None = None
    search: str | None = None
    page = 1
    i = 0
    while i < len(words):
        word = words[i]
        if word in STATUS_WORDS:
            statuses += [s for s in STATUS_WORDS[word] if s not in statuses]
            i += 1
        elif (given := _date_range(words, i, today)) is not None:
            start, end, i = given[0] or start, given[1] or end, i + given[2]
        elif word == "page":
            page = _take_number(words, i + 1, "page", "e.g. /billing invoices page 2")
            if page < 1:
                raise InvalidInput("Pages start at 1.", hint="e.g. /billing invoices page 2")
            i += 2
        elif word == "search" and i + 1 < len(args):
            search, i = args[i + 1][:40], i + 2
        elif (rel := _relative_range(words, i, today)) is not None:
            period, used = rel
            start, end = period.start, period.end - timedelta(days=1)
            i += used
        elif _INVOICE_NUMBER.match(args[i]) or word.startswith("inv"):
            search, i = args[i][:40], i + 1
        elif word in ("invoices", "all", "with", "status", "and", "in", "the"):
            i += 1  # filler a person naturally types
        else:
            raise InvalidInput(f"I don't understand `{_short(args[i])}` in an invoice filter.",
                               hint="e.g. `/billing invoices overdue from 2026-01-01 to 2026-03-31 page 2`")
    _check_order(start, end)  # `to` and `from` may come apart: `to 2026-03-31 overdue from 2026-01-01`
    return InvoiceQuery(tuple(statuses), start, end, search, PAGE_SIZE), page


def _missing(word: str) -> date:
    raise InvalidInput(f"`{word}` needs a date after it.", hint=f"e.g. {word} 2026-10-01")


def parse_period(words: list[str], i: int, today: date) -> tuple[Period, int] | None:
    """A period starting at words[i], and how many words it used."""
    word = words[i]
    simple = {"today": today_period(today), "yesterday": today_period(today - timedelta(days=1)),
              "week": week_period(today), "month": month_period(today), "year": year_period(today),
              "mtd": month_period(today), "ytd": year_period(today)}
    if word in simple:
        return simple[word], 1
    if (rel := _relative_range(words, i, today)) is not None:
        return rel
    if (given := _date_range(words, i, today)) is not None:
        return _typed_period(*given, today)
    if ".." in word:
        first, _, last = word.partition("..")
        return custom_period(parse_date(first, today), parse_date(last, today)), 1
    if re.fullmatch(r"\d{4}-\d{2}", word):
        try:
            return month_period(date.fromisoformat(word + "-01")), 1
        except ValueError:
            raise InvalidInput(f"`{word}` is not a month.", hint="e.g. 2026-10") from None
    return None


def _typed_period(start: date | None, end: date | None, used: int, today: date) -> tuple[Period, int]:
    """`from DATE` alone runs through today; a period needs its start (`to DATE` alone only filters invoices)."""
    if start is None:
        stop = end or today
        raise InvalidInput(f"`to {stop}` needs a start date before it.",
                           hint=f"e.g. from {add_months(stop, -1)} to {stop}")
    if end is None and start > today:
        raise InvalidInput(f"`from {start}` is after today ({today}).", hint=f"e.g. from {add_months(today, -1)}")
    return custom_period(start, end or today), used


@dataclass(frozen=True)
class UsageRequest:
    period: Period
    group_by: str
    granularity: Granularity


def parse_usage(args: tuple[str, ...], today: date) -> UsageRequest:
    """`[today|week|month|year|last N days|FROM..TO|from DATE [to DATE]|YYYY-MM] [by GROUP]
    [hourly|daily|weekly|monthly]`."""
    words = [w.lower() for w in args]
    period: Period | None = None
    group: str | None = None
    bucket: str | None = None
    i = 0
    while i < len(words):
        word = words[i]
        if word == "by" and i + 1 < len(words):
            group = _only_one(group, _grouping(args[i + 1]), kind="grouping", shown="by {}".format,
                              example="month {}")
            i += 2
        elif word in GRANULARITIES:
            bucket, i = _only_one(bucket, word, kind="bucket size", shown=str, example="month {}"), i + 1
        elif word in ("this", "the", "for", "of", "in"):
            i += 1
        elif (found := parse_period(words, i, today)) is not None:
            period = _only_one(period, found[0], kind="period", shown=lambda p: p.label,
                               example="2026-10 by deployment")
            i += found[1]
        else:
            raise InvalidInput(f"I don't understand `{_short(args[i])}` in a usage question.",
                               hint="e.g. `/billing usage last 30 days by deployment daily`")
    chosen = _not_in_future(period or month_period(today), today)
    granularity = GRANULARITIES[bucket] if bucket else default_granularity(chosen)
    return UsageRequest(chosen, group or "resource", granularity)


def _grouping(typed: str) -> str:
    """What `by TYPED` groups by: a standard grouping, or a dimension key (model, region, tag.team, sku.ModelId)."""
    word = typed.lower()
    if word in GROUPS:
        return GROUPS[word]
    if not _DIMENSION.match(typed):
        raise InvalidInput(f"I can't group by `{_short(typed)}`.",
                           hint="by deployment, provider, resource, or a dimension such as model or region")
    # Keys we name are lower case; after `sku.`/`tag.` the provider's own spelling is kept (sku.ModelId).
    head, dot, rest = typed.partition(".")
    return head.lower() + dot + rest


def near_grouping(group_by: str) -> str | None:
    """The standard grouping a dimension key looks like a typo of (`dployment` → deployment), if any.

    Any key is accepted here (the account's keys are not known to the parser): a key very like a grouping word
    is refused only when no usage carries it (`bot.handlers.ledger.usage`), so a real `source` tag still works.
    A key with a separator or a digit (tag.team, resource_group) is a deliberate name."""
    if group_by in GROUPS.values() or not group_by.isalpha():
        return None
    return _closest(group_by, GROUPS, cutoff=_TYPO_CUTOFF)


_Choice = TypeVar("_Choice", str, Period)


def _only_one(chosen: _Choice | None, new: _Choice, *, kind: str, shown: Callable[[_Choice], str],
              example: str) -> _Choice:
    """The one choice of a kind (grouping, bucket size, period): two different ones are refused, not silently
    settled by the last one. `shown` writes a choice as the user would type it; `example` is the rest of a
    usage question that works ("{}" stands for the first choice)."""
    if chosen is not None and chosen != new:
        first = shown(chosen)
        raise InvalidInput(f"Pick one {kind}: `{first}` or `{shown(new)}`, not both.",
                           hint=f"e.g. `/billing usage {example.format(first)}`")
    return new


def _not_in_future(period: Period, today: date) -> Period:
    """A period that starts after today has no usage yet: $0.00 would read as "nothing was spent"."""
    if period.start > today:
        raise InvalidInput(f"{period.label} is in the future, so there is no usage to show yet.",
                           hint=f"e.g. `/billing usage {today:%Y-%m}` for this month so far")
    return period


def parse_payment_filters(args: tuple[str, ...], today: date) -> PaymentQuery:
    if not args:
        return PaymentQuery(limit=PAGE_SIZE)
    words = [w.lower() for w in args]
    found = parse_period(words, 0, today)
    if found is None or found[1] != len(words):
        raise InvalidInput(f"I don't understand `{_short(' '.join(args))}` as a range of payments.",
                           hint="e.g. `/billing payments last 90 days`, `/billing payments 2026-10` or "
                                "`/billing payments from 2026-01-01 to 2026-03-31`")
    period = found[0]
    return PaymentQuery(paid_from=period.start, paid_to=period.end - timedelta(days=1), limit=PAGE_SIZE)


def parse_member(word: str) -> str:
    match = _MENTION.match(word)
    if not match:
        raise InvalidInput(f"`{_short(word)}` is not a member I can recognise.", hint="Mention them: @jane")
    return match.group(1) or match.group(2)


def parse_channel(word: str) -> str:
    match = _CHANNEL.match(word)
    if not match:
        raise InvalidInput(f"`{_short(word)}` is not a channel I can recognise.", hint="Mention it: #finance")
    return match.group(1) or match.group(2)


_SPACES = (" ", "\u00a0", "\u202f")


def parse_money(text: str, locale: str, *, field: str = "amount") -> Decimal:
    """An amount a person typed, read in their locale (`12,500.00` en-US, `12.500,00` de-DE and pt-BR).

    Strict: digits that would mean another amount in another locale (`12,500.00` for a German reader) are
    refused with an example in the reader's own format instead of being guessed.
    """
    example = f"e.g. {fmt.quantity(Decimal('1250.75'), locale=locale)} or 1250"
    typed = text.strip()
    group = get_group_symbol(locale)
    if group in _SPACES:  # people type a plain space where the locale groups with a narrow no-break one
        typed = "".join(group if c in _SPACES else c for c in typed)
    try:
        value = parse_decimal(typed, locale, strict=True)
        return parse_amount(value, field=field)
    except NumberFormatError:
        raise InvalidInput(f"`{_short(text.strip()) or 'nothing'}` is not an amount I can read.", hint=example,
                           field=field) from None
    except InvalidInput as error:
        raise InvalidInput(error.message, hint=example, field=field) from None
