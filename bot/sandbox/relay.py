"""Slack's side of the conversation with the bot: signed requests out, acks judged by Slack's rules.

Contract: `Relay(fake, bot_url, secret)` turns what a person does in the sandbox (a slash command, a click, a
modal submission, opening the Home tab) into the request Slack would send: built and signed by
`bot.sandbox.signing`, with trigger_ids and response_urls minted by the fake, POSTed to `<bot_url>/slack/events`.
It waits at most `ACK_DEADLINE` (3 s) for the bot's HTTP ack and then applies it as Slack does:
- a slash command's ack body becomes a message (ephemeral unless `response_type: in_channel`); no ack in
  time becomes `/billing failed with the error "operation_timeout"`, a non-200 ack `"dispatch_failed"`;
- a click that is not acked in time, or refused, becomes an error line for that person in that channel;
- a modal submission's ack closes the view (empty body), clears the stack (`clear`), shows `errors` on fields,
  or replaces (`update`) or stacks (`push`) a view, checked like views.update/views.push;
  a late ack leaves the modal open with Slack's "We had some trouble connecting" line.
The Web API calls the fake refused (invalid_blocks, expired_trigger_id, used response_url, 429, ...) become
`Notice`s in the channel they were about, so a rule the bot broke is visible where the person is looking.
Thread-safe: the UI server calls it from many threads.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox import signing
from bot.sandbox.fake_methods import ApiError
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.fake_state import Call, Json, Message, View

ACK_DEADLINE = 3.0  # seconds Slack waits for the HTTP ack of a command, click or submission
COMMAND = "/billing"
TROUBLE = "We had some trouble connecting. Try again?"  # what Slack shows in a modal whose app did not answer

# Direct connections only: the bot is on loopback, and a proxy from the environment must not see its traffic.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Ack:
    """The bot's HTTP answer: `status` None when nothing came back before the deadline."""

    status: int | None
    body: bytes = b""
    content_type: str = ""
    seconds: float = 0.0

    @property
    def error(self) -> str | None:
        """The error Slack reports for this ack, or None when it was in time and accepted."""
        if self.status is None or self.seconds > ACK_DEADLINE:
            return "operation_timeout"
        return None if self.status == 200 else "dispatch_failed"

    def payload(self) -> Json:
        """The ack body as Slack reads it: JSON, else plain text as `{"text": ...}`, else `{}`."""
        text = self.body.decode("utf-8", errors="replace").strip()
        if not text:
            return {}
        if "json" in self.content_type or text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                return {"text": text}
            return data if isinstance(data, dict) else {}
        return {"text": text}


@dataclass(frozen=True)
class Notice:
    """An error line Slack shows in a channel (to `user` only, or to everyone there when None)."""

    channel: str
    user: str | None
    at: float
    text: str


@dataclass
class Outcome:
    """What the UI needs back from one interaction."""

    ok: bool
    error: str | None = None
    errors: dict[str, str] = field(default_factory=dict)  # modal field errors, by block_id
    closed: bool = False  # the modal went away

    def as_json(self) -> Json:
        return {"ok": self.ok, "error": self.error, "errors": self.errors, "closed": self.closed}


