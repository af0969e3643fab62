"""The fake Slack's workspace: seed data, records and the id/timestamp minting Slack does.

Contract: `SlackState` is a plain in-memory store guarded by one re-entrant lock (`state.lock`); every mutation
happens with the lock held, by the method implementations in `bot.sandbox.fake_methods`. Records are mutable
while stored; readers get deep copies through `FakeSlack`'s accessors, so a test never sees a half-written
message. Time comes from an injectable `clock` (seconds since the epoch) so tests can age triggers and
response URLs without sleeping.
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
import string
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

Json = dict[str, Any]
Clock = Callable[[], float]

TEAM_ID, TEAM_NAME, TEAM_DOMAIN = "T0001", "Demo", "demo"
BOT_USER_ID, BOT_ID, APP_ID = "U_BOT", "B_BOT", "A_BILLING"
DEFAULT_SCOPES = ("chat:write", "commands", "files:write", "users:read", "users:read.email", "channels:read",
                  "channels:join", "groups:read", "im:write")

TRIGGER_TTL = 3.0  # seconds a trigger_id stays exchangeable
RESPONSE_URL_TTL = 30 * 60.0  # seconds a response_url accepts posts
RESPONSE_URL_USES = 5


@dataclass
class User:
    id: str
    name: str
    real_name: str
    tz: str = "UTC"
    locale: str = "en-US"
    email: str | None = None
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False
    deleted: bool = False

    def as_json(self, *, include_locale: bool, now: float) -> Json:
        """The `users.info` shape: tz_offset is computed for `now`, as Slack does (DST-aware)."""
        offset = datetime.fromtimestamp(now, ZoneInfo(self.tz)).utcoffset()
        data: Json = {
            "id": self.id, "team_id": TEAM_ID, "name": self.name, "real_name": self.real_name,
            "deleted": self.deleted, "tz": self.tz, "tz_label": self.tz,
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_admin": self.is_admin, "is_owner": self.is_owner, "is_primary_owner": self.is_owner,
            "is_bot": self.is_bot, "is_app_user": False,
            "profile": {"real_name": self.real_name, "display_name": self.name, "email": self.email,
                        "team": TEAM_ID},
        }
        if include_locale:
            data["locale"] = self.locale
        return data


@dataclass
class Channel:
    id: str
    name: str
    members: list[str] = field(default_factory=list)
    is_private: bool = False
    is_archived: bool = False
    im_user: str | None = None  # set for a DM channel: the human on the other side
    team: str = TEAM_ID  # the workspace it belongs to: other workspaces' tokens do not find it

    @property
    def is_im(self) -> bool:
        return self.im_user is not None

    def as_json(self) -> Json:
        data: Json = {"id": self.id, "created": 1_700_000_000, "is_archived": self.is_archived,
                      "is_member": BOT_USER_ID in self.members, "is_im": self.is_im}
        if self.im_user is not None:
            return {**data, "user": self.im_user, "is_user_deleted": False}
        return {**data, "name": self.name, "name_normalized": self.name, "is_channel": not self.is_private,
                "is_group": self.is_private, "is_private": self.is_private, "is_general": self.name == "general",
                "num_members": len(self.members)}


@dataclass
class Message:
    """A message as stored: top-level messages carry their thread's replies in `replies` when read."""

    channel: str
    ts: str
    text: str = ""
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    metadata: Json | None = None
    user: str = BOT_USER_ID
    bot_id: str | None = BOT_ID
    thread_ts: str | None = None
    files: list[Json] = field(default_factory=list)
    edited: bool = False
    replies: list[Message] = field(default_factory=list)

    def as_json(self, *, include_metadata: bool = True) -> Json:
        """The wire shape of `conversations.history`/`chat.postMessage`'s `message`."""
        data: Json = {"type": "message", "ts": self.ts, "text": self.text, "user": self.user, "team": TEAM_ID}
        if self.bot_id:
            data |= {"bot_id": self.bot_id, "app_id": APP_ID}
        optional = {"blocks": self.blocks, "attachments": self.attachments, "thread_ts": self.thread_ts,
                    "files": self.files or None, "metadata": self.metadata if include_metadata else None}
        data |= {k: v for k, v in optional.items() if v is not None}
        if self.edited:
            data["edited"] = {"user": self.user, "ts": self.ts}
        if self.replies:
            data |= {"reply_count": len(self.replies), "latest_reply": self.replies[-1].ts}
        return data


