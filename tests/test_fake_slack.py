"""The fake Slack, driven by the real slack_sdk WebClient, WebhookClient and a real Bolt app."""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.sandbox import signing
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.fake_state import Channel, User

SECRET = "test-signing-secret"
TS = re.compile(r"^\d{10}\.\d{6}$")

for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_var, None)  # slack_sdk would send 127.0.0.1 traffic through a proxy


class Clock:
    """A hand-moved clock so trigger and response_url expiry need no sleeping."""

    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeSlack]:
    with FakeSlack(clock=clock) as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(base_url=fake.url, token="xoxb-test", retry_handlers=[])


def error_of(call: Any, *args: Any, **kwargs: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call(*args, **kwargs)
    return info.value


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def modal(title: str = "Budget", blocks: int = 1) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": title}, "callback_id": "budget",
            "blocks": [section(f"line {i}") for i in range(blocks)]}


# --- transport and auth ---------------------------------------------------------------------------------------


def test_auth_test_answers_with_the_bot_identity_and_scopes_header(client: WebClient) -> None:
    response = client.auth_test()
    assert (response["team_id"], response["user_id"], response["bot_id"]) == ("T0001", "U_BOT", "B_BOT")
    assert "files:write" in response.headers["x-oauth-scopes"].split(",")


def test_web_api_needs_a_bot_or_user_token(fake: FakeSlack) -> None:
    assert error_of(WebClient(base_url=fake.url).auth_test).response["error"] == "not_authed"
    bad = WebClient(base_url=fake.url, token="nonsense")
    assert error_of(bad.chat_postMessage, channel="C_FINANCE", text="x").response["error"] == "invalid_auth"
    assert fake.messages("C_FINANCE") == []


def test_unknown_method(client: WebClient) -> None:
    assert error_of(client.api_call, "chat.postMesage").response["error"] == "unknown_method"


def test_form_and_json_bodies_are_both_understood(client: WebClient, fake: FakeSlack) -> None:
    client.api_call("chat.postMessage", data={"channel": "C_FINANCE", "text": "form",
                                              "blocks": json.dumps([section("as a string")])})
    client.api_call("chat.postMessage", json={"channel": "C_FINANCE", "text": "json", "blocks": [section("obj")]})
    texts = [(m.text, m.blocks) for m in fake.messages("C_FINANCE")]
    assert texts == [("form", [section("as a string")]), ("json", [section("obj")])]


# --- messages, threads, history -------------------------------------------------------------------------------


def test_post_message_returns_unique_increasing_ts_and_threads_replies(client: WebClient, fake: FakeSlack) -> None:
    first = client.chat_postMessage(channel="C_FINANCE", text="alert")
    second = client.chat_postMessage(channel="C_FINANCE", text="next")  # the fake clock stands still
    reply = client.chat_postMessage(channel="C_FINANCE", text="detail", thread_ts=first["ts"])
    assert all(TS.match(r["ts"]) for r in (first, second, reply))
    assert float(first["ts"]) < float(second["ts"]) < float(reply["ts"])
    assert first["message"]["bot_id"] == "B_BOT" and first["channel"] == "C_FINANCE"
    top = fake.messages("C_FINANCE")
    assert [m.text for m in top] == ["alert", "next"]
    assert [r.text for r in top[0].replies] == ["detail"] and top[1].replies == []
    assert [r.text for r in fake.replies("C_FINANCE", first["ts"])] == ["detail"]


