"""Alerts with the app installed in many workspaces (OAuth): each alert is posted by the bot of the workspace that
may see its account and has its channel, with that workspace's own token; none is posted where nobody may see it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select

from billing_core.alerts.service import Alerts
from billing_core.db.alert_models import AlertDelivery
from billing_core.db.engine import Database
from billing_core.db.ingest import upsert_invoice
from billing_core.db.models import Account
from billing_core.tenancy import Tenancy
from bot.jobs.scheduler import WorkerDeps
from bot.jobs.workspaces import installation_store
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.fake_state import BOT_USER_ID, TEAM_ID, Channel
from tests import factories as f

EVALUATED = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # a Monday before 09:00 Berlin: overdue alerts only
OTHER = "T_OTHER"  # the second workspace; TEAM_ID is the fake's own
TOKENS = {TEAM_ID: "xoxb-home", OTHER: "xoxb-other"}
HOME_FINANCE, OTHER_FINANCE = "C_FINANCE", "C_OTHER_FINANCE"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.install(OTHER, TOKENS[OTHER])
        # Its own #finance: the same name as the home workspace's, another id, invisible to the home bot.
        server.add_channel(Channel(OTHER_FINANCE, "finance", members=[BOT_USER_ID], team=OTHER))
        yield server


def installed(db: Database, *teams: str, tokens: dict[str, str] = TOKENS) -> None:
    store = installation_store("111.222", db.engine)
    for team in teams:
        store.save(Installation(app_id="A_BILLING", enterprise_id=None, team_id=team, bot_token=tokens[team],
                                bot_id=f"B_{team}", bot_user_id=BOT_USER_ID, user_id="U_ADMIN"))


def overdue_account(db: Database, name: str, *, seen_by: tuple[str, ...], channel: str) -> int:
    """An account with one overdue invoice, visible to `seen_by`, its alerts routed to `channel`."""
    with db.unit_of_work() as s:
        acct = f.account(s, name, tz="Europe/Berlin")
        upsert_invoice(s, f.invoice(acct, f"{name}-1", issue=date(2026, 11, 1), due=date(2026, 11, 10)), now=f.T0)
        account_id = acct.id
    for workspace in seen_by:
        Tenancy(db).allow_account(workspace, name, default=True, actor="test", now=f.T0)
    Alerts(db).set_route(account_id, "*", channel, actor="test", now=f.T0)
    return account_id


def worker(db: Database, fake: FakeSlack) -> WorkerDeps:
    return WorkerDeps.build(db, token=None, api_url=fake.url, clock=lambda: EVALUATED,
                            installations=installation_store("111.222", db.engine))


def tokens_of_posts(fake: FakeSlack) -> dict[str, str]:
    return {str(c.body["channel"]): c.headers["authorization"].removeprefix("Bearer ")
            for c in fake.calls("chat.postMessage") if c.status == 200}


def test_each_workspace_gets_its_accounts_alerts_from_its_own_bot(db: Database, fake: FakeSlack) -> None:
    installed(db, TEAM_ID, OTHER)
    overdue_account(db, "acme", seen_by=(TEAM_ID,), channel=HOME_FINANCE)
    overdue_account(db, "nordlicht", seen_by=(OTHER,), channel=OTHER_FINANCE)
    deps = worker(db, fake)
    deps.alerts.evaluate(EVALUATED)
    assert deps.deliverer.drain(timeout_s=10).sent == 2
    assert tokens_of_posts(fake) == {HOME_FINANCE: TOKENS[TEAM_ID], OTHER_FINANCE: TOKENS[OTHER]}
    [home] = fake.messages(HOME_FINANCE)
    [other] = fake.messages(OTHER_FINANCE)
    assert "acme" in home.text and "nordlicht" in other.text
    assert not fake.calls("conversations.info"), "one workspace may see each account: nothing to look up"


def test_an_account_two_workspaces_see_is_posted_by_the_one_whose_channel_it_is(db: Database,
                                                                                  fake: FakeSlack) -> None:
    installed(db, TEAM_ID, OTHER)
    overdue_account(db, "shared", seen_by=(TEAM_ID, OTHER), channel=OTHER_FINANCE)
    deps = worker(db, fake)
    deps.alerts.evaluate(EVALUATED)
    assert deps.deliverer.drain(timeout_s=10).sent == 1
    assert tokens_of_posts(fake) == {OTHER_FINANCE: TOKENS[OTHER]}
    looked = [(c.headers["authorization"].removeprefix("Bearer "), c.error) for c in fake.calls("conversations.info")]
    assert looked == [(TOKENS[TEAM_ID], "channel_not_found"), (TOKENS[OTHER], None)]
    assert fake.messages(HOME_FINANCE) == []


def test_an_account_no_installed_workspace_may_see_is_dead_lettered_with_how_to_fix_it(db: Database,
                                                                                      fake: FakeSlack) -> None:
    installed(db, TEAM_ID)  # the other workspace has not installed the app (or uninstalled it)
    overdue_account(db, "nordlicht", seen_by=(OTHER,), channel=OTHER_FINANCE)
    deps = worker(db, fake)
    deps.alerts.evaluate(EVALUATED)
    tally = deps.deliverer.drain(timeout_s=5)
    assert (tally.sent, tally.dead) == (0, 1)
    assert fake.calls("chat.postMessage") == [], "never posted with a workspace that may not see the account"
    with db.unit_of_work() as s:
        [delivery] = s.scalars(select(AlertDelivery))
        assert delivery.state == "dead" and "install it from /slack/install" in (delivery.last_error or "")


def test_a_reinstalled_workspace_posts_with_its_new_token_from_the_next_alert_on(db: Database,
                                                                                fake: FakeSlack) -> None:
    installed(db, OTHER)
    account_id = overdue_account(db, "nordlicht", seen_by=(OTHER,), channel=OTHER_FINANCE)
    deps = worker(db, fake)
    deps.alerts.evaluate(EVALUATED)
    assert deps.deliverer.drain(timeout_s=10).sent == 1
    fake.install(OTHER, "xoxb-other-reinstalled")  # the OAuth flow stores the new installation over the old one
    installed(db, OTHER, tokens={OTHER: "xoxb-other-reinstalled"})
    with db.unit_of_work() as s:
        acct = s.get(Account, account_id)
        assert acct is not None
        upsert_invoice(s, f.invoice(acct, "nordlicht-2", issue=date(2026, 11, 2), due=date(2026, 11, 11)), now=f.T0)
    deps.alerts.evaluate(EVALUATED)
    assert deps.deliverer.drain(timeout_s=10).sent == 1
    posts = [c.headers["authorization"] for c in fake.calls("chat.postMessage") if c.status == 200]
    assert posts == ["Bearer xoxb-other", "Bearer xoxb-other-reinstalled"]


def test_a_workspace_whose_token_no_longer_works_is_passed_over_not_fatal(db: Database, fake: FakeSlack) -> None:
    """An uninstall leaves its installation row behind; that workspace's `token_revoked` must not dead-letter an
    alert the other workspace can post."""
    installed(db, TEAM_ID, OTHER)
    overdue_account(db, "shared", seen_by=(TEAM_ID, OTHER), channel=OTHER_FINANCE)
    deps = worker(db, fake)
    deps.alerts.evaluate(EVALUATED)
    fake.fail_next("conversations.info", error="token_revoked")  # the home workspace's bot is asked first
    assert deps.deliverer.drain(timeout_s=10).sent == 1
    assert tokens_of_posts(fake) == {OTHER_FINANCE: TOKENS[OTHER]}
