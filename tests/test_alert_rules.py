"""Alert rules: pure rules, then evaluation against SQLite and PostgreSQL in the account's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from billing_core.alerts import rules
from billing_core.alerts.rules import Quiet, in_quiet_hours
from billing_core.alerts.service import Alerts
from billing_core.db.alert_models import Alert, AlertDelivery
from billing_core.db.engine import Database
from billing_core.db.ingest import ingest_usage, upsert_invoice, upsert_payment
from billing_core.db.models import Account, ChannelLink
from billing_core.periods import month_period
from billing_core.records import PaymentIn
from billing_core.results import (
    BudgetStatus,
    DailyCost,
    PaymentMethod,
    PaymentStatus,
    Projection,
    Trend,
)
from billing_core.service import Billing, BudgetSpec
from bot.deps import wall_clock
from bot.jobs.scheduler import RuleTuning, WorkerDeps, evaluate_alerts
from tests import factories as f

# --- pure rules -------------------------------------------------------------------------------------


def test_overdue_fires_the_day_after_due_then_at_each_reminder_only() -> None:
    due = date(2026, 11, 15)
    stages = {d: rules.overdue_stage(due, due + timedelta(days=d)) for d in range(20)}
    assert stages[0] is None  # due today is not overdue
    assert stages[1] == 0 and stages[3] == 0
    assert stages[4] == 3 and stages[8] == 7 and stages[15] == 14 and stages[19] == 14


def _budget(spent: str, thresholds: tuple[int, ...] = (50, 80, 100), amount: str = "1000") -> BudgetStatus:
    return BudgetStatus(id=1, account="acme", name="monthly", scope="all usage", amount=Decimal(amount),
                        currency="USD", period=month_period(date(2026, 11, 10)), spent=Decimal(spent),
                        projected=Decimal(spent), thresholds=thresholds, alert_channel=None)


def test_several_thresholds_crossed_at_once_post_only_the_most_severe() -> None:
    candidate = rules.budget_candidate(_budget("1050"))
    assert candidate is not None and candidate.threshold == "100"
    assert candidate.payload["skipped"] == [50, 80]


def test_a_lower_threshold_never_follows_a_higher_one() -> None:
    assert rules.budget_candidate(_budget("850"), fired=[100]) is None  # spend restated down after 100 %
    assert rules.budget_candidate(_budget("850"), fired=[80]) is None
    later = rules.budget_candidate(_budget("1000"), fired=[80])
    assert later is not None and later.threshold == "100"


def _projection(low: str, high: str, days: int = 10) -> Projection:
    return Projection(period=month_period(date(2026, 11, 10)), currency="USD", actual_to_date=Decimal(500),
                      projected_total=(Decimal(low) + Decimal(high)) / 2, low=Decimal(low), high=Decimal(high),
                      days_elapsed=days, next_period_estimate=Decimal(0), previous_period_total=Decimal(0),
                      change_pct=None, trend=Trend.STABLE, actual_daily=(), forecast_daily=())


def test_forecast_overrun_needs_the_low_bound_above_budget_and_enough_days() -> None:
    status = _budget("500")
    assert rules.forecast_overrun(status, _projection("990", "1200")) is None  # the middle is over, not the low
    assert rules.forecast_overrun(status, _projection("1010", "1200", days=5)) is None  # too early in the month
    fired = rules.forecast_overrun(status, _projection("1010", "1200"))
    assert fired is not None and fired.period == "2026-11-01"


def test_forecast_hysteresis_a_wobbling_forecast_is_neither_re_fired_nor_cleared() -> None:
    wobble = [("1010", "1200"), ("980", "1150"), ("1020", "1210"), ("960", "1100"), ("1005", "1190")]
    keys = {c.key for lo, hi in wobble if (c := rules.forecast_overrun(_budget("500"), _projection(lo, hi)))}
    assert len(keys) == 1  # one month, one key: stored once
    assert not any(rules.forecast_cleared(Decimal(1000), _projection(lo, hi)) for lo, hi in wobble)
    assert rules.forecast_cleared(Decimal(1000), _projection("800", "940"))


def _weeks(values_by_weekday: dict[int, str], days: int, start: date = date(2026, 9, 7)) -> list[DailyCost]:
    return [DailyCost(start + timedelta(days=i), Decimal(values_by_weekday.get((start + timedelta(days=i))
                                                                               .weekday(), "100")))
            for i in range(days)]


def test_anomaly_baseline_is_weekday_aware() -> None:
    history = _weeks({0: "300"}, 49)  # Mondays always cost 3×: a Monday at 300 is normal
    monday = date(2026, 9, 7) + timedelta(days=49)
    assert rules.anomaly_candidate([*history, DailyCost(monday, Decimal(300))], monday) is None
    tuesday = monday + timedelta(days=1)
    spiky = [*history, DailyCost(monday, Decimal(300)), DailyCost(tuesday, Decimal(300))]
    found = rules.anomaly_candidate(spiky, tuesday)
    assert found is not None and Decimal(found.payload["expected"]) == 100


def test_weekly_digest_is_due_from_monday_nine_local_for_the_rest_of_its_week() -> None:
    assert rules.digest_due(datetime(2026, 11, 23, 8, 59)) is None
    assert rules.digest_due(datetime(2026, 11, 23, 9, 0)) == date(2026, 11, 23)
    assert rules.digest_due(datetime(2026, 11, 24, 10, 0)) == date(2026, 11, 23)  # missed on Monday: catch up
    assert rules.digest_due(datetime(2026, 11, 29, 23, 59)) == date(2026, 11, 23)
    assert rules.digest_due(datetime(2026, 11, 30, 8, 59)) is None  # a new week, not due yet


def test_quiet_hours_hold_alerts_until_the_local_morning() -> None:
    quiet = Quiet("C1", 22, 7, "Europe/Berlin")
    late = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    assert in_quiet_hours(quiet, late) == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    assert in_quiet_hours(quiet, datetime(2026, 11, 23, 12, 0, tzinfo=UTC)) is None


# --- evaluation against the database -----------------------------------------------------------------


def _setup(db: Database, tz: str, name: str, channel: str) -> int:
    with db.unit_of_work() as s:
        acct = f.account(s, name, tz=tz)
        s.add(ChannelLink(workspace="T1", channel=channel, account_id=acct.id, linked_by="U1", linked_at=f.T0))
        upsert_invoice(s, f.invoice(acct, f"{name}-1", issue=date(2026, 11, 1), due=date(2026, 11, 15)), now=f.T0)
        return acct.id


def _alerts(db: Database, rule: str | None = None) -> list[Alert]:
    with db.unit_of_work() as s:
        stmt = select(Alert).order_by(Alert.id)
        return list(s.scalars(stmt.where(Alert.rule == rule) if rule else stmt))


def test_overdue_is_decided_in_the_accounts_time_zone_and_evaluation_is_idempotent(db: Database) -> None:
    _setup(db, "Pacific/Auckland", "kiwi", "C_NZ")
    _setup(db, "America/Los_Angeles", "west", "C_LA")
    alerts = Alerts(db)
    now = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)  # Auckland: the 16th already; Los Angeles: still the 15th
    first = alerts.evaluate(now)
    overdue = _alerts(db, "overdue")
    assert [a.channel for a in overdue] == ["C_NZ"]
    assert alerts.evaluate(now).created == 0 and first.created >= 1
    with db.unit_of_work() as s:
        assert s.scalar(select(func.count(AlertDelivery.id))) == len(_alerts(db))
    alerts.evaluate(datetime(2026, 11, 16, 8, 0, tzinfo=UTC))  # midnight in Los Angeles
    assert sorted(a.channel or "" for a in _alerts(db, "overdue")) == ["C_LA", "C_NZ"]


def test_a_month_day_by_day_fires_each_reminder_once_then_resolves_when_paid(db: Database) -> None:
    account_id = _setup(db, "Europe/Berlin", "acme", "C_FIN")
    alerts = Alerts(db)
    fired: dict[date, int] = {}
    for day in range(31):  # across the end of October's DST change and into December
        now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC) + timedelta(days=day)
        before = len(_alerts(db, "overdue"))
        alerts.evaluate(now)
        if len(_alerts(db, "overdue")) > before:
            fired[now.date()] = len(_alerts(db, "overdue")) - before
    assert list(fired) == [date(2026, 11, 16), date(2026, 11, 19), date(2026, 11, 23), date(2026, 11, 30)]
    assert set(fired.values()) == {1}
    with db.unit_of_work() as s:
        upsert_payment(s, PaymentIn(account_id, "test", "pay-1", Decimal("100.00"), "USD", PaymentStatus.CONFIRMED,
                                    PaymentMethod.CARD, datetime(2026, 12, 2, 10, tzinfo=UTC),
                                    invoice_number=_alerts(db, "overdue")[0].payload["number"]), now=f.T0)
    report = alerts.evaluate(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    assert report.resolved == 1
    assert all(a.status == "resolved" for a in _alerts(db, "overdue"))
    with db.unit_of_work() as s:
        replies = list(s.scalars(select(AlertDelivery).where(AlertDelivery.purpose == "resolved")))
    assert len(replies) == 1
    resolution = _alerts(db, "overdue")[-1].payload["resolution"]
    assert (resolution["kind"], resolution["on"]) == ("paid", "2026-12-02")
    assert alerts.evaluate(datetime(2026, 12, 3, 12, 0, tzinfo=UTC)).resolved == 0


def test_acknowledging_stops_the_reminders_for_that_invoice(db: Database) -> None:
    _setup(db, "UTC", "acme", "C_FIN")
    alerts = Alerts(db)
    alerts.evaluate(datetime(2026, 11, 16, 9, 0, tzinfo=UTC))
    first = _alerts(db, "overdue")[0]
    alerts.acknowledge(first.id, member="U_ADMIN", actor="slack:T1/U_ADMIN", now=datetime(2026, 11, 16, 10, tzinfo=UTC))
    for day in range(17, 31):
        alerts.evaluate(datetime(2026, 11, day, 9, 0, tzinfo=UTC))
    assert len(_alerts(db, "overdue")) == 1


def test_a_snooze_holds_that_rules_follow_ups_only_and_ends_when_it_says(db: Database) -> None:
    """100 a day against a 1000 budget: the 50 % alert is snoozed until the 10th. Its 80 % follow-up (the 9th)
    waits for the snooze to end, while the forecast overrun on the same budget is posted meanwhile."""
    account_id = _setup(db, "UTC", "acme", "C_FIN")
    with db.unit_of_work() as s:  # October at the same pace: the history the projection learns from
        acct = s.get(Account, account_id)
        assert acct is not None
        ingest_usage(s, [f.usage(acct, datetime(2026, 10, d, 10, tzinfo=UTC), "100", ext=f"oct{d}")
                         for d in range(1, 32)])
    Billing(db).set_budget(account_id, BudgetSpec("monthly", Decimal(1000)), actor="test", now=f.T0)
    alerts = Alerts(db)
    posted: list[tuple[int, str, str]] = []
    for day in range(2, 14):
        _usage_to(db, account_id, "100", day - 1, f"d{day}")
        seen = {a.id for a in _alerts(db)}
        alerts.evaluate(datetime(2026, 11, day, 9, tzinfo=UTC))
        posted += [(day, a.rule, a.threshold) for a in _alerts(db) if a.id not in seen and a.rule != "digest"]
        if day == 6:
            [half] = _alerts(db, "budget")
            alerts.snooze(half.id, until=datetime(2026, 11, 10, 9, tzinfo=UTC), actor="slack:T1/U_ADMIN",
                          now=datetime(2026, 11, 6, 10, tzinfo=UTC))
    budget = [(day, threshold) for day, rule, threshold in posted if rule == "budget"]
    assert budget == [(6, "50"), (10, "80"), (11, "100")]  # 80 % crossed on the 9th, held until the 10th
    [(forecast_day, _, _)] = [p for p in posted if p[1] == "forecast"]
    assert forecast_day < 10  # inside the snooze: a budget alert snoozed is not its forecast snoozed
    with db.unit_of_work() as s:  # and every one of them was queued for #finance
        queued = set(s.scalars(select(Alert.rule).join(AlertDelivery, AlertDelivery.alert_id == Alert.id)))
    assert {"budget", "forecast"} <= queued


def _usage_to(db: Database, account_id: int, cost: str, day: int, ext: str) -> None:
    with db.unit_of_work() as s:
        acct = s.get(Account, account_id)
        assert acct is not None
        ingest_usage(s, [f.usage(acct, datetime(2026, 11, day, 10, tzinfo=UTC), cost, ext=ext)])


def test_budget_thresholds_fire_once_per_period_most_severe_only(db: Database) -> None:
    account_id = _setup(db, "UTC", "acme", "C_FIN")
    Billing(db).set_budget(account_id, BudgetSpec("monthly", Decimal(1000), alert_channel="C_BUDGET"),
                           actor="test", now=f.T0)
    alerts = Alerts(db)
    _usage_to(db, account_id, "850", 3, "a")
    alerts.evaluate(datetime(2026, 11, 4, 9, tzinfo=UTC))
    alerts.evaluate(datetime(2026, 11, 5, 9, tzinfo=UTC))
    assert [(a.threshold, a.channel) for a in _alerts(db, "budget")] == [("80", "C_BUDGET")]
    _usage_to(db, account_id, "200", 6, "b")
    alerts.evaluate(datetime(2026, 11, 7, 9, tzinfo=UTC))
    alerts.evaluate(datetime(2026, 11, 8, 9, tzinfo=UTC))
    assert [a.threshold for a in _alerts(db, "budget")] == ["80", "100"]
    with db.unit_of_work() as s:  # December: a new period, so thresholds fire again
        acct = s.get(Account, account_id)
        assert acct is not None
        ingest_usage(s, [f.usage(acct, datetime(2026, 12, 2, 10, tzinfo=UTC), "600", ext="dec")])
    alerts.evaluate(datetime(2026, 12, 3, 9, tzinfo=UTC))
    assert [a.threshold for a in _alerts(db, "budget")] == ["80", "100", "50"]


def test_a_muted_rule_is_recorded_but_not_queued(db: Database) -> None:
    _setup(db, "UTC", "acme", "C_FIN")
    alerts = Alerts(db)
    alerts.mute("overdue", "C_FIN", actor="test", now=f.T0)
    alerts.evaluate(datetime(2026, 11, 16, 8, tzinfo=UTC))  # Monday before 09:00: no weekly digest yet
    assert [a.status for a in _alerts(db, "overdue")] == ["muted"]
    with db.unit_of_work() as s:
        assert s.scalar(select(func.count(AlertDelivery.id))) == 0


def test_routes_send_a_kind_to_its_channel(db: Database) -> None:
    account_id = _setup(db, "UTC", "acme", "C_FIN")
    alerts = Alerts(db)
    alerts.set_route(account_id, "overdue", "C_AR", actor="test", now=f.T0)
    alerts.evaluate(datetime(2026, 11, 16, 8, tzinfo=UTC))  # the day after due, before the digest
    assert [a.channel for a in _alerts(db, "overdue")] == ["C_AR"]
    status = alerts.status(account_id)
    assert status.default_channel == "C_FIN" and status.routes[0].channel == "C_AR" and status.pending == 1


def test_walking_a_month_with_freezegun_across_dst_and_a_month_end_in_two_zones(db: Database) -> None:
    """The worker's job at 04:30 UTC every day: in New York that is 00:30 before DST ends (1 Nov) and 23:30
    of the previous day after it, so the local day — and every alert — shifts by one against UTC."""
    ny = _setup(db, "America/New_York", "gotham", "C_NY")
    berlin = _setup(db, "Europe/Berlin", "spree", "C_BER")
    with db.unit_of_work() as s:
        for account_id, ext in ((ny, "ny"), (berlin, "ber")):
            acct = s.get(Account, account_id)
            assert acct is not None
            upsert_invoice(s, f.invoice(acct, f"{ext}-oct", issue=date(2026, 10, 17), due=date(2026, 10, 31)),
                           now=f.T0)
    # 600 of a 1000 budget late in October, and again on 2 November: each reported once it happened.
    usage = [(datetime(2026, 10, 30, 12, tzinfo=UTC), "u1"), (datetime(2026, 11, 2, 12, tzinfo=UTC), "u2")]
    for account_id in (ny, berlin):
        Billing(db).set_budget(account_id, BudgetSpec("monthly", Decimal(1000)), actor="test", now=f.T0)
    deps = WorkerDeps.build(db, token="xoxb-test", api_url="http://127.0.0.1:9/", clock=wall_clock)
    fired: dict[tuple[str, str], list[date]] = {}
    for day in range(28):
        moment = datetime(2026, 10, 25, 4, 30, tzinfo=UTC) + timedelta(days=day)
        before = {a.id for a in _alerts(db)}
        for start, ext in [u for u in usage if u[0] <= moment]:
            usage.remove((start, ext))
            with db.unit_of_work() as s:
                ingest_usage(s, [f.usage(acct, start, "600", ext=f"{acct.id}-{ext}")
                                 for acct in (s.get(Account, ny), s.get(Account, berlin)) if acct is not None])
        with freeze_time(moment):
            evaluate_alerts(deps)
            evaluate_alerts(deps)  # a second run (or a second worker) at the same moment adds nothing
        for alert in _alerts(db):
            if alert.id not in before and alert.rule in ("overdue", "budget"):
                fired.setdefault((alert.channel or "", alert.rule), []).append(moment.date())
    # New York: local 1 Nov is still 1 Nov at 04:30 UTC (EDT), but local 4, 8 and 15 Nov come a UTC day later.
    assert fired[("C_NY", "overdue")][:4] == [date(2026, 11, 1), date(2026, 11, 5), date(2026, 11, 9),
                                               date(2026, 11, 16)]
    assert fired[("C_BER", "overdue")][:4] == [date(2026, 11, 1), date(2026, 11, 4), date(2026, 11, 8),
                                                date(2026, 11, 15)]
    # Budgets: 50 % in October; then the local month ends and November's 50 % fires once, on its own key.
    assert fired[("C_NY", "budget")] == fired[("C_BER", "budget")] == [date(2026, 10, 31), date(2026, 11, 3)]
    with db.unit_of_work() as s:
        periods = s.scalars(select(Alert.period).where(Alert.rule == "budget").order_by(Alert.id))
        assert sorted(set(periods)) == ["2026-10-01", "2026-11-01"]


def test_the_set_based_budget_sweep_agrees_with_the_billing_service_for_every_scope(db: Database) -> None:
    account_id = _setup(db, "Asia/Tokyo", "acme", "C_FIN")
    with db.unit_of_work() as s:
        acct = s.get(Account, account_id)
        assert acct is not None
        prov = f.provider(s)
        dep = f.deployment(s, acct, "api-prod", prov)
        start = datetime(2026, 11, 3, 10, tzinfo=UTC)
        ingest_usage(s, [
            f.usage(acct, start, "12.5", deployment_id=dep.id, provider_id=prov.id, dims={"model": "gpt-4o"}),
            f.usage(acct, start, "7.25", meter="gpu", ext="g", dims={"model": "llama"}),
            f.usage(acct, datetime(2026, 10, 31, 16, tzinfo=UTC), "100", ext="tokyo-nov-1"),  # 1 Nov in Tokyo
        ])
    billing = Billing(db)
    specs = [BudgetSpec("all", Decimal(100)), BudgetSpec("gpu", Decimal(10), "resource", "gpu"),
             BudgetSpec("dep", Decimal(10), "deployment", "api-prod"), BudgetSpec("prov", Decimal(10), "provider",
                                                                                 "Helios"),
             BudgetSpec("model", Decimal(10), "dimension", "gpt-4o", "model"),
             BudgetSpec("year", Decimal(1000), period="year")]
    for spec in specs:
        billing.set_budget(account_id, spec, actor="test", now=f.T0)
    now = datetime(2026, 11, 20, 9, tzinfo=UTC)
    swept = {b.name: b.spent for b in Alerts(db).budget_sweep(now)[account_id]}
    expected = {b.name: b.spent for b in billing.budgets(account_id, now=now)}
    assert swept == expected
    assert swept["all"] == Decimal("119.75") and swept["gpu"] == Decimal("7.25") and swept["model"] == Decimal("12.5")


def test_a_month_of_daily_usage_fires_forecast_anomaly_and_digest_once_each_in_two_zones(db: Database) -> None:
    """The worker's job at 04:30 and 10:30 UTC for four weeks, usage arriving as it happens (100 a day, 500 on
    11 November): each digest, anomaly and forecast fires once, on the account's local calendar."""
    zones = {"C_NY": "America/New_York", "C_BER": "Europe/Berlin"}
    ids = {channel: _setup(db, tz, tz.split("/")[1].lower(), channel) for channel, tz in zones.items()}
    for account_id in ids.values():
        Billing(db).set_budget(account_id, BudgetSpec("monthly", Decimal(2000)), actor="test", now=f.T0)
    days = [date(2026, 9, 20) + timedelta(days=i) for i in range(60)]
    pending = [(datetime(d.year, d.month, d.day, 12, tzinfo=UTC), "500" if d == date(2026, 11, 11) else "100")
               for d in days]
    deps = WorkerDeps.build(db, token="xoxb-test", api_url="http://127.0.0.1:9/", clock=wall_clock)
    fired: dict[tuple[str, str], list[datetime]] = {}
    for moment in [datetime(2026, 10, 25, h, 30, tzinfo=UTC) + timedelta(days=d) for d in range(28) for h in (4, 10)]:
        due = [u for u in pending if u[0] <= moment]
        pending = [u for u in pending if u[0] > moment]
        with db.unit_of_work() as s:
            accounts = [a for a in (s.get(Account, i) for i in ids.values()) if a is not None]
            ingest_usage(s, [f.usage(a, start, cost, ext=f"{a.id}-{start:%F}")
                             for a in accounts for start, cost in due])
        before = {a.id for a in _alerts(db)}
        with freeze_time(moment):
            evaluate_alerts(deps)
            evaluate_alerts(deps)
        for alert in _alerts(db):
            if alert.id not in before:
                fired.setdefault((alert.channel or "", alert.rule), []).append(moment)
    at = lambda d, h: datetime(2026, *d, h, 30, tzinfo=UTC)  # noqa: E731
    # The first run (Sunday 25 October) posts the week of 19 October's digest, missed before the walk began.
    assert fired[("C_BER", "digest")] == [at((10, 25), 4), at((10, 26), 10), at((11, 2), 10), at((11, 9), 10),
                                          at((11, 16), 10)]
    # New York: 10:30 UTC is before 09:00 local on every Monday, so each week's digest is caught up at the next
    # run, 04:30 UTC Tuesday: Tuesday 00:30 local in October, Monday 23:30 once the clocks went back.
    assert fired[("C_NY", "digest")] == [at((10, 25), 4), at((10, 27), 4), at((11, 3), 4), at((11, 10), 4),
                                         at((11, 17), 4)]
    assert fired[("C_BER", "anomaly")] == [at((11, 12), 4)] and fired[("C_NY", "anomaly")] == [at((11, 12), 10)]
    for channel in zones:
        forecasts = fired[(channel, "forecast")]
        # October is already heading over; November only once 7 local days are in (the 7th), then never again.
        assert len(forecasts) == 2 and forecasts[0] == at((10, 25), 4) and at((11, 7), 4) <= forecasts[1] <= at(
            (11, 8), 10)
    with db.unit_of_work() as s:
        drivers = s.scalars(select(Alert.payload).where(Alert.rule == "anomaly")).first()
        assert drivers is not None and drivers["drivers"][0]["name"] == "resource cpu"