def test_history_filters_by_oldest_and_limit_and_returns_metadata(client: WebClient) -> None:
    metadata = {"event_type": "billing_alert", "event_payload": {"rule": "mtd>100%"}}
    old = client.chat_postMessage(channel="C_ENG", text="old")
    client.chat_postMessage(channel="C_ENG", text="alert", metadata=metadata)
    client.chat_postMessage(channel="C_ENG", text="newest")
    page = client.conversations_history(channel="C_ENG", oldest=old["ts"], limit=1, include_all_metadata=True)
    assert [m["text"] for m in page["messages"]] == ["newest"] and page["has_more"] is True
    rest = client.conversations_history(channel="C_ENG", oldest=old["ts"], include_all_metadata=True,
                                        cursor=page["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["alert"]
    assert rest["messages"][0]["metadata"] == metadata
    plain = client.conversations_history(channel="C_ENG")
    assert "metadata" not in plain["messages"][1]  # only with include_all_metadata, as in Slack


def test_conversations_replies_lists_parent_then_replies(client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C_FINANCE", text="parent")
    client.chat_postMessage(channel="C_FINANCE", text="r1", thread_ts=parent["ts"])
    thread = client.conversations_replies(channel="C_FINANCE", ts=parent["ts"])
    assert [m["text"] for m in thread["messages"]] == ["parent", "r1"]
    assert thread["messages"][0]["reply_count"] == 1
    assert error_of(client.conversations_replies, channel="C_FINANCE", ts="1.000001").response["error"] == (
        "thread_not_found")


def test_channel_errors_and_joining(client: WebClient, fake: FakeSlack) -> None:
    assert error_of(client.chat_postMessage, channel="C_NOPE", text="x").response["error"] == "channel_not_found"
    assert error_of(client.chat_postMessage, channel="C_NOTIN", text="x").response["error"] == "not_in_channel"
    assert client.conversations_info(channel="C_NOTIN")["channel"]["is_member"] is False
    assert client.conversations_join(channel="C_NOTIN")["channel"]["is_member"] is True
    assert client.conversations_join(channel="C_NOTIN")["warning"] == "already_in_channel"
    client.chat_postMessage(channel="C_NOTIN", text="now it works")
    assert [m.text for m in fake.messages("C_NOTIN")] == ["now it works"]
    assert "U_BOT" in client.conversations_members(channel="C_NOTIN")["members"]


def test_posting_to_a_user_id_lands_in_their_dm(client: WebClient, fake: FakeSlack) -> None:
    assert client.chat_postMessage(channel="U_VIEWER", text="your digest")["channel"] == "D_VIEWER"
    assert [m.text for m in fake.messages("D_VIEWER")] == ["your digest"]


def test_empty_and_oversized_messages_are_refused(client: WebClient, fake: FakeSlack) -> None:
    assert error_of(client.chat_postMessage, channel="C_FINANCE").response["error"] == "no_text"
    assert error_of(client.chat_postMessage, channel="C_FINANCE", text="x" * 40_001).response["error"] == (
        "msg_too_long")
    assert fake.messages("C_FINANCE") == []


def test_update_delete_and_permalink(client: WebClient, fake: FakeSlack) -> None:
    posted = client.chat_postMessage(channel="C_FINANCE", text="draft", blocks=[section("draft")])
    updated = client.chat_update(channel="C_FINANCE", ts=posted["ts"], text="final")
    assert updated["ts"] == posted["ts"]
    (message,) = fake.messages("C_FINANCE")
    assert (message.text, message.blocks, message.edited) == ("final", [section("draft")], True)  # blocks kept
    link = client.chat_getPermalink(channel="C_FINANCE", message_ts=posted["ts"])["permalink"]
    assert link.endswith(posted["ts"].replace(".", ""))
    client.chat_delete(channel="C_FINANCE", ts=posted["ts"])
    assert fake.messages("C_FINANCE") == []
    assert error_of(client.chat_update, channel="C_FINANCE", ts=posted["ts"], text="x").response["error"] == (
        "message_not_found")


def test_ephemeral_messages_are_kept_per_channel_and_user(client: WebClient, fake: FakeSlack) -> None:
    fake.add_user(User("U_GUEST", "gus", "Gus Guest"))
    assert TS.match(client.chat_postEphemeral(channel="C_FINANCE", user="U_VIEWER", text="only you")["message_ts"])
    assert [m.text for m in fake.ephemeral("C_FINANCE", "U_VIEWER")] == ["only you"]
    assert fake.messages("C_FINANCE") == [] and fake.ephemeral("C_FINANCE", "U_ADMIN") == []
    error = error_of(client.chat_postEphemeral, channel="C_FINANCE", user="U_GUEST", text="x")
    assert error.response["error"] == "user_not_in_channel"


# --- Block Kit checks -----------------------------------------------------------------------------------------


def test_51_blocks_are_invalid_blocks_like_slack(client: WebClient, fake: FakeSlack) -> None:
    error = error_of(client.chat_postMessage, channel="C_FINANCE", text="t", blocks=[section("x")] * 51)
    assert error.response["error"] == "invalid_blocks"
    assert error.response["errors"] == ["no more than 50 items allowed [json-pointer:/blocks]"]
    assert error.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]
    client.chat_postMessage(channel="C_FINANCE", text="t", blocks=[section("x")] * 50)
    assert len(fake.messages("C_FINANCE")) == 1


@pytest.mark.parametrize(("block", "pointer"), [
    (section("x" * 3001), "/blocks/0/text/text"),
    ({"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}, "/blocks/0/fields/0/text"),
    ({"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11}, "/blocks/0/fields"),
    ({"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}, "/blocks/0/text/text"),
    ({"type": "image", "image_url": "https://example.com/a.png"}, "/blocks/0"),
    ({"type": "image", "alt_text": "chart"}, "/blocks/0"),
    ({"type": "image", "alt_text": "chart", "slack_file": {"id": "F0NOTSHARED1"}}, "/blocks/0/slack_file"),
    ({"type": "actions", "elements": [{"type": "button", "action_id": f"b{i}",
                                       "text": {"type": "plain_text", "text": "b"}} for i in range(26)]},
     "/blocks/0/elements"),
    ({"type": "actions", "elements": [{"type": "button", "action_id": "a",
                                       "text": {"type": "plain_text", "text": "x" * 76}}]},
     "/blocks/0/elements/0/text/text"),
    ({**section("x"), "block_id": "b" * 256}, "/blocks/0/block_id"),
    ({"type": "actions", "elements": [{"type": "button", "action_id": "a" * 256,
                                       "text": {"type": "plain_text", "text": "ok"}}]},
     "/blocks/0/elements/0/action_id"),
    ({"type": "secton", "text": {"type": "mrkdwn", "text": "typo"}}, "/blocks/0/type"),
])
def test_block_kit_limits_the_sdk_does_not_check(client: WebClient, block: dict[str, Any], pointer: str) -> None:
    error = error_of(client.chat_postMessage, channel="C_FINANCE", text="t", blocks=[block])
    assert error.response["error"] == "invalid_blocks"
    assert any(e.endswith(f"[json-pointer:{pointer}]") for e in error.response["errors"]), error.response["errors"]


def test_blocks_inside_attachments_are_checked_too(client: WebClient) -> None:
    attachments = [{"color": "#E01E5A", "blocks": [section("x" * 3001)]}]
    error = error_of(client.chat_postMessage, channel="C_FINANCE", text="t", attachments=attachments)
    assert error.response["errors"] == ["must be less than 3001 characters [json-pointer:/attachments/0/blocks/0"
                                        "/text/text]"]


def test_blocks_validate_reports_pointer_objects(client: WebClient) -> None:
    assert client.blocks_validate(blocks=json.dumps([section("fine")]))["ok"] is True
    error = error_of(client.blocks_validate, blocks=json.dumps([section("x" * 3001)]))
    assert error.response["errors"] == [{"pointer": "/blocks/0/text/text", "code": "max_length",
                                         "message": "must be less than 3001 characters"}]


# --- files ----------------------------------------------------------------------------------------------------


def test_files_upload_v2_end_to_end_lands_bytes_and_shares_into_the_thread(client: WebClient,
                                                                            fake: FakeSlack) -> None:
    alert = client.chat_postMessage(channel="C_FINANCE", text="Spend alert")
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 40
    response = client.files_upload_v2(channel="C_FINANCE", thread_ts=alert["ts"], content=pdf,
                                      filename="report.pdf", title="November report", alt_txt="the report",
                                      initial_comment="Here is the report")
    file_id = response["file"]["id"]
    assert re.match(r"^F[A-Z0-9]{8,}$", file_id) and response["files"][0]["size"] == len(pdf)
    record = fake.file(file_id)
    assert record is not None
    assert (record.content, record.filename, record.title, record.alt_txt) == (
        pdf, "report.pdf", "November report", "the report")
    assert (record.channel, record.thread_ts) == ("C_FINANCE", alert["ts"])
    (share,) = fake.replies("C_FINANCE", alert["ts"])
    assert share.text == "Here is the report" and [f["id"] for f in share.files] == [file_id]
    assert [m.text for m in fake.messages("C_FINANCE")] == ["Spend alert"]  # not a new top-level message
    with urllib.request.urlopen(response["file"]["url_private"]) as download:
        assert download.read() == pdf
    # once shared, the file may be shown in an image block by id
    image = {"type": "image", "alt_text": "chart", "slack_file": {"id": file_id}}
    client.chat_postMessage(channel="C_FINANCE", text="chart", blocks=[image])


def test_upload_without_bytes_cannot_be_completed(client: WebClient) -> None:
    ticket = client.files_getUploadURLExternal(filename="a.csv", length=3)
    assert ticket["upload_url"].startswith(client.base_url + "upload/v1/")
    error = error_of(client.files_completeUploadExternal, files=[{"id": ticket["file_id"], "title": "A"}],
                     channel_id="C_FINANCE")
    assert error.response["error"] == "file_not_found"


def test_injected_upload_failure_reaches_the_sdk(client: WebClient, fake: FakeSlack) -> None:
    fake.fail_next("upload", status=500)
    with pytest.raises(urllib.error.HTTPError):  # slack_sdk 3.47 does not wrap the raw upload's error
        client.files_upload_v2(channel="C_FINANCE", content=b"abc", filename="a.csv")
    assert fake.messages("C_FINANCE") == []


# --- failure injection ----------------------------------------------------------------------------------------


def test_rate_limit_retry_handler_recovers_from_an_injected_429(fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=0)
    plain = WebClient(base_url=fake.url, token="xoxb-test", retry_handlers=[])
    error = error_of(plain.chat_postMessage, channel="C_FINANCE", text="x")
    assert (error.response.status_code, error.response["error"]) == (429, "ratelimited")
    assert error.response.headers["Retry-After"] == "0"

    fake.fail_next("chat.postMessage", status=429, retry_after=0)
    patient = WebClient(base_url=fake.url, token="xoxb-test", retry_handlers=[RateLimitErrorRetryHandler(1)])
    assert patient.chat_postMessage(channel="C_FINANCE", text="eventually")["ok"] is True
    assert [c.status for c in fake.calls("chat.postMessage")] == [429, 429, 200]
    assert [m.text for m in fake.messages("C_FINANCE")] == ["eventually"]


def test_ok_false_and_server_errors_and_dropped_connections(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", error="is_archived")
    assert error_of(client.chat_postMessage, channel="C_FINANCE", text="x").response["error"] == "is_archived"

    fake.fail_next("chat.postMessage", status=503)
    error = error_of(client.chat_postMessage, channel="C_FINANCE", text="x")
    assert error.response.status_code == 503  # an HTML page, not JSON
    fake.fail_next("chat.postMessage", status=500)
    retrying = WebClient(base_url=fake.url, token="xoxb-test", retry_handlers=[ServerErrorRetryHandler(1)])
    retrying.chat_postMessage(channel="C_FINANCE", text="after 500")

    fake.fail_next("chat.postMessage", drop=True)
    # No retry handlers: the dropped connection surfaces (urllib raises it unwrapped from getresponse()).
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        client.chat_postMessage(channel="C_FINANCE", text="x")
    fake.fail_next("chat.postMessage", drop=True)
    default = WebClient(base_url=fake.url, token="xoxb-test")  # ConnectionErrorRetryHandler by default
    default.chat_postMessage(channel="C_FINANCE", text="after drop")
    assert [m.text for m in fake.messages("C_FINANCE")] == ["after 500", "after drop"]
    assert [c.status for c in fake.calls("chat.postMessage")] == [200, 503, 500, 200, 0, 0, 200]


def test_fail_next_times_counts_down(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("users.info", error="fatal_error", times=2)
    for _ in range(2):
        error_of(client.users_info, user="U_ADMIN")
    assert client.users_info(user="U_ADMIN")["ok"] is True


def test_a_fault_after_the_call_posts_the_message_and_loses_only_the_answer(
        fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", status=500, after=True)
    assert error_of(client.chat_postMessage, channel="C_FINANCE", text="one").response.status_code == 500
    fake.fail_next("chat.postMessage", drop=True, after=True)
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        client.chat_postMessage(channel="C_FINANCE", text="two")
    fake.fail_next("chat.postMessage", drop=True)  # before: nothing is posted
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        client.chat_postMessage(channel="C_FINANCE", text="three")
    assert [m.text for m in fake.messages("C_FINANCE")] == ["one", "two"]
    calls = fake.calls("chat.postMessage")
    assert [(c.status, c.answer_lost) for c in calls] == [(500, True), (0, True), (0, False)]
    with pytest.raises(ValueError, match="5xx or a dropped connection"):
        fake.fail_next("chat.postMessage", status=429, after=True)  # Slack never rate-limits after posting


def test_chaos_mixes_faults_before_and_after_the_call_by_default(fake: FakeSlack) -> None:
    fake.chaos(rate=0.5, seed=3)
    plain = WebClient(base_url=fake.url, token="xoxb-test", retry_handlers=[])
    answered = 0
    for i in range(60):
        try:
            plain.chat_postMessage(channel="C_ENG", text=f"m{i}")
            answered += 1
        except (SlackApiError, urllib.error.URLError, ConnectionError):
            pass
    calls = fake.calls("chat.postMessage")
    lost = [c for c in calls if c.answer_lost]
    assert {c.status for c in calls if not c.answer_lost} == {200, 429, 500, 0}  # 0: dropped
    assert {c.status for c in lost} == {500, 0}
    # what the channel shows: every answered post plus every post whose answer was lost, nothing else
    assert len(fake.messages("C_ENG")) == answered + len(lost)
    with pytest.raises(ValueError, match="unknown chaos kinds"):
        fake.chaos(rate=0.3, kinds=("meteor",))


def test_chaos_is_reproducible_and_retry_handlers_ride_it_out(fake: FakeSlack) -> None:
    fake.chaos(rate=0.3, seed=7, kinds=("server_error", "drop"))
    no_wait = FixedValueRetryIntervalCalculator(fixed_internal=0.01)  # the default backoff would take ~30 s
    handlers = [ServerErrorRetryHandler(max_retry_count=10, interval_calculator=no_wait),
                ConnectionErrorRetryHandler(max_retry_count=10, interval_calculator=no_wait)]
    resilient = WebClient(base_url=fake.url, token="xoxb-test", retry_handlers=handlers)
    for i in range(10):
        resilient.chat_postMessage(channel="C_ENG", text=f"alert {i}")
    statuses = [c.status for c in fake.calls("chat.postMessage")]
    assert [m.text for m in fake.messages("C_ENG")] == [f"alert {i}" for i in range(10)]
    assert statuses.count(200) == 10 and len(statuses) > 10  # some calls failed and were retried
    fake.reset()
    fake.chaos(rate=0.3, seed=7, kinds=("server_error", "drop"))
    for i in range(10):
        resilient.chat_postMessage(channel="C_ENG", text=f"alert {i}")
    assert [c.status for c in fake.calls("chat.postMessage")] == statuses


def test_per_channel_rate_limit(clock: Clock) -> None:
    with FakeSlack(clock=clock, rate_limit_per_channel=1.0) as fake:
        client = WebClient(base_url=fake.url, token="xoxb-test", retry_handlers=[])
        client.chat_postMessage(channel="C_FINANCE", text="one")
        error = error_of(client.chat_postMessage, channel="C_FINANCE", text="two")
        assert (error.response.status_code, error.response.headers["Retry-After"]) == (429, "1")
        client.chat_postMessage(channel="C_ENG", text="other channel is fine")
        clock.now += 1.0
        client.chat_postMessage(channel="C_FINANCE", text="two, later")
        assert [m.text for m in fake.messages("C_FINANCE")] == ["one", "two, later"]


# --- views and triggers ---------------------------------------------------------------------------------------


def test_views_open_exchanges_a_trigger_once_within_3_seconds(fake: FakeSlack, client: WebClient,
                                                               clock: Clock) -> None:
    assert error_of(client.views_open, trigger_id="made.up", view=modal()).response["error"] == (
        "invalid_trigger_id")
    trigger = fake.issue_trigger_id("U_VIEWER")
    opened = client.views_open(trigger_id=trigger, view=modal())["view"]
    assert opened["id"].startswith("V") and opened["hash"] and opened["callback_id"] == "budget"
    assert error_of(client.views_open, trigger_id=trigger, view=modal()).response["error"] == "expired_trigger_id"
    late = fake.issue_trigger_id()
    clock.now += 3.5
    assert error_of(client.views_open, trigger_id=late, view=modal()).response["error"] == "expired_trigger_id"
    (view,) = fake.views()
    assert (view.id, view.user) == (opened["id"], "U_VIEWER")


def test_lenient_triggers_accept_anything(fake: FakeSlack, client: WebClient) -> None:
    fake.strict_triggers = False
    assert client.views_open(trigger_id="anything", view=modal())["ok"] is True


def test_views_update_rejects_a_stale_hash(fake: FakeSlack, client: WebClient) -> None:
    opened = client.views_open(trigger_id=fake.issue_trigger_id(), view=modal("Old"))["view"]
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("New"))["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    error = error_of(client.views_update, view_id=opened["id"], hash=opened["hash"], view=modal("Newer"))
    assert error.response["error"] == "hash_conflict"
    view = fake.view(opened["id"])
    assert view is not None and view.payload["title"]["text"] == "New"


def test_view_limits_answer_invalid_arguments(fake: FakeSlack, client: WebClient) -> None:
    error = error_of(client.views_open, trigger_id=fake.issue_trigger_id(), view=modal("x" * 25))
    assert error.response["error"] == "invalid_arguments"
    assert error.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"]
    too_long = {"type": "home", "blocks": [section("x")] * 101}
    error = error_of(client.views_publish, user_id="U_ADMIN", view=too_long)
    assert "no more than 100 items allowed [json-pointer:/view/blocks]" in error.response["response_metadata"][
        "messages"][0]


def test_views_push_stops_at_three_deep(fake: FakeSlack, client: WebClient) -> None:
    root = client.views_open(trigger_id=fake.issue_trigger_id(), view=modal("Root"))["view"]
    second = client.views_push(trigger_id=fake.issue_trigger_id(view_id=root["id"]), view=modal("Two"))["view"]
    assert (second["root_view_id"], second["previous_view_id"]) == (root["id"], root["id"])
    client.views_push(trigger_id=fake.issue_trigger_id(view_id=second["id"]), view=modal("Three"))
    error = error_of(client.views_push, trigger_id=fake.issue_trigger_id(view_id=root["id"]), view=modal("Four"))
    assert error.response["error"] == "push_limit_reached"


def test_views_publish_keeps_the_home_tab_per_user(fake: FakeSlack, client: WebClient) -> None:
    first = client.views_publish(user_id="U_ADMIN", view={"type": "home", "blocks": [section("v1")]})["view"]
    second = client.views_publish(user_id="U_ADMIN", view={"type": "home", "blocks": [section("v2")]})["view"]
    assert first["id"] == second["id"] and first["hash"] != second["hash"]
    home = fake.home_view("U_ADMIN")
    assert home is not None and home["blocks"] == [section("v2")]
    assert fake.home_view("U_VIEWER") is None
    assert error_of(client.views_publish, user_id="U_ADMIN", hash=first["hash"],
                    view={"type": "home", "blocks": [section("v3")]}).response["error"] == "hash_conflict"


# --- users ----------------------------------------------------------------------------------------------------


def test_users_info_has_time_zone_locale_and_roles(client: WebClient) -> None:
    admin = client.users_info(user="U_ADMIN", include_locale=True)["user"]
    assert (admin["tz"], admin["locale"], admin["is_admin"], admin["is_owner"]) == (
        "America/New_York", "en-US", True, True)
    assert admin["tz_offset"] in (-5 * 3600, -4 * 3600)
    viewer = client.users_info(user="U_VIEWER")["user"]
    assert viewer["tz"] == "Europe/Berlin" and "locale" not in viewer and viewer["is_admin"] is False
    assert client.users_info(user="U_NOBODY", include_locale=True)["user"]["locale"] == "pt-BR"
    assert client.users_lookupByEmail(email="bruno@example.com")["user"]["id"] == "U_VIEWER"
    assert error_of(client.users_info, user="U_GHOST").response["error"] == "user_not_found"
    assert error_of(client.users_lookupByEmail, email="x@y.z").response["error"] == "users_not_found"


def test_seeds_are_configurable(clock: Clock) -> None:
    users = [User("U_ONE", "one", "One", tz="Asia/Tokyo"), User("U_BOT", "bot", "Bot", is_bot=True)]
    channels = [Channel("C_ONLY", "only", ["U_ONE", "U_BOT"])]
    with FakeSlack(users=users, channels=channels, clock=clock) as fake:
        client = WebClient(base_url=fake.url, token="xoxb-test")
        assert client.users_info(user="U_ONE")["user"]["tz_offset"] == 9 * 3600
        assert error_of(client.chat_postMessage, channel="C_FINANCE", text="x").response["error"] == (
            "channel_not_found")
        client.chat_postMessage(channel="#only", text="by name")
        assert [m.text for m in fake.messages("C_ONLY")] == ["by name"]


# --- response_url ---------------------------------------------------------------------------------------------


def test_response_url_takes_five_posts_then_404(fake: FakeSlack) -> None:
    url = fake.response_url(channel="C_FINANCE", user="U_VIEWER")
    webhook = WebhookClient(url)
    for i in range(5):
        assert webhook.send(text=f"update {i}").status_code == 200
    sixth = webhook.send(text="one too many")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    assert [p["text"] for p in fake.response_posts(url)] == [f"update {i}" for i in range(5)]
    assert [m.text for m in fake.ephemeral("C_FINANCE", "U_VIEWER")] == [f"update {i}" for i in range(5)]


def test_response_url_expires_after_30_minutes(fake: FakeSlack, clock: Clock) -> None:
    url = fake.response_url()
    assert WebhookClient(url).send(text="in time").status_code == 200
    clock.now += 30 * 60 + 1
    late = WebhookClient(url).send(text="too late")
    assert (late.status_code, late.body) == (404, "expired_url")


def test_response_url_in_channel_and_replace_original(fake: FakeSlack, client: WebClient) -> None:
    original = client.chat_postMessage(channel="C_FINANCE", text="Approve?")
    url = fake.response_url(channel="C_FINANCE", user="U_ADMIN", message_ts=original["ts"])
    WebhookClient(url).send(text="Approved by Alice", replace_original=True)
    WebhookClient(url).send(text="Budget changed", response_type="in_channel")
    assert [(m.text, m.edited) for m in fake.messages("C_FINANCE")] == [
        ("Approved by Alice", True), ("Budget changed", False)]
    assert WebhookClient(url).send(text="").status_code == 400  # no_text


# --- state, waiting, reset ------------------------------------------------------------------------------------


def test_wait_for_calls_sees_calls_made_on_other_threads(fake: FakeSlack, client: WebClient) -> None:
    timer = threading.Timer(0.2, lambda: client.chat_postMessage(channel="C_GENERAL", text="later"))
    timer.start()
    (call,) = fake.wait_for_calls("chat.postMessage", 1, timeout=5)
    assert call.body["text"] == "later" and call.headers["authorization"] == "Bearer xoxb-test"
    assert [m.text for m in fake.messages("C_GENERAL")] == ["later"]  # recorded after it was applied
    with pytest.raises(TimeoutError):
        fake.wait_for_calls("chat.postMessage", 2, timeout=0.2)


def test_state_endpoint_and_reset(fake: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C_FINANCE", text="p")
    client.chat_postMessage(channel="C_FINANCE", text="r", thread_ts=parent["ts"])
    with urllib.request.urlopen(fake.url + "_test/state") as response:
        state = json.load(response)
    (message,) = state["channels"]["C_FINANCE"]["messages"]
    assert message["text"] == "p" and [r["text"] for r in message["replies"]] == ["r"]
    assert [c["method"] for c in state["calls"]] == ["chat.postMessage", "chat.postMessage"]
    fake.fail_next("auth.test", error="invalid_auth")
    fake.reset()
    assert fake.messages("C_FINANCE") == [] and fake.calls() == []
    assert client.auth_test()["ok"] is True  # scripted faults are gone too


# --- the inbound side: signed requests into a real Bolt app ---------------------------------------------------


def test_signed_requests_verify_and_stale_ones_do_not() -> None:
    body, headers = signing.slash_command_request(SECRET, text="invoices", response_url="http://x/r",
                                                  trigger_id="1.2.abc")
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    fields = parse_qs(body.decode())
    assert fields["command"] == ["/billing"] and fields["channel_name"] == ["finance"]
    old, old_headers = signing.event_request(SECRET, signing.app_home_opened("U_ADMIN"), timestamp=1_000)
    assert not SignatureVerifier(SECRET).is_valid_request(old, old_headers)
    assert signing.sign(SECRET, b"x", 1) != signing.sign("other", b"x", 1)


def test_a_bolt_app_round_trip_through_the_fake(fake: FakeSlack) -> None:
    app = App(client=WebClient(base_url=fake.url, token="xoxb-test"), signing_secret=SECRET,
              process_before_response=True)

    @app.command("/billing")
    def billing(ack: Any, respond: Any, client: WebClient, command: dict[str, Any]) -> None:
        ack()
        respond(text=f"Looking up {command['text']}")
        client.views_open(trigger_id=command["trigger_id"], view=modal())

    @app.action("alert_ack")
    def acknowledge(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_update(channel=body["channel"]["id"], ts=body["container"]["message_ts"], text="Acknowledged")

    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        client.views_publish(user_id=event["user"], view={"type": "home", "blocks": [section("Home")]})

    url = fake.response_url(channel="C_FINANCE", user="U_ADMIN")
    body, headers = signing.slash_command_request(SECRET, text="invoices", response_url=url,
                                                  trigger_id=fake.issue_trigger_id("U_ADMIN"))
    assert app.dispatch(BoltRequest(body=body.decode(), headers=headers)).status == 200
    assert [p["text"] for p in fake.response_posts(url)] == ["Looking up invoices"]
    assert [v.user for v in fake.views()] == ["U_ADMIN"]

    alert = WebClient(base_url=fake.url, token="xoxb-test").chat_postMessage(channel="C_FINANCE", text="Alert")
    body, headers = signing.block_action_request(SECRET, action_id="alert_ack", value="acme|2026-11",
                                                 message={"ts": alert["ts"]}, response_url=fake.response_url(),
                                                 trigger_id=fake.issue_trigger_id())
    assert app.dispatch(BoltRequest(body=body.decode(), headers=headers)).status == 200
    assert [m.text for m in fake.messages("C_FINANCE")] == ["Acknowledged"]

    body, headers = signing.event_request(SECRET, signing.app_home_opened("U_VIEWER"))
    assert app.dispatch(BoltRequest(body=body.decode(), headers=headers)).status == 200
    home_view = fake.home_view("U_VIEWER")
    assert home_view is not None and home_view["blocks"] == [section("Home")]

    stale, stale_headers = signing.slash_command_request(SECRET, response_url=url, trigger_id="t", timestamp=1)
    assert app.dispatch(BoltRequest(body=stale.decode(), headers=stale_headers)).status == 401


def test_view_submission_payload_reaches_the_listener(fake: FakeSlack) -> None:
    app = App(client=WebClient(base_url=fake.url, token="xoxb-test"), signing_secret=SECRET,
              process_before_response=True)
    seen: list[dict[str, Any]] = []

    @app.view("budget")
    def submit(ack: Any, view: dict[str, Any]) -> None:
        seen.append(view)
        ack(response_action="errors", errors={"amount": "Must be positive"})

    opened = WebClient(base_url=fake.url, token="xoxb-test").views_open(
        trigger_id=fake.issue_trigger_id(), view=modal())["view"]
    values = {"amount": {"value": {"type": "plain_text_input", "value": "-5"}}}
    body, headers = signing.view_submission_request(SECRET, view=opened, values=values,
                                                    trigger_id=fake.issue_trigger_id())
    response = app.dispatch(BoltRequest(body=body.decode(), headers=headers))
    assert json.loads(response.body) == {"response_action": "errors", "errors": {"amount": "Must be positive"}}
    assert seen[0]["id"] == opened["id"] and seen[0]["state"]["values"] == values