@dataclass
class View:
    """An opened, pushed or published view; `payload` is what Slack echoes (id, hash, state, ...)."""

    id: str
    user: str | None
    payload: Json
    root_view_id: str

    @property
    def hash(self) -> str:
        return str(self.payload["hash"])


@dataclass
class FileRecord:
    id: str
    filename: str
    length: int
    upload_token: str
    alt_txt: str | None = None
    snippet_type: str | None = None
    title: str | None = None
    content: bytes | None = None  # None until the raw POST to the upload URL arrives
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    created: float = 0.0


@dataclass
class ResponseUrl:
    id: str
    issued_at: float
    channel: str | None = None
    user: str | None = None
    message_ts: str | None = None  # the message an action came from, for replace_original/delete_original
    posts: list[Json] = field(default_factory=list)


@dataclass
class Trigger:
    id: str
    issued_at: float
    user: str | None
    view_id: str | None = None  # the modal an action came from, so views.push knows the stack
    used: bool = False


@dataclass(frozen=True)
class Call:
    """One request the fake received, after it was answered (`status` 0 means the connection was dropped)."""

    method: str
    headers: dict[str, str]
    body: Json
    at: float
    status: int = 200
    error: str | None = None
    detail: str | None = None  # Slack's explanation of `error`, e.g. invalid_blocks' json-pointers
    path: str = ""  # the rest of the path after the method: a response_url's or an upload's id
    answer_lost: bool = False  # the call WAS carried out; the fault replaced its answer (`after=True`)


def default_users() -> list[User]:
    return [
        User("U_ADMIN", "alice", "Alice Admin", "America/New_York", "en-US", "alice@example.com",
             is_admin=True, is_owner=True),
        User("U_VIEWER", "bruno", "Bruno Viewer", "Europe/Berlin", "de-DE", "bruno@example.com"),
        User("U_NOBODY", "carla", "Carla Nobody", "America/Sao_Paulo", "pt-BR", "carla@example.com"),
        User(BOT_USER_ID, "billing-bot", "Billing Bot", is_bot=True),
    ]


def default_channels() -> list[Channel]:
    """#general, #finance, #eng-costs with everyone and the bot; #random without the bot; one DM per human."""
    humans = ["U_ADMIN", "U_VIEWER", "U_NOBODY"]
    return [
        Channel("C_GENERAL", "general", [*humans, BOT_USER_ID]),
        Channel("C_FINANCE", "finance", [*humans, BOT_USER_ID]),
        Channel("C_ENG", "eng-costs", [*humans, BOT_USER_ID]),
        Channel("C_NOTIN", "random", list(humans)),
        *(Channel(f"D_{u.removeprefix('U_')}", "", [u, BOT_USER_ID], im_user=u) for u in humans),
    ]


_ID_ALPHABET = string.ascii_uppercase + string.digits


