"""A local fake of the Slack Web API that behaves like Slack, for tests and the browser sandbox.

Contract:
- `FakeSlack().start()` (or `with FakeSlack() as fake:`) serves on `127.0.0.1:<ephemeral port>` from a daemon
  thread; pass `fake.url` as `WebClient(base_url=...)`. Every URL it hands out (upload URLs, response URLs,
  `url_private`) points back at itself.
- `POST /<method>` (GET too) for the methods in `bot.sandbox.fake_methods.METHODS`, JSON or form bodies,
  `Authorization: Bearer xoxb-…|xoxp-…` required (`not_authed`/`invalid_auth`), `unknown_method` otherwise.
  Unauthenticated: `POST /upload/v1/<token>` (raw file bytes), `POST /response_url/<id>` (5 uses, 30 minutes,
  then 404 with a text body), `GET /files/<id>/<name>` (the bytes), `GET /_test/state` (JSON snapshot).
- Slack's rules are modelled where a bot can trip on them: Block Kit limits (`invalid_blocks`; views answer
  `invalid_arguments`), `no_text`, `msg_too_long`, `channel_not_found`, `not_in_channel`, trigger ids
  (`invalid_trigger_id`, `expired_trigger_id` after 3 s or a second use), view hashes (`hash_conflict`).
- Faults on demand: `fail_next(...)` scripts 429/5xx/ok:false/dropped connections, `chaos(...)` injects them at
  random, `rate_limit_per_channel` throttles `chat.postMessage`. A 5xx or a dropped connection may come before
  the call is carried out or after it (`after=True`, chaos kinds `*_after`): then the message IS posted and only
  the answer is lost, the case that makes a blind retry post twice.
- Extension point: `mount(segment, route)` serves every path whose first segment is `segment` ("" for `/`) with
  `route(verb, rest, query, headers, body) -> Page`, outside the state lock and unrecorded; the browser sandbox
  (`bot.sandbox.ui`) adds its pages this way. `start(port=...)` picks a fixed port (default: ephemeral).
- Other workspaces: `install(team, bot_token)` makes calls with that token act in `team`; channels added with
  `Channel(team=...)` are found only by their own workspace's tokens (`channel_not_found` for the others), as
  Slack answers a bot of another workspace.
- In-process accessors return deep copies taken under the state lock; `wait_for`/`wait_for_calls` block until
  the background listeners of a Bolt app have made their calls. A call is recorded after it was answered, so
  when `wait_for_calls` returns, the state already reflects it.
"""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from bot.sandbox.fake_methods import (
    METHODS,
    ApiError,
    Args,
    file_json,
    post_response_url,
    upload_bytes,
    view_submission_response,
)
from bot.sandbox.fake_state import (
    TEAM_ID,
    Call,
    Channel,
    Clock,
    FileRecord,
    Json,
    Message,
    ResponseUrl,
    SlackState,
    Trigger,
    User,
    View,
    default_channels,
    default_users,
    slack_id,
)

NO_AUTH_METHODS = frozenset({"blocks.validate"})  # Slack documents it as needing no token
#: What `chaos()` can inject: a 429 (never carried out), a 500 or a dropped connection before the call is carried
#: out, and the same two after it was (the message exists, the sender cannot know).
CHAOS_KINDS = ("ratelimited", "server_error", "drop", "server_error_after", "drop_after")


@dataclass
class _Fault:
    """A scripted failure: a status (429 rate limit, 5xx HTML page, else ok:false JSON) or a dropped connection;
    `after`: the call is carried out first and only its answer is replaced (5xx and drops only)."""

    status: int
    error: str | None = None
    retry_after: int = 1
    drop: bool = False
    times: int = 1
    after: bool = False


@dataclass(frozen=True)
class Page:
    """What a mounted route answers."""

    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


#: `(verb, path after the mounted segment, query string, lower-cased headers, raw body) -> Page`
Route = Callable[[str, str, str, dict[str, str], bytes], Page]


