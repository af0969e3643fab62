"""Ledger questions as the bot asks them, through the service, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from freezegun import freeze_time

from billing_core.db.engine import Database
from billing_core.db.ingest import ingest_usage, upsert_invoice, upsert_payment
from billing_core.db.models import Plan, PlanMeter
from billing_core.errors import InvalidInput, NotFound
from billing_core.periods import Granularity, custom_period, month_period
from billing_core.records import PaymentIn
from billing_core.results import InvoiceQuery, InvoiceStatus, PaymentMethod, PaymentQuery, PaymentStatus
from billing_core.service import Billing, BudgetSpec
from tests import factories as f


def _invoices(db: Database, n: int, tz: str = "UTC") -> None:
    with db.unit_of_work() as s:
        acct = f.account(s, tz=tz)
        for i in range(n):
            issue = date(2026, 1, 1) + timedelta(days=i // 3)  # three invoices per issue date: ties need the id
            upsert_invoice(s, f.invoice(acct, f"e{i}", issue=issue, due=issue + timedelta(days=14)), now=f.T0)


@pytest.mark.parametrize(
    ("utc_now", "overdue"),
    [
        ("2026-11-16 04:59", False),  # 23:59 on Nov 15 in New York: due today, not overdue yet
        ("2026-11-16 05:01", True),  # 00:01 on Nov 16 in New York
    ],
)
def test_overdue_is_judged_in_the_accounts_time_zone(db: Database, utc_now: str, overdue: bool) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s, tz="America/New_York")
        upsert_invoice(s, f.invoice(acct, "x", due=date(2026, 11, 15)), now=f.T0)
    billing = Billing(db)
    with freeze_time(utc_now):  # the entry point reads the clock; the service takes `now`
        now = datetime.now(UTC)
        page = billing.invoices("acme", InvoiceQuery(statuses=(InvoiceStatus.OVERDUE,)), now=now)
        balance = billing.balance("acme", now=now)
    assert page.total_matching == (1 if overdue else 0)
    assert balance.overdue == (Decimal("100.00") if overdue else 0)
    assert balance.outstanding == Decimal("100.00")


def test_keyset_pagination_walks_every_invoice_once_in_a_stable_order_both_ways(db: Database) -> None:
    _invoices(db, 23)
    billing = Billing(db)
    seen, pages, cursor = [], [], None
    while True:
        page = billing.invoices("acme", InvoiceQuery(limit=5, cursor=cursor), now=f.T0)
        pages.append(page)
        seen += [i.number for i in page.items]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 23
    issue_order = [(i.issue_date, i.id) for p in pages for i in p.items]
    assert issue_order == sorted(issue_order, reverse=True)
    assert pages[0].prev_cursor is None and pages[-1].next_cursor is None
    back = billing.invoices("acme", InvoiceQuery(limit=5, cursor=pages[-1].prev_cursor), now=f.T0)
    assert [i.number for i in back.items] == [i.number for i in pages[-2].items]
    assert pages[0].totals == Decimal("2300.00") and pages[0].total_matching == 23
    jump = billing.invoices("acme", InvoiceQuery(limit=5, page=3), now=f.T0)
    assert jump.items == pages[2].items and jump.prev_cursor and jump.next_cursor
    with pytest.raises(InvalidInput, match="Page 6 does not exist: these invoices fill 5 page"):
        billing.invoices("acme", InvoiceQuery(limit=5, page=6), now=f.T0)


def test_search_is_partial_and_case_insensitive_and_filters_combine(db: Database) -> None:
    _invoices(db, 12)
    billing = Billing(db)
    page = billing.invoices("acme", InvoiceQuery(search="inv-001"), now=f.T0)
    assert sorted(i.number for i in page.items) == ["INV-0010", "INV-0011", "INV-0012"]
    page = billing.invoices("acme", InvoiceQuery(search="%"), now=f.T0)  # LIKE wildcards are literal
    assert page.total_matching == 0
    page = billing.invoices("acme", InvoiceQuery(issued_from=date(2026, 1, 2), issued_to=date(2026, 1, 3)), now=f.T0)
    assert page.total_matching == 6


def test_the_list_s_amount_due_counts_only_issued_unpaid_invoices_like_the_balance(db: Database) -> None:
    """A draft is not billed yet and a cancelled invoice never will be: neither is "due" in the list's footer."""
    with db.unit_of_work() as s:
        acct = f.account(s)
        invoices = {"open": (InvoiceStatus.PENDING, "100.00"), "void": (InvoiceStatus.CANCELLED, "50.00"),
                    "draft": (InvoiceStatus.DRAFT, "30.00")}
        for ext, (status, amount) in invoices.items():
            upsert_invoice(s, f.invoice(acct, ext, status=status, total_lines=(amount,)), now=f.T0)
    billing = Billing(db)
    page = billing.invoices("acme", InvoiceQuery(), now=f.T0)
    assert (page.total_matching, page.totals) == (3, Decimal("180.00"))
    assert page.due == billing.balance("acme", now=f.T0).outstanding == Decimal("100.00")