class Relay:
    def __init__(self, fake: FakeSlack, bot_url: str, secret: str, *, deadline: float = ACK_DEADLINE) -> None:
        self.fake = fake
        self.events_url = bot_url.rstrip("/") + "/slack/events"
        self.secret = secret
        self.deadline = deadline
        self._lock = threading.Lock()
        self._notices: list[Notice] = []
        self._closed: set[str] = set()  # view ids the person closed or the bot's ack closed
        self._trigger_channel: dict[str, str] = {}  # where each trigger was issued, to place errors about it
        self._last_channel: dict[str, str] = {}  # user -> the channel they last acted in
        self._calls_seen = 0

    # --- the person's side --------------------------------------------------------------------------------

    def command(self, user: str, channel: str, text: str, *, command: str = COMMAND) -> Outcome:
        """`/billing <text>` typed in `channel`."""
        if command != COMMAND:
            return self._refuse(channel, user, f"{command} is not a valid command. In Slack, all messages that "
                                               "start with the \"/\" character are interpreted as commands.")
        trigger = self._trigger(user, channel)
        ack = self.send(signing.slash_command_request(
            self.secret, command=command, text=text, user_id=user, channel_id=channel, trigger_id=trigger,
            response_url=self.fake.response_url(channel=channel, user=user)))
        if ack.error is not None:
            return self._refuse(channel, user, f'{command} failed with the error "{ack.error}"')
        reply = ack.payload()
        if reply.get("text") or reply.get("blocks"):
            in_channel = reply.get("response_type") == "in_channel"
            self.fake.post_as_bot(Message(channel, "", str(reply.get("text") or ""), reply.get("blocks")),
                                  ephemeral_to=None if in_channel else user)
        return Outcome(True)

    def click(self, user: str, action: Mapping[str, Any], *, channel: str | None = None,
              message_ts: str | None = None, ephemeral: bool = False, view_id: str | None = None,
              state_values: Mapping[str, Any] | None = None) -> Outcome:
        """A click (button, select, overflow, date picker) on a message or in a view (modal or Home tab)."""
        view = self.fake.view(view_id) if view_id else None
        trigger = self._trigger(user, channel, view_id=view_id if view is not None else None)
        what: dict[str, Any] = {"action_id": str(action["action_id"]), "block_id": str(action.get("block_id", "")),
                                "action_type": str(action.get("type", "button")), "value": _opt(action.get("value")),
                                "trigger_id": trigger, "user_id": user, "state_values": state_values}
        if view is not None:
            request = signing.block_action_request(self.secret, view=view.payload, **what)
            place = channel or self._last_channel.get(user) or f"D_{user.removeprefix('U_')}"
        else:
            if channel is None:
                return Outcome(False, "channel_not_found")
            request = signing.block_action_request(
                self.secret, channel_id=channel, message=self._message_json(channel, message_ts),
                is_ephemeral=ephemeral,
                response_url=self.fake.response_url(channel=channel, user=user, message_ts=message_ts), **what)
            place = channel
        ack = self.send(request)
        if ack.error is not None:
            why = "apps must acknowledge within 3 seconds" if ack.error == "operation_timeout" else \
                f"the app answered HTTP {ack.status}"
            return self._refuse(place, user, f"billing-bot did not handle that click: Slack reports "
                                             f"\"{ack.error}\" ({why}).")
        return Outcome(True)

    def submit(self, user: str, view_id: str, values: Mapping[str, Any]) -> Outcome:
        """The modal's submit button, with the state the person filled in."""
        view = self.fake.view(view_id)
        if view is None or view_id in self._closed_ids():
            return Outcome(False, "not_found", closed=True)
        ack = self.send(signing.view_submission_request(
            self.secret, values=values, view=view.payload, user_id=user,
            trigger_id=self._trigger(user, None, view_id=view_id)))
        if ack.error is not None:
            return Outcome(False, TROUBLE)
        reply = ack.payload()
        action = reply.get("response_action")
        if action == "errors":
            errors = reply.get("errors") or {}
            return Outcome(False, errors={str(k): str(v) for k, v in errors.items()})
        if action == "clear":
            self._close(v.id for v in self._stack(view))
        elif action in ("update", "push"):
            try:
                self.fake.view_submission_response(view_id, str(action), reply.get("view"))
            except ApiError as refused:
                return Outcome(False, f"Slack refused the app's response_action {action}: {refused.error} "
                                      f"{' '.join(refused.extra.get('response_metadata', {}).get('messages', []))}")
            return Outcome(True)  # the modal stays open, showing the new view
        else:
            self._close([view_id])
        return Outcome(True, closed=True)

    def close(self, view_id: str) -> Outcome:
        """The modal's Cancel/× button (view_closed is not sent: the bot asks for none)."""
        self._close([view_id])
        return Outcome(True, closed=True)

    def home_opened(self, user: str) -> Outcome:
        """The person opened the app's Home tab: the `app_home_opened` event, with the current Home view."""
        ack = self.send(signing.event_request(self.secret, signing.app_home_opened(
            user, view=self.fake.home_view(user))))
        if ack.error is not None:
            return self._refuse(f"D_{user.removeprefix('U_')}", user,
                                f"billing-bot did not answer the app_home_opened event ({ack.error}).")
        return Outcome(True)

    def send(self, request: signing.Request) -> Ack:
        """POST a signed request to the bot; wait for the ack no longer than Slack would."""
        body, headers = request
        started = time.monotonic()
        try:
            with _OPENER.open(urllib.request.Request(self.events_url, data=body, headers=headers, method="POST"),
                              timeout=self.deadline) as answer:
                data = answer.read()
                return Ack(answer.status, data, answer.headers.get("Content-Type", ""), time.monotonic() - started)
        except urllib.error.HTTPError as refused:
            return Ack(refused.code, refused.read(), refused.headers.get("Content-Type", ""),
                       time.monotonic() - started)
        except (TimeoutError, urllib.error.URLError, ConnectionError):
            return Ack(None, seconds=time.monotonic() - started)

    # --- what the UI shows -----------------------------------------------------------------------------------

    def notices(self, channel: str, user: str) -> list[Notice]:
        """Error lines for `user` in `channel`, including the Web API calls the fake refused since last time."""
        self._collect_refusals()
        with self._lock:
            return [n for n in self._notices if n.channel == channel and n.user in (None, user)]

    def open_modal(self, user: str) -> View | None:
        """The top view of the user's most recently opened modal stack that is still open."""
        closed = self._closed_ids()
        modals = [v for v in self.fake.views() if v.payload.get("type") == "modal" and v.user == user]
        for view in reversed(modals):
            if view.id not in closed:
                return view
        return None

    # --- internals ---------------------------------------------------------------------------------------

    def _trigger(self, user: str, channel: str | None, *, view_id: str | None = None) -> str:
        trigger = self.fake.issue_trigger_id(user, view_id=view_id)
        with self._lock:
            if channel is not None:
                self._trigger_channel[trigger] = channel
                self._last_channel[user] = channel
        return trigger

    def _refuse(self, channel: str, user: str, text: str) -> Outcome:
        self._notify(Notice(channel, user, time.time(), text))
        return Outcome(False, text)

    def _notify(self, notice: Notice) -> None:
        with self._lock:
            self._notices.append(notice)

    def _closed_ids(self) -> set[str]:
        with self._lock:
            return set(self._closed)

    def _close(self, view_ids: Any) -> None:
        with self._lock:
            self._closed.update(view_ids)

    def _stack(self, view: View) -> list[View]:
        return [v for v in self.fake.views() if v.root_view_id == view.root_view_id]

    def _message_json(self, channel: str, ts: str | None) -> Json:
        """The source message of a click as Slack sends it: ts, text, blocks and its thread."""
        for message in self.fake.messages(channel):
            for candidate in (message, *message.replies):
                if candidate.ts == ts:
                    found: Json = {"ts": ts, "text": candidate.text, "blocks": candidate.blocks or []}
                    return found | ({"thread_ts": candidate.thread_ts} if candidate.thread_ts else {})
        return {"ts": ts}

    def _collect_refusals(self) -> None:
        with self._lock:
            since = self._calls_seen
        calls = self.fake.calls(since=since)
        with self._lock:
            if self._calls_seen != since:  # another thread read the same calls meanwhile
                return
            self._calls_seen = since + len(calls)
        found = [n for n in map(self._refusal, calls) if n is not None]  # outside the lock: _place takes it
        with self._lock:
            self._notices.extend(found)

    def _refusal(self, call: Call) -> Notice | None:
        """A refused Web API call (or response_url post) as the error line the person should see."""
        if call.error is None or call.method in ("upload", "auth.test"):
            return None
        channel, user = self._place(call)
        if channel is None:
            return None
        why = f" ({call.detail})" if call.detail else ""
        if call.status == 429:
            text = (f"Slack rate-limited billing-bot's {call.method} (HTTP 429 {call.error}): about one message "
                    "per second per channel is allowed; an app that waits for Retry-After and tries again is fine.")
        elif call.method == "response_url":
            text = (f"Slack refused billing-bot's reply through a response_url: {call.error} (each one takes "
                    "5 replies within 30 minutes).")
        else:
            text = f"Slack refused billing-bot's {call.method}: {call.error}{why}"
        return Notice(channel, user, call.at, text)

    def _place(self, call: Call) -> tuple[str | None, str | None]:
        body = call.body
        if call.method == "response_url":
            return self.fake.response_url_context(call.path)
        if call.method.startswith("views.") and body.get("trigger_id"):
            trigger = str(body["trigger_id"])
            user = self.fake.trigger_user(trigger)
            with self._lock:
                channel = self._trigger_channel.get(trigger) or self._last_channel.get(user or "")
            return channel, user
        if call.method == "views.publish":
            user = str(body.get("user_id") or "")
            return (f"D_{user.removeprefix('U_')}", user) if user else (None, None)
        channel = body.get("channel") or body.get("channel_id")
        user = body.get("user") if call.method == "chat.postEphemeral" else None
        return (str(channel) if channel else None), (str(user) if user else None)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)