def slack_id(prefix: str, length: int = 10) -> str:
    """Slack-style ids: `F0A1B2C3D4E`, `V...`; files must match `^F[A-Z0-9]{8,}$` for slack_file blocks."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


class SlackState:
    """Everything the fake remembers; all access under `lock`."""

    def __init__(self, users: Iterable[User], channels: Iterable[Channel], clock: Clock) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified after every answered request
        self.clock = clock
        self.base_url = "http://127.0.0.1/"
        self.scopes: tuple[str, ...] = DEFAULT_SCOPES
        self.strict_triggers = True
        self.rate_limit_per_channel: float | None = None  # chat.postMessage per channel per second
        self._seed_users, self._seed_channels = list(users), list(channels)
        self.clear()

    def clear(self) -> None:
        """Back to the seeds: every message, view, file, trigger and call is forgotten."""
        self.users = {u.id: copy.deepcopy(u) for u in self._seed_users}
        self.channels = {c.id: copy.deepcopy(c) for c in self._seed_channels}
        self.top: dict[str, list[Message]] = {}  # channel -> top-level messages, oldest first
        self.threads: dict[tuple[str, str], list[Message]] = {}  # (channel, parent ts) -> replies
        self.ephemeral: dict[tuple[str, str], list[Message]] = {}
        self.views: dict[str, View] = {}
        self.home: dict[str, Json] = {}
        self.files: dict[str, FileRecord] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.triggers: dict[str, Trigger] = {}
        self.calls: list[Call] = []
        self.last_post: dict[str, float] = {}  # channel -> time of the last accepted chat.postMessage
        self.token_teams: dict[str, str] = {}  # bot tokens of other workspaces (FakeSlack.install); others: TEAM_ID
        self.caller_team = TEAM_ID  # the workspace of the call being answered (set under the lock)
        self._last_us = 0

    def next_ts(self) -> str:
        """`"<sec>.<6 digits>"`, strictly increasing even when the clock stands still or goes back."""
        self._last_us = max(self._last_us + 1, int(self.clock() * 1_000_000))
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def new_hash(self) -> str:
        return f"{int(self.clock())}.{secrets.token_hex(4)}"

    def channel(self, ref: str) -> Channel | None:
        """A channel of the calling workspace by id, by `#name`/name, or a user id standing for the DM with that
        user (as Slack allows)."""
        if ref in self.channels:
            found = self.channels[ref]
            return found if found.team == self.caller_team else None
        name = ref.removeprefix("#")
        for channel in self.channels.values():
            if channel.team == self.caller_team and \
                    ((channel.name and channel.name == name) or (ref in self.users and channel.im_user == ref)):
                return channel
        return None

    def find_message(self, channel: str, ts: str) -> Message | None:
        """A top-level message or a thread reply by its ts."""
        for message in self.top.get(channel, []):
            if message.ts == ts:
                return message
        for (chan, _), replies in self.threads.items():
            for reply in replies if chan == channel else []:
                if reply.ts == ts:
                    return reply
        return None

    def with_replies(self, message: Message) -> Message:
        """A copy of a top-level message carrying its thread's replies (empty for a reply)."""
        is_parent = message.thread_ts in (None, message.ts)
        replies = self.threads.get((message.channel, message.ts), []) if is_parent else []
        return copy.deepcopy(dataclasses.replace(message, replies=list(replies)))

    def add_message(self, message: Message, *, broadcast: bool = False) -> None:
        """Top level, or a reply under its thread's parent (a reply to a reply joins the parent's thread)."""
        if message.thread_ts is None:
            self.top.setdefault(message.channel, []).append(message)
            return
        parent = self.find_message(message.channel, message.thread_ts)
        if parent is not None and parent.thread_ts not in (None, parent.ts):
            message.thread_ts = parent.thread_ts
        elif parent is not None:
            parent.thread_ts = parent.ts  # Slack marks a parent by thread_ts == ts once it has replies
        # A thread_ts naming no message is accepted but the reply shows up nowhere in the channel, as in Slack.
        self.threads.setdefault((message.channel, message.thread_ts), []).append(message)
        if broadcast:
            self.top.setdefault(message.channel, []).append(message)

    def remove_message(self, channel: str, ts: str) -> bool:
        before = sum(len(v) for v in self.top.values()) + sum(len(v) for v in self.threads.values())
        self.top[channel] = [m for m in self.top.get(channel, []) if m.ts != ts]
        for key in [k for k in self.threads if k[0] == channel]:
            self.threads[key] = [m for m in self.threads[key] if m.ts != ts]
        self.threads.pop((channel, ts), None)
        after = sum(len(v) for v in self.top.values()) + sum(len(v) for v in self.threads.values())
        return after < before

    def file_is_shared(self, file_id: str) -> bool:
        """slack_file image blocks only accept files that were uploaded and shared into a channel."""
        record = self.files.get(file_id)
        return record is not None and record.content is not None and record.channel is not None