def test_payments_come_latest_first_by_when_they_were_paid_across_pages(db: Database) -> None:
    """Back-filled history arrives out of order: the list follows the payment dates, not the import order."""
    paid = [datetime(2026, 9, 5, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 10, 5, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 10, 5, tzinfo=UTC)]
    with db.unit_of_work() as s:
        acct = f.account(s)
        for i, when in enumerate(paid):
            upsert_payment(s, PaymentIn(account_id=acct.id, source="test", external_id=f"p{i}", amount=Decimal(i + 1),
                                        currency="USD", status=PaymentStatus.CONFIRMED, method=PaymentMethod.CARD,
                                        paid_at=when), now=f.T0)
    billing = Billing(db)
    seen, cursor = [], None
    while True:
        page = billing.payments("acme", PaymentQuery(limit=2, cursor=cursor))
        seen += [(p.paid_at, p.amount) for p in page.items]
        if not (cursor := page.next_cursor):
            break
    assert [when for when, _ in seen] == sorted(paid, reverse=True)
    assert sorted(amount for _, amount in seen) == [1, 2, 3, 4, 5]  # each once, the tie (Oct 5) included


def test_bad_page_size_and_forged_cursor_are_friendly_errors(db: Database) -> None:
    _invoices(db, 2)
    billing = Billing(db)
    with pytest.raises(InvalidInput, match="between 1 and 100"):
        billing.invoices("acme", InvoiceQuery(limit=101), now=f.T0)
    with pytest.raises(InvalidInput, match="no longer valid"):
        billing.invoices("acme", InvoiceQuery(cursor="not-a-cursor"), now=f.T0)
    with pytest.raises(NotFound, match="INV-9999"):
        billing.invoice("acme", "INV-9999", now=f.T0)


def test_invoice_detail_has_lines_and_payments(db: Database) -> None:
    _invoices(db, 1)
    detail = Billing(db).invoice("acme", "inv-0001", now=f.T0)
    assert detail.summary.number == "INV-0001"
    assert [li.total for li in detail.lines] == [Decimal("100.00")]
    assert detail.summary.status is InvoiceStatus.OVERDUE  # due 2026-01-15, it is November


def _usage_account(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s, tz="Europe/Berlin")
        p1, p2 = f.provider(s, "Helios"), f.provider(s, "Nimbus")
        api, ml = f.deployment(s, acct, "api", p1), f.deployment(s, acct, "ml", p2)
        plan = Plan(name="Team", currency="USD", meters=[
            PlanMeter(meter="gpu", unit="GPU-h", included_quantity=Decimal(10), overage_unit_price=Decimal("2.5"))])
        s.add(plan)
        s.flush()
        acct.plan_id = plan.id
        start = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 00:00 Nov 1 in Berlin
        rows = []
        for h in range(24 * 3):
            t = start + timedelta(hours=h)
            rows.append(f.usage(acct, t, "1.5", meter="cpu", deployment_id=api.id, provider_id=p1.id))
            rows.append(f.usage(acct, t, "2", meter="gpu", qty="0.25", deployment_id=ml.id, provider_id=p2.id,
                                dims={"model": "gpt-4o" if h % 2 else "llama"}))
        rows.append(f.usage(acct, start - timedelta(hours=1), "999", meter="cpu", deployment_id=api.id))  # Oct 31
        ingest_usage(s, rows)