@dataclass
class _Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    error: str | None = None  # the Slack error code, for the call log
    detail: str | None = None  # Slack's explanation of the error (invalid_blocks pointers), for the call log

    @classmethod
    def of_json(cls, data: Json, status: int = 200, headers: dict[str, str] | None = None) -> _Reply:
        error = None if data.get("ok", True) else str(data.get("error"))
        messages = data.get("errors") or (data.get("response_metadata") or {}).get("messages") or []
        detail = "; ".join(str(m) for m in messages) or None if error else None
        return cls(status, json.dumps(data).encode(), headers=headers or {}, error=error, detail=detail)

    @classmethod
    def of_text(cls, status: int, text: str) -> _Reply:
        return cls(status, text.encode(), "text/plain; charset=utf-8", error=None if status == 200 else text)


def _fault_reply(fault: _Fault) -> _Reply:
    if fault.drop:
        return _Reply(status=0, drop=True, error="dropped")
    if fault.status == 429:
        return _Reply.of_json({"ok": False, "error": fault.error or "ratelimited"}, 429,
                              {"Retry-After": str(fault.retry_after)})
    if fault.status >= 500:
        try:
            reason = HTTPStatus(fault.status).phrase
        except ValueError:
            reason = "Error"
        page = f"<html><head><title>{fault.status} {reason}</title></head><body><h1>{reason}</h1></body></html>"
        return _Reply(fault.status, page.encode(), "text/html; charset=utf-8", error=f"http_{fault.status}")
    return _Reply.of_json({"ok": False, "error": fault.error or "fatal_error"}, fault.status)


def _token(headers: dict[str, str], body: Json) -> str:
    """Bearer token in the header (what slack_sdk sends) or a `token` field (legacy clients)."""
    header = headers.get("authorization", "")
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else str(body.get("token", ""))


def parse_body(raw: bytes, content_type: str, query: str) -> Json:
    """JSON when it says so or looks like it (as bolt's mock does), else form fields; the query string too."""
    data: Json = dict(parse_qsl(query, keep_blank_values=True))
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type or text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            parsed = {}
        return data | (parsed if isinstance(parsed, dict) else {})
    return data | dict(parse_qsl(text, keep_blank_values=True))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: test output should show the bot's logs, not one line per fake request

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.fake.handle(self.command, path, query, headers, raw)
        if reply.drop:
            self.close_connection = True  # no status line at all: the client sees RemoteDisconnected
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlack, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake


