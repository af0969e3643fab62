"""The sandbox enforces Slack's rules on the bot and shows the person the error Slack would show.

The "bot" here is a tiny Bolt app whose `/billing` listener breaks one rule per subcommand; it is served over
HTTP by waitress exactly as the sandbox serves the real bot, and reached through the sandbox's relay with
signed requests. Assertions are on what the person sees in the channel (`SandboxUI.items`) or in the modal.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import text

from billing_core.db.engine import Database
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.relay import TROUBLE, Relay
from bot.sandbox.runner import alerts_worker, run_sandbox, serve_wsgi, start_sandbox
from bot.sandbox.ui import SandboxUI
from bot.sandbox.ui_render import Lookup, file_html, mrkdwn

SECRET = "rules-signing-secret"
ROLES = {"U_ADMIN": "admin", "U_VIEWER": "viewer", "U_NOBODY": "no access"}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


MODAL = {"type": "modal", "callback_id": "budget", "title": {"type": "plain_text", "text": "Budget"},
         "submit": {"type": "plain_text", "text": "Save"},
         "blocks": [{"type": "input", "block_id": "amount", "label": {"type": "plain_text", "text": "Amount"},
                     "element": {"type": "plain_text_input", "action_id": "value"}}]}


def rule_breaking_bot(fake: FakeSlack) -> App:
    """`/billing <rule>` breaks `rule`; the modal's submission answers a field error or comes too late."""
    client = WebClient(token="xoxb-rules", base_url=fake.url, retry_handlers=[])
    app = App(signing_secret=SECRET, client=client, token_verification_enabled=False)

    @app.command("/billing")
    def on_command(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        rule = command["text"]
        if rule == "slow":
            time.sleep(3.3)  # the whole point: Slack stops waiting after 3 s
        ack("Sure.") if rule == "text" else ack()
        channel = command["channel_id"]
        try:
            if rule == "blocks":
                client.chat_postMessage(channel=channel, text="too many", blocks=[section(str(i)) for i in range(51)])
            elif rule == "trigger":
                client.views_open(trigger_id=command["trigger_id"], view=MODAL)
                client.views_open(trigger_id=command["trigger_id"], view=MODAL)
            elif rule == "modal":
                client.views_open(trigger_id=command["trigger_id"], view=MODAL)
            elif rule == "respond":
                for n in range(6):
                    respond(f"answer {n + 1}")
            elif rule == "pages":
                respond(text="page 1", blocks=[section("page 1"), {"type": "actions", "elements": [
                    {"type": "button", "action_id": "next", "text": {"type": "plain_text", "text": "Next"}}]}])
            elif rule == "burst":
                client.chat_postMessage(channel=channel, text="first")
                client.chat_postMessage(channel=channel, text="second, at once")
        except SlackApiError:
            pass  # the bot's own error handling is not under test; what the person sees is

    @app.action("next")
    def on_next(ack: Ack, respond: Respond) -> None:
        ack()
        respond(text="page 2", replace_original=True)

    @app.view("budget")
    def on_submit(ack: Ack, view: dict[str, Any]) -> None:
        amount = view["state"]["values"]["amount"]["value"]["value"] or ""
        if amount == "slow":
            time.sleep(3.3)
        if amount in ("push", "huge"):
            blocks = [section(f"line {i}") for i in range(101 if amount == "huge" else 1)]
            ack(response_action="push" if amount == "push" else "update",
                view={"type": "modal", "title": {"type": "plain_text", "text": "Confirm"}, "blocks": blocks})
            return
        if not amount.isdigit():
            ack(response_action="errors", errors={"amount": "Enter a whole number of dollars."})
            return
        ack()

    return app


@dataclass
class Workspace:
    fake: FakeSlack
    relay: Relay
    ui: SandboxUI

    def type(self, text: str, *, user: str = "U_ADMIN", channel: str = "C_FINANCE") -> dict[str, Any]:
        return self.ui.send({"as": user, "c": channel, "text": text}).as_json()

    def seen(self, *, user: str = "U_ADMIN", channel: str = "C_FINANCE") -> list[str]:
        return [item.text for item in self.ui.items(channel, user)]

    def errors_seen(self, *, user: str = "U_ADMIN", channel: str = "C_FINANCE") -> list[str]:
        return [item.text for item in self.ui.items(channel, user) if item.notice]


@pytest.fixture
def workspace() -> Iterator[Workspace]:
    with FakeSlack(rate_limit_per_channel=1.0) as fake:
        url, stop = serve_wsgi(SlackRequestHandler(rule_breaking_bot(fake)))
        relay = Relay(fake, url, SECRET)
        ui = SandboxUI(fake, relay, roles=ROLES)
        ui.mount()
        try:
            yield Workspace(fake, relay, ui)
        finally:
            stop()


def test_an_ack_after_three_seconds_shows_slacks_operation_timeout(workspace: Workspace) -> None:
    outcome = workspace.type("/billing slow")

    assert outcome["ok"] is False
    assert workspace.errors_seen() == ['/billing failed with the error "operation_timeout"']
    assert workspace.errors_seen(user="U_VIEWER") == []  # only the person who typed it sees it


def test_a_prompt_ack_with_text_is_shown_only_to_the_person(workspace: Workspace) -> None:
    assert workspace.type("/billing text")["ok"] is True
    [item] = workspace.ui.items("C_FINANCE", "U_ADMIN")
    assert (item.text, item.ephemeral, item.notice) == ("Sure.", True, False)
    assert workspace.seen(user="U_VIEWER") == []


def test_51_blocks_are_refused_with_invalid_blocks_in_the_channel(workspace: Workspace) -> None:
    workspace.type("/billing blocks")
    workspace.fake.wait_for_calls("chat.postMessage")

    [error] = workspace.errors_seen()
    assert "chat.postMessage: invalid_blocks" in error
    assert "[json-pointer:/blocks]" in error
    assert workspace.fake.messages("C_FINANCE") == []


def test_a_reused_trigger_id_is_refused_as_expired(workspace: Workspace) -> None:
    workspace.type("/billing trigger")
    workspace.fake.wait_for_calls("views.open", 2)

    assert workspace.errors_seen() == ["Slack refused billing-bot's views.open: expired_trigger_id"]
    assert workspace.relay.open_modal("U_ADMIN") is not None  # the first open worked


def test_a_sixth_reply_through_one_response_url_is_refused(workspace: Workspace) -> None:
    workspace.type("/billing respond")
    workspace.fake.wait_for_calls("response_url", 6)

    assert [t for t in workspace.seen() if t.startswith("answer")] == [f"answer {n}" for n in range(1, 6)]
    [error] = workspace.errors_seen()
    assert "response_url: used_url" in error


def test_a_button_on_an_ephemeral_answer_replaces_that_answer(workspace: Workspace) -> None:
    workspace.type("/billing pages", channel="C_GENERAL")
    workspace.fake.wait_for_calls("response_url")
    [first] = workspace.ui.items("C_GENERAL", "U_ADMIN")
    act = {"type": "button", "action_id": "next", "block_id": "b1"}

    clicked = workspace.ui.action({"as": "U_ADMIN", "c": "C_GENERAL", "ts": first.ts, "ephemeral": True, "act": act})
    assert clicked.ok
    workspace.fake.wait_for_calls("response_url", 2)

    assert [(i.text, i.ephemeral) for i in workspace.ui.items("C_GENERAL", "U_ADMIN")] == [("page 2", True)]


def test_a_click_the_bot_has_no_listener_for_shows_dispatch_failed(workspace: Workspace) -> None:
    act = {"type": "button", "action_id": "nobody_listens", "block_id": "b1"}
    outcome = workspace.ui.action({"as": "U_VIEWER", "c": "C_FINANCE", "ts": "1.000001", "act": act})

    assert outcome.ok is False
    assert workspace.errors_seen(user="U_VIEWER") == [
        'billing-bot did not handle that click: Slack reports "dispatch_failed" (the app answered HTTP 404).']


def test_two_messages_in_the_same_second_get_a_429(workspace: Workspace) -> None:
    workspace.type("/billing burst")
    workspace.fake.wait_for_calls("chat.postMessage", 2)

    assert "first" in workspace.seen()
    [error] = workspace.errors_seen()
    assert "rate-limited billing-bot's chat.postMessage (HTTP 429 ratelimited)" in error


def test_modal_field_errors_show_on_the_field_and_a_valid_submit_closes_it(workspace: Workspace) -> None:
    workspace.type("/billing modal")
    workspace.fake.wait_for_calls("views.open")
    modal = workspace.relay.open_modal("U_ADMIN")
    assert modal is not None

    def submit(amount: str) -> dict[str, Any]:
        values = {"amount": {"value": {"type": "plain_text_input", "value": amount}}}
        return workspace.ui.submit({"as": "U_ADMIN", "view": modal.id, "values": values}).as_json()

    refused = submit("lots")
    assert refused["errors"] == {"amount": "Enter a whole number of dollars."}
    assert refused["closed"] is False

    assert submit("500")["closed"] is True
    assert workspace.relay.open_modal("U_ADMIN") is None


def test_a_late_modal_ack_keeps_the_modal_open_with_slacks_trouble_line(workspace: Workspace) -> None:
    workspace.type("/billing modal")
    workspace.fake.wait_for_calls("views.open")
    modal = workspace.relay.open_modal("U_ADMIN")
    assert modal is not None

    values = {"amount": {"value": {"type": "plain_text_input", "value": "slow"}}}
    outcome = workspace.ui.submit({"as": "U_ADMIN", "view": modal.id, "values": values}).as_json()

    assert (outcome["error"], outcome["closed"]) == (TROUBLE, False)
    assert workspace.relay.open_modal("U_ADMIN") is not None


def test_a_pushed_view_stacks_on_the_modal_and_closing_it_goes_back(workspace: Workspace) -> None:
    workspace.type("/billing modal")
    workspace.fake.wait_for_calls("views.open")
    first = workspace.relay.open_modal("U_ADMIN")
    assert first is not None
    values = {"amount": {"value": {"type": "plain_text_input", "value": "push"}}}

    assert workspace.ui.submit({"as": "U_ADMIN", "view": first.id, "values": values}).ok
    pushed = workspace.relay.open_modal("U_ADMIN")
    assert pushed is not None and pushed.payload["title"]["text"] == "Confirm"

    workspace.ui.close({"as": "U_ADMIN", "view": pushed.id})
    back = workspace.relay.open_modal("U_ADMIN")
    assert back is not None and back.id == first.id


def test_an_update_with_101_blocks_is_refused_in_the_modal(workspace: Workspace) -> None:
    workspace.type("/billing modal")
    workspace.fake.wait_for_calls("views.open")
    modal = workspace.relay.open_modal("U_ADMIN")
    assert modal is not None
    values = {"amount": {"value": {"type": "plain_text_input", "value": "huge"}}}

    outcome = workspace.ui.submit({"as": "U_ADMIN", "view": modal.id, "values": values})

    assert outcome.error is not None and "response_action update: invalid_arguments" in outcome.error
    still = workspace.relay.open_modal("U_ADMIN")
    assert still is not None and still.payload["title"]["text"] == "Budget"


def test_the_ui_is_served_by_the_fake_over_http(workspace: Workspace) -> None:
    base = workspace.fake.url
    page = urllib.request.urlopen(f"{base}?as=U_VIEWER&c=C_GENERAL", timeout=5).read().decode()
    assert "Bruno Viewer (viewer)" in page and "#general" in page
    assert '"name": "invoices"' in page  # the composer's autocomplete comes from bot.parsing.SUBCOMMANDS

    request = urllib.request.Request(f"{base}ui/send", data=json.dumps(
        {"as": "U_ADMIN", "c": "C_GENERAL", "text": "hello team"}).encode(), method="POST")
    assert json.load(urllib.request.urlopen(request, timeout=5))["ok"] is True
    feed = json.load(urllib.request.urlopen(f"{base}ui/feed?as=U_VIEWER&c=C_GENERAL", timeout=5))
    assert "hello team" in feed["feed"] and "Alice Admin" in feed["feed"]


def test_start_sandbox_runs_the_real_bot_and_the_worker_and_stops_every_thread(seeded_sqlite: Path,
                                                                              tmp_path: Path) -> None:
    database = tmp_path / "sandbox.db"
    shutil.copy(seeded_sqlite, database)
    ours = ("fake-slack", "sandbox-bot-web", "APScheduler", "billing_", "bolt_", "waitress")
    before = {t.ident for t in threading.enumerate()}

    sandbox = start_sandbox(f"sqlite:///{database}", port=0, companions=[alerts_worker])
    try:
        request = urllib.request.Request(f"{sandbox.url}/ui/send", method="POST", data=json.dumps(
            {"as": "U_VIEWER", "c": "C_FINANCE", "text": "/billing invoices overdue"}).encode())
        assert json.load(urllib.request.urlopen(request, timeout=5))["ok"] is True
        def posted(header: str) -> bool:
            return any(b.get("type") == "header" and b["text"]["text"].startswith(header)
                       for m in sandbox.fake.messages("C_FINANCE") for b in m.blocks or [])

        sandbox.fake.wait_for(lambda: posted("Invoices — overdue"), timeout=30, what="the viewer's invoice list")
        sandbox.fake.wait_for(lambda: posted("Overdue invoice"), timeout=30, what="the worker's overdue alert")
    finally:
        sandbox.stop()

    left = [t.name for t in threading.enumerate() if t.ident not in before and t.name.startswith(ours)]
    assert left == []


# --- what the page shows for what the bot sent -------------------------------------------------------------


def test_mrkdwn_is_rendered_and_whatever_the_bot_sends_is_escaped() -> None:
    lookup = Lookup(users={"U_ADMIN": "Alice Admin"}, channels={"C_FINANCE": "finance"})
    shown = mrkdwn("*Total* _due_ `INV-7` <https://pay.example/i?a=1&amp;b=2|Pay> <@U_ADMIN> <#C_FINANCE> "
                   ":warning: at 1:50:50 <script>alert(1)</script> &lt;b&gt;", lookup)

    assert "<strong>Total</strong>" in shown and "<em>due</em>" in shown and "<code>INV-7</code>" in shown
    assert '<a href="https://pay.example/i?a=1&amp;b=2" target="_blank" rel="noopener">Pay</a>' in shown
    assert "@Alice Admin" in shown and "#finance" in shown
    assert '<span class="emoji">:warning:</span>' in shown and "1:50:50" in shown
    assert "<script" not in shown and "&lt;b&gt;" in shown


def test_a_png_shows_inline_and_a_pdf_is_a_download_with_its_type() -> None:
    png = file_html({"name": "chart.png", "title": "Cost", "mimetype": "image/png", "url_private": "/f/1/chart.png"})
    pdf = file_html({"name": "INV-1.pdf", "title": "Invoice", "mimetype": "application/pdf", "filetype": "pdf",
                     "size": 14_000, "url_private": "/f/2/INV-1.pdf"})

    assert '<img src="/f/1/chart.png"' in png
    assert 'download="INV-1.pdf"' in pdf and 'data-mimetype="application/pdf"' in pdf and "14 KB" in pdf


def test_a_busy_port_is_reported_in_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as stopped:
            run_sandbox(f"sqlite:///{tmp_path / 'never.db'}", port=port)

    assert str(stopped.value.code) == (f"Port {port} on 127.0.0.1 is not free (Address already in use); "
                                       f"try --port {port + 5}.")
    assert not (tmp_path / "never.db").exists()


def test_the_sandbox_command_seeds_an_empty_database_serves_the_workspace_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """What `make demo` ends in, as a person runs it: a real process, a URL to open, Ctrl-C to stop."""
    database = tmp_path / "first-run.db"
    command = [sys.executable, "-m", "bot.cli", "sandbox", "--port", "0", "--database-url", f"sqlite:///{database}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    # Started as from a terminal, where Ctrl-C is delivered: a suite run in the background by a non-interactive
    # shell ignores SIGINT, and a child would inherit that (Python then installs no KeyboardInterrupt at all).
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                   cwd=Path(__file__).parents[1])
    finally:
        signal.signal(signal.SIGINT, ignored)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the sandbox is up (or the process died)
        assert line.startswith("Sandbox Slack workspace on http://127.0.0.1:"), process.stderr.read()
        url = line.split(" on ", 1)[1].split("/ ", 1)[0]
        with urllib.request.urlopen(f"{url}/", timeout=10) as page:
            assert page.status == 200 and "#finance" in page.read().decode()
        ledger = Database(f"sqlite:///{database}")
        with ledger.unit_of_work() as s:
            assert {name for (name,) in s.execute(text("select name from accounts"))} >= {"acme-corp", "orbit-dao"}
        ledger.dispose()
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Stopping the sandbox" in out