def test_usage_summary_groups_buckets_and_respects_the_local_month(db: Database) -> None:
    _usage_account(db)
    billing = Billing(db)
    nov = month_period(date(2026, 11, 5))
    by_provider = billing.usage("acme", nov, group_by="provider", granularity=Granularity.DAY)
    assert by_provider.total_cost == Decimal(72 * 3.5)  # the 999 of Oct 31 (local) stays out
    assert [(r.key, r.cost) for r in by_provider.rows] == [("Nimbus", Decimal(144)), ("Helios", Decimal(108))]
    assert len(by_provider.buckets) == 30
    assert sum(p.cost for p in by_provider.series) == by_provider.total_cost
    weekly = billing.usage("acme", nov, group_by="deployment", granularity=Granularity.WEEK)
    assert weekly.buckets[0] == date(2026, 10, 26)  # weeks start on Monday
    by_model = billing.usage("acme", nov, group_by="model", granularity=Granularity.HOUR)
    assert by_model.granularity is Granularity.DAY  # dimensions roll up per day
    assert {r.key: r.cost for r in by_model.rows} == {"gpt-4o": Decimal(72), "llama": Decimal(72),
                                                       "(no model)": Decimal(108)}
    hourly = billing.usage("acme", custom_period(date(2026, 11, 1), date(2026, 11, 1)), group_by="resource",
                           granularity=Granularity.HOUR)
    assert len(hourly.buckets) == 24 and hourly.total_cost == Decimal(84)


def test_plan_usage_reports_overage_at_the_plan_price(db: Database) -> None:
    _usage_account(db)
    summary = Billing(db).usage("acme", month_period(date(2026, 11, 5)), group_by="resource")
    (gpu,) = summary.plan
    assert (gpu.used, gpu.included, gpu.overage_quantity, gpu.overage_cost) == (
        Decimal(18), Decimal(10), Decimal(8), Decimal(20))
    # Included quantities are per calendar month: three days, or a range across months, get no verdict.
    assert Billing(db).usage("acme", custom_period(date(2026, 11, 1), date(2026, 11, 3))).plan == ()
    assert Billing(db).usage("acme", custom_period(date(2026, 10, 15), date(2026, 11, 14))).plan == ()


def test_budgets_scoped_by_resource_and_dimension_and_audited(db: Database) -> None:
    _usage_account(db)
    billing = Billing(db)
    now = datetime(2026, 11, 4, 12, tzinfo=UTC)
    billing.set_budget("acme", BudgetSpec("gpu", Decimal(100), "resource", "gpu"), actor="U1", now=now)
    billing.set_budget("acme", BudgetSpec("gpt", Decimal(50), "dimension", "gpt-4o", "model", thresholds=(50, 100)),
                       actor="U1", now=now)
    statuses = {b.name: b for b in billing.budgets("acme", now=now)}
    assert statuses["gpu"].spent == Decimal(144) and statuses["gpu"].crossed == (50, 80, 100)
    assert statuses["gpt"].spent == Decimal(72) and statuses["gpt"].used_pct == Decimal(144)
    with pytest.raises(InvalidInput, match="more than zero"):
        billing.set_budget("acme", BudgetSpec("bad", Decimal(0)), actor="U1", now=now)
    billing.delete_budget("acme", "gpt", actor="U2", now=now)
    from sqlalchemy import select

    from billing_core.db.models import AuditEntry

    with db.unit_of_work() as s:
        actions = [(a.actor, a.action) for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == [("U1", "budget.set"), ("U1", "budget.set"), ("U2", "budget.delete")]


def test_overview_puts_it_together(db: Database) -> None:
    _usage_account(db)
    with db.unit_of_work() as s:
        from billing_core.db.queries import get_account

        upsert_invoice(s, f.invoice(get_account(s, "acme"), "o1", due=date(2026, 11, 2)), now=f.T0)
    overview = Billing(db).overview("acme", now=datetime(2026, 11, 3, 23, 30, tzinfo=UTC))
    assert overview.month.label == "November 2026"
    assert overview.cost_to_date == Decimal(72 * 3.5)
    assert overview.balance.overdue_count == 1 and overview.oldest_unpaid is not None
    assert len(overview.trend) == 30 and overview.trend[-1].day == date(2026, 11, 4)  # already Nov 4 in Berlin
    assert overview.projection.projected_total >= overview.cost_to_date