class FakeSlack:
    """The fake workspace `T0001`/"Demo" and its Web API; see the module docstring for the contract."""

    def __init__(self, *, users: Iterable[User] | None = None, channels: Iterable[Channel] | None = None,
                 scopes: Iterable[str] | None = None, strict_triggers: bool = True,
                 rate_limit_per_channel: float | None = None, clock: Clock = time.time) -> None:
        self._state = SlackState(default_users() if users is None else users,
                                 default_channels() if channels is None else channels, clock)
        self._state.strict_triggers = strict_triggers
        self._state.rate_limit_per_channel = rate_limit_per_channel
        if scopes is not None:
            self._state.scopes = tuple(scopes)
        self._faults: dict[str, list[_Fault]] = {}
        self._chaos: tuple[float, random.Random, tuple[str, ...], int] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes: dict[str, Route] = {}

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeSlack:
        self._server = _Server(self, port)
        host, port = self._server.server_address[:2]
        self._state.base_url = f"http://{host!s}:{port}/"
        # A short poll interval: shutdown() waits up to one interval, and tests start and stop many fakes.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, ending with "/", for `WebClient(base_url=...)`."""
        return self._state.base_url

    # --- configuration --------------------------------------------------------------------------------------

    @property
    def rate_limit_per_channel(self) -> float | None:
        return self._state.rate_limit_per_channel

    @rate_limit_per_channel.setter
    def rate_limit_per_channel(self, rate: float | None) -> None:
        with self._state.lock:
            self._state.rate_limit_per_channel = rate
            self._state.last_post.clear()

    @property
    def strict_triggers(self) -> bool:
        return self._state.strict_triggers

    @strict_triggers.setter
    def strict_triggers(self, strict: bool) -> None:
        self._state.strict_triggers = strict

    def mount(self, segment: str, route: Route) -> None:
        """Serve paths starting with `/<segment>` (`""`: `/` itself) from `route`; never a Web API method name."""
        if segment in METHODS or segment in ("upload", "response_url", "files", "_test"):
            raise ValueError(f"/{segment} is the fake Slack's own")
        self._routes[segment] = route

    def add_user(self, user: User) -> None:
        with self._state.lock:
            self._state.users[user.id] = user

    def add_channel(self, channel: Channel) -> None:
        with self._state.lock:
            self._state.channels[channel.id] = channel

    def install(self, team: str, bot_token: str) -> None:
        """Another workspace with the app installed: calls with `bot_token` act in `team`, and see only the
        channels added with that `team` (and the default workspace's tokens never see those)."""
        with self._state.lock:
            self._state.token_teams[bot_token] = team

    def fail_next(self, method: str, *, status: int | None = None, retry_after: int = 1, error: str | None = None,
                  times: int = 1, drop: bool = False, after: bool = False) -> None:
        """Script the next `times` answers to `method` ("upload" and "response_url" name the raw endpoints).

        status defaults to 200 when an `error` is given (an `ok: false` answer), else 429 (rate limited).
        `after=True` carries the call out and then drops the connection or answers the 5xx `status` instead.
        """
        resolved = status if status is not None else (200 if error else 429)
        if after and not (drop or resolved >= 500):
            raise ValueError("only a 5xx or a dropped connection can come after the call was carried out")
        with self._state.lock:
            self._faults.setdefault(method, []).append(_Fault(resolved, error, retry_after, drop, times, after))

    def chaos(self, rate: float = 0.3, *, seed: int | None = None, kinds: Iterable[str] = CHAOS_KINDS,
              retry_after: int = 0) -> None:
        """Fail a `rate` fraction of Web API calls with one of `kinds` (see `CHAOS_KINDS`), reproducibly for a
        seed; rate 0 stops. `retry_after` is the seconds a chaos 429 asks for."""
        unknown = set(kinds) - set(CHAOS_KINDS)
        if unknown:
            raise ValueError(f"unknown chaos kinds {sorted(unknown)}; known: {', '.join(CHAOS_KINDS)}")
        with self._state.lock:
            self._chaos = (rate, random.Random(seed), tuple(kinds), retry_after) if rate > 0 else None

    # --- inbound helpers ------------------------------------------------------------------------------------

    def issue_trigger_id(self, user_id: str = "U_ADMIN", *, view_id: str | None = None) -> str:
        """A trigger id as Slack puts in an interaction payload: good for one views.open/push within 3 s."""
        with self._state.lock:
            trigger = Trigger(f"{int(self._state.clock())}.{random.randint(10**9, 10**10)}.{slack_id('', 32)}"
                              .lower(), self._state.clock(), user_id, view_id)
            self._state.triggers[trigger.id] = trigger
            return trigger.id

    def response_url(self, *, channel: str | None = None, user: str | None = None,
                     message_ts: str | None = None) -> str:
        """A fresh response_url; with context, posts to it show up as messages, ephemerals or edits."""
        with self._state.lock:
            url_id = slack_id("", 16).lower()
            self._state.response_urls[url_id] = ResponseUrl(url_id, self._state.clock(), channel, user, message_ts)
            return f"{self.url}response_url/{url_id}"

    # --- the request path -----------------------------------------------------------------------------------

    def handle(self, verb: str, path: str, query: str, headers: dict[str, str], raw: bytes) -> _Reply:
        """Answer one HTTP request and record it; runs on a server thread."""
        content_type = headers.get("content-type", "")
        kind, _, rest = path.lstrip("/").partition("/")
        route = self._routes.get(kind)
        if route is not None:  # outside the lock: a page may wait on the bot, which calls this server meanwhile
            page = route(verb, rest, query, headers, raw)
            return _Reply(page.status, page.body, page.content_type, dict(page.headers))
        key = {"upload": "upload", "response_url": "response_url"}.get(kind, kind)
        body = {"size": len(raw)} if key == "upload" else parse_body(raw, content_type, query)
        with self._state.changed:
            fault = self._fault(key)
            if fault is None or fault.after:
                reply = self._route(verb, key, rest, headers, raw, body)
            if fault is not None:
                reply = _fault_reply(fault)
            if key not in ("_test", "files"):
                self._state.calls.append(Call(key, headers, body, self._state.clock(), reply.status, reply.error,
                                              reply.detail, rest, answer_lost=fault is not None and fault.after))
            self._state.changed.notify_all()
        return reply

    def _fault(self, key: str) -> _Fault | None:
        queue = self._faults.get(key)
        if queue:
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault
        if self._chaos is None or key not in METHODS:
            return None
        rate, rng, kinds, retry_after = self._chaos
        if rng.random() >= rate:
            return None
        kind = rng.choice(kinds)
        return _Fault({"ratelimited": 429, "server_error": 500, "server_error_after": 500}.get(kind, 503), None,
                      retry_after, drop=kind.startswith("drop"), after=kind.endswith("_after"))

    def _route(self, verb: str, key: str, rest: str, headers: dict[str, str], raw: bytes, body: Json) -> _Reply:
        if key == "upload":
            return _Reply.of_text(*upload_bytes(self._state, rest.removeprefix("v1/"), raw,
                                                headers.get("content-type", "")))
        if key == "response_url":
            return _Reply.of_text(*post_response_url(self._state, rest, body))
        if key == "_test" and rest == "state":
            return _Reply.of_json(self.state_json())
        if key == "files" and verb == "GET":
            return self._file_bytes(rest.partition("/")[0])
        return self._web_api(key, headers, body)

    def _web_api(self, method: str, headers: dict[str, str], body: Json) -> _Reply:
        scopes = {"x-oauth-scopes": ",".join(self._state.scopes), "x-accepted-oauth-scopes": ""}
        implementation = METHODS.get(method)
        if implementation is None:
            return _Reply.of_json({"ok": False, "error": "unknown_method"}, headers=scopes)
        auth = self._auth_error(headers, body) if method not in NO_AUTH_METHODS else None
        if auth is not None:
            return _Reply.of_json({"ok": False, "error": auth})
        self._state.caller_team = self._state.token_teams.get(_token(headers, body), TEAM_ID)
        try:
            return _Reply.of_json(implementation(self._state, Args(body)), headers=scopes)
        except ApiError as exc:
            return _Reply.of_json(exc.body(), exc.status, scopes | exc.headers)
        finally:
            self._state.caller_team = TEAM_ID

    @staticmethod
    def _auth_error(headers: dict[str, str], body: Json) -> str | None:
        token = _token(headers, body)
        if not token:
            return "not_authed"
        return None if token.startswith(("xoxb-", "xoxp-")) else "invalid_auth"

    def _file_bytes(self, file_id: str) -> _Reply:
        record = self._state.files.get(file_id)
        if record is None or record.content is None:
            return _Reply.of_text(404, "file_not_found")
        mimetype = str(file_json(self._state, record)["mimetype"])
        return _Reply(200, record.content, mimetype)

    def post_as_user(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> Message:
        """A message a person typed (not a bot): what the sandbox's composer posts."""
        with self._state.changed:
            message = Message(channel, self._state.next_ts(), text, user=user, bot_id=None, thread_ts=thread_ts)
            self._state.add_message(message)
            self._state.changed.notify_all()
            return copy.deepcopy(message)

    def post_as_bot(self, message: Message, *, ephemeral_to: str | None = None) -> Message:
        """What Slack itself shows for the app, e.g. an ack body: a message, or an ephemeral one for one user."""
        with self._state.changed:
            message.ts = self._state.next_ts()
            if ephemeral_to is None:
                self._state.add_message(message)
            else:
                self._state.ephemeral.setdefault((message.channel, ephemeral_to), []).append(message)
            self._state.changed.notify_all()
            return copy.deepcopy(message)

    def view_submission_response(self, view_id: str, action: str, view: Any) -> View:
        """Apply a submission ack's `update`/`push` as Slack does; raises `ApiError` for a view Slack would refuse."""
        with self._state.changed:
            payload = view_submission_response(self._state, view_id, action, view)
            self._state.changed.notify_all()
            return copy.deepcopy(self._state.views[str(payload["id"])])

    def trigger_user(self, trigger_id: str) -> str | None:
        """The user a trigger id was issued for (to place an error about it)."""
        with self._state.lock:
            trigger = self._state.triggers.get(trigger_id)
            return trigger.user if trigger else None

    def response_url_context(self, url_or_id: str) -> tuple[str | None, str | None]:
        """(channel, user) a response_url was minted for."""
        url_id = url_or_id.rstrip("/").rsplit("/", 1)[-1]
        with self._state.lock:
            record = self._state.response_urls.get(url_id)
            return (record.channel, record.user) if record else (None, None)

    def channels(self) -> list[Channel]:
        found: list[Channel] = self._read(lambda s: list(s.channels.values()))
        return found

    def users(self) -> list[User]:
        found: list[User] = self._read(lambda s: list(s.users.values()))
        return found

    # --- accessors (deep copies, taken under the lock) ------------------------------------------------------

    def _read(self, reader: Callable[[SlackState], Any]) -> Any:
        with self._state.lock:
            return copy.deepcopy(reader(self._state))

    def calls(self, method: str | None = None, *, since: int = 0) -> list[Call]:
        """Every request answered so far (Web API methods by name, "upload", "response_url"), oldest first;
        `since` skips the first calls of the log (for readers that follow it)."""
        found: list[Call] = self._read(lambda s: [c for c in s.calls[since:] if method in (None, c.method)])
        return found

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel, oldest first, each with its thread in `.replies`."""
        found: list[Message] = self._read(lambda s: [s.with_replies(m) for m in s.top.get(channel, [])])
        return found

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """The replies of one thread (without the parent), oldest first."""
        found: list[Message] = self._read(lambda s: list(s.threads.get((channel, thread_ts), [])))
        return found

    def ephemeral(self, channel: str, user: str) -> list[Message]:
        found: list[Message] = self._read(lambda s: list(s.ephemeral.get((channel, user), [])))
        return found

    def views(self) -> list[View]:
        """Every opened, pushed and published view in creation order (updates change them in place)."""
        found: list[View] = self._read(lambda s: list(s.views.values()))
        return found

    def view(self, view_id: str) -> View | None:
        found: View | None = self._read(lambda s: s.views.get(view_id))
        return found

    def home_view(self, user: str) -> Json | None:
        found: Json | None = self._read(lambda s: s.home.get(user))
        return found

    def files(self) -> list[FileRecord]:
        found: list[FileRecord] = self._read(lambda s: list(s.files.values()))
        return found

    def file(self, file_id: str) -> FileRecord | None:
        found: FileRecord | None = self._read(lambda s: s.files.get(file_id))
        return found

    def response_posts(self, url_or_id: str) -> list[Json]:
        """The JSON bodies posted to one response_url, in order (rejected posts are not included)."""
        url_id = url_or_id.rstrip("/").rsplit("/", 1)[-1]
        found: list[Json] = self._read(lambda s: s.response_urls[url_id].posts if url_id in s.response_urls else [])
        return found

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        """Block until `predicate()` holds, re-checking after every request and every 50 ms."""
        deadline = time.monotonic() + timeout
        with self._state.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake Slack: {what} not met within {timeout} s")
                self._state.changed.wait(min(remaining, 0.05))

    def wait_for_calls(self, method: str, n: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until `method` was called at least `n` times; returns those calls."""
        def enough() -> bool:
            return sum(1 for c in self._state.calls if c.method == method) >= n

        self.wait_for(enough, timeout, f"{n} call(s) to {method}")
        return self.calls(method)

    def reset(self) -> None:
        """Back to the seeds, with no scripted faults and chaos off; the server keeps running."""
        with self._state.lock:
            self._state.clear()
            self._faults.clear()
            self._chaos = None

    def state_json(self) -> Json:
        """The snapshot `GET /_test/state` serves: channels with messages and threads, views, files, posts."""
        with self._state.lock:
            s = self._state
            return {
                "team": {"id": "T0001", "name": "Demo"},
                "channels": {c.id: {**c.as_json(), "messages": [
                    {**s.with_replies(m).as_json(), "replies": [r.as_json() for r in s.with_replies(m).replies]}
                    for m in s.top.get(c.id, [])]} for c in s.channels.values()},
                "ephemeral": [{"channel": ch, "user": u, "messages": [m.as_json() for m in msgs]}
                              for (ch, u), msgs in s.ephemeral.items()],
                "views": [{"user": v.user, **v.payload} for v in s.views.values()],
                "home": dict(s.home),
                "files": [{**file_json(s, f), "channel": f.channel, "thread_ts": f.thread_ts}
                          for f in s.files.values() if f.content is not None],
                "response_urls": {r.id: r.posts for r in s.response_urls.values()},
                "calls": [{"method": c.method, "status": c.status, "error": c.error, "at": c.at} for c in s.calls],
            }