def test_a_worker_down_all_monday_posts_that_weeks_digest_once_later_in_the_week(db: Database) -> None:
    _setup(db, "Europe/Berlin", "acme", "C_FIN")
    deps = WorkerDeps.build(db, token="xoxb-test", api_url="http://127.0.0.1:9/", clock=wall_clock)
    posted: dict[datetime, list[str]] = {}
    # Back on Tuesday 24 November at 08:00 UTC (09:00 in Berlin), then every few hours until Monday 30 at 07:00.
    for moment in [datetime(2026, 11, 24, 8, tzinfo=UTC) + timedelta(hours=h) for h in range(0, 144, 5)]:
        before = {a.id for a in _alerts(db, "digest")}
        with freeze_time(moment):
            evaluate_alerts(deps)
        posted[moment] = [a.period for a in _alerts(db, "digest") if a.id not in before]
    assert {m: p for m, p in posted.items() if p} == {datetime(2026, 11, 24, 8, tzinfo=UTC): ["2026-11-23"]}
    with freeze_time(datetime(2026, 11, 30, 8, tzinfo=UTC)):  # Monday 09:00 in Berlin: the next week's, on time
        evaluate_alerts(deps)
    assert [a.period for a in _alerts(db, "digest")] == ["2026-11-23", "2026-11-30"]


def test_reminder_days_are_configurable_for_the_worker(db: Database) -> None:
    assert RuleTuning.from_env({}) == RuleTuning((3, 7, 14), 7)
    assert RuleTuning.from_env({"ALERT_OVERDUE_REMINDERS": "10, 2", "ALERT_FORECAST_MIN_DAYS": "5"}) == \
        RuleTuning((2, 10), 5)
    with pytest.raises(SystemExit, match="ALERT_OVERDUE_REMINDERS"):
        RuleTuning.from_env({"ALERT_OVERDUE_REMINDERS": "soon"})
    _setup(db, "UTC", "acme", "C_FIN")
    deps = WorkerDeps.build(db, token="xoxb-test", api_url="http://127.0.0.1:9/", clock=wall_clock,
                            tuning=RuleTuning((2,), 7))
    for day in range(16, 25):
        with freeze_time(datetime(2026, 11, day, 9, tzinfo=UTC)):
            evaluate_alerts(deps)
    assert [a.threshold for a in _alerts(db, "overdue")] == ["0", "2"]
