"""The Web API methods the fake Slack serves, as functions `(state, args) -> response dict`.

Contract: each function runs with `state.lock` held, validates like Slack (error codes from the method's
reference page), mutates `SlackState`, and returns the success shape of docs/slack-notes.md section 8.2. A
failure is raised as `ApiError(code, **extra)` and becomes `{"ok": false, "error": code, **extra}`; its
`status`/`headers` let a per-channel rate limit answer 429 with Retry-After. Arguments arrive JSON- or
form-encoded, so `Args` parses JSON-in-a-string fields (`blocks`, `view`, `files`) and "true"/"1" flags.
"""

from __future__ import annotations

import json
import math
import mimetypes
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from bot.sandbox.fake_blocks import MAX_MESSAGE_TEXT, BlockError, check_message, check_view
from bot.sandbox.fake_state import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    RESPONSE_URL_TTL,
    RESPONSE_URL_USES,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    TRIGGER_TTL,
    Channel,
    FileRecord,
    Json,
    Message,
    ResponseUrl,
    SlackState,
    Trigger,
    View,
    slack_id,
)


class ApiError(Exception):
    """An `ok: false` answer; `status` is 200 like Slack's, except for rate limiting (429)."""

    def __init__(self, error: str, *, status: int = 200, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(error)
        self.error, self.status, self.headers, self.extra = error, status, headers or {}, extra

    def body(self) -> Json:
        return {"ok": False, "error": self.error, **self.extra}


def invalid_arguments(*messages: str) -> ApiError:
    return ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {m}" for m in messages]})


class Args:
    """Request arguments, whichever encoding they came in."""

    def __init__(self, data: Json) -> None:
        self.data = data

    def text(self, name: str, default: str = "") -> str:
        value = self.data.get(name)
        return default if value is None else str(value)

    def maybe(self, name: str) -> str | None:
        value = self.data.get(name)
        return None if value in (None, "") else str(value)

    def need(self, name: str) -> str:
        value = self.maybe(name)
        if value is None:
            raise invalid_arguments(f"missing required field: {name}")
        return value

    def json(self, name: str) -> Any:
        """An object that JSON bodies carry as-is and form bodies carry as a JSON string."""
        value = self.data.get(name)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ApiError(f"invalid_{name}", detail=str(exc)) from exc
        return value

    def flag(self, name: str) -> bool:
        return str(self.data.get(name, "")).lower() in ("1", "true")

    def number(self, name: str, default: int) -> int:
        try:
            return int(self.data.get(name, default))
        except (TypeError, ValueError) as exc:
            raise invalid_arguments(f"must be an integer [json-pointer:/{name}]") from exc


Method = Callable[[SlackState, Args], Json]


# --- auth, users, conversations -------------------------------------------------------------------------------


def auth_test(s: SlackState, a: Args) -> Json:
    return {"ok": True, "url": f"https://{TEAM_DOMAIN}.slack.com/", "team": TEAM_NAME, "user": "billing-bot",
            "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}


def users_info(s: SlackState, a: Args) -> Json:
    user = s.users.get(a.text("user"))
    if user is None:
        raise ApiError("user_not_found")
    return {"ok": True, "user": user.as_json(include_locale=a.flag("include_locale"), now=s.clock())}


def users_lookup_by_email(s: SlackState, a: Args) -> Json:
    email = a.text("email").lower()
    for user in s.users.values():
        if user.email and user.email.lower() == email:
            return {"ok": True, "user": user.as_json(include_locale=False, now=s.clock())}
    raise ApiError("users_not_found")


def _channel(s: SlackState, ref: str) -> Channel:
    channel = s.channel(ref)
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def _readable(s: SlackState, ref: str) -> Channel:
    """The bot can read history only where it is a member (public channels too, unlike a user token)."""
    channel = _channel(s, ref)
    if BOT_USER_ID not in channel.members:
        raise ApiError("not_in_channel")
    return channel


def conversations_info(s: SlackState, a: Args) -> Json:
    return {"ok": True, "channel": _channel(s, a.text("channel")).as_json()}


def conversations_join(s: SlackState, a: Args) -> Json:
    channel = _channel(s, a.text("channel"))
    if channel.is_im or channel.is_private:
        raise ApiError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise ApiError("is_archived")
    if BOT_USER_ID in channel.members:
        return {"ok": True, "channel": channel.as_json(), "warning": "already_in_channel",
                "response_metadata": {"warnings": ["already_in_channel"]}}
    channel.members.append(BOT_USER_ID)
    return {"ok": True, "channel": channel.as_json()}


def conversations_open(s: SlackState, a: Args) -> Json:
    """The bot's DM with one user (created on first use, as Slack does); group DMs are not modelled."""
    users = [u for u in a.text("users").split(",") if u]
    if len(users) != 1:
        raise ApiError("not_implemented" if users else "users_list_not_supplied")
    if users[0] not in s.users:
        raise ApiError("user_not_found")
    channel = next((c for c in s.channels.values() if c.im_user == users[0]), None)
    if channel is None:
        channel = Channel(f"D_{users[0].removeprefix('U_')}", "", [users[0], BOT_USER_ID], im_user=users[0])
        s.channels[channel.id] = channel
    return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": channel.id}}


def conversations_members(s: SlackState, a: Args) -> Json:
    channel = _channel(s, a.text("channel"))
    return {"ok": True, "members": list(channel.members), "response_metadata": {"next_cursor": ""}}


def _window(messages: list[Message], a: Args) -> list[Message]:
    """`oldest`/`latest` bounds (exclusive unless `inclusive`), compared numerically as Slack does."""
    oldest, latest, inclusive = float(a.text("oldest", "0")), a.maybe("latest"), a.flag("inclusive")
    upper = float(latest) if latest else math.inf

    def inside(m: Message) -> bool:
        ts = float(m.ts)
        return (oldest <= ts <= upper) if inclusive else (oldest < ts < upper)

    return [m for m in messages if inside(m)]


def _page(messages: list[Message], a: Args, s: SlackState, *, key: str = "messages") -> Json:
    """A cursor page: the cursor is simply the offset of the next item."""
    limit = min(max(a.number("limit", 100), 1), 999)
    start = int(a.text("cursor") or 0)
    chunk = messages[start:start + limit]
    more = start + limit < len(messages)
    meta = a.flag("include_all_metadata")
    return {"ok": True, key: [s.with_replies(m).as_json(include_metadata=meta) for m in chunk],
            "has_more": more, "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


def conversations_history(s: SlackState, a: Args) -> Json:
    channel = _readable(s, a.text("channel"))
    newest_first = list(reversed(_window(s.top.get(channel.id, []), a)))
    return _page(newest_first, a, s) | {"pin_count": 0}


def conversations_replies(s: SlackState, a: Args) -> Json:
    channel = _readable(s, a.text("channel"))
    parent = s.find_message(channel.id, a.need("ts"))
    if parent is None:
        raise ApiError("thread_not_found")
    root_ts = parent.thread_ts or parent.ts
    root = s.find_message(channel.id, root_ts) or parent
    thread = [root, *s.threads.get((channel.id, root_ts), [])]
    return _page(_window(thread, a), a, s)


# --- messages -------------------------------------------------------------------------------------------------


def invalid_blocks(errors: list[BlockError]) -> ApiError:
    texts = [e.as_text() for e in errors]
    return ApiError("invalid_blocks", errors=texts, response_metadata={"messages": [f"[ERROR] {t}" for t in texts]})


def _postable(s: SlackState, ref: str) -> Channel:
    channel = _channel(s, ref)
    if channel.is_archived:
        raise ApiError("is_archived")
    if BOT_USER_ID not in channel.members:
        raise ApiError("not_in_channel")
    return channel


def _content(s: SlackState, a: Args, *, need_some: bool = True) -> tuple[str, Any, Any]:
    """text/blocks/attachments after Slack's checks: something to show, text size, Block Kit limits."""
    text, blocks, attachments = a.text("text"), a.json("blocks"), a.json("attachments")
    if need_some and not (text or blocks or attachments):
        raise ApiError("no_text")
    if len(text) > MAX_MESSAGE_TEXT:
        raise ApiError("msg_too_long")
    errors = check_message(blocks, attachments, file_ok=s.file_is_shared)
    if errors:
        raise invalid_blocks(errors)
    return text, blocks or None, attachments or None


def _throttle(s: SlackState, channel: str) -> None:
    """Optional `chat.postMessage` limit per channel (Slack: about 1/s): 429 + Retry-After when exceeded."""
    rate = s.rate_limit_per_channel
    if not rate:
        return
    now, last = s.clock(), s.last_post.get(channel)
    gap = 1.0 / rate
    if last is not None and now - last < gap:
        wait = max(1, math.ceil(gap - (now - last)))
        raise ApiError("ratelimited", status=429, headers={"Retry-After": str(wait)})
    s.last_post[channel] = now


def chat_post_message(s: SlackState, a: Args) -> Json:
    channel = _postable(s, a.text("channel"))
    text, blocks, attachments = _content(s, a)
    _throttle(s, channel.id)
    message = Message(channel.id, s.next_ts(), text, blocks, attachments, metadata=a.json("metadata"),
                      thread_ts=a.maybe("thread_ts"))
    s.add_message(message, broadcast=a.flag("reply_broadcast"))
    return {"ok": True, "channel": channel.id, "ts": message.ts, "message": message.as_json()}


def chat_post_ephemeral(s: SlackState, a: Args) -> Json:
    channel = _postable(s, a.text("channel"))
    user = a.need("user")
    if user not in channel.members:
        raise ApiError("user_not_in_channel")
    text, blocks, attachments = _content(s, a)
    message = Message(channel.id, s.next_ts(), text, blocks, attachments, thread_ts=a.maybe("thread_ts"))
    s.ephemeral.setdefault((channel.id, user), []).append(message)
    return {"ok": True, "message_ts": message.ts}


def _own_message(s: SlackState, a: Args, ts_arg: str = "ts") -> Message:
    channel = _channel(s, a.text("channel"))
    message = s.find_message(channel.id, a.text(ts_arg))
    if message is None:
        raise ApiError("message_not_found")
    if message.user != BOT_USER_ID:
        raise ApiError("cant_update_message" if ts_arg == "ts" else "cant_delete_message")
    return message


def chat_update(s: SlackState, a: Args) -> Json:
    """Fields left out keep their old value, as Slack documents for `blocks`/`attachments`."""
    message = _own_message(s, a)
    text, blocks, attachments = _content(s, a, need_some=False)
    message.text = text if "text" in a.data else message.text
    message.blocks = blocks if "blocks" in a.data else message.blocks
    message.attachments = attachments if "attachments" in a.data else message.attachments
    message.metadata = a.json("metadata") if "metadata" in a.data else message.metadata
    message.edited = True
    return {"ok": True, "channel": message.channel, "ts": message.ts, "text": message.text,
            "message": message.as_json()}


def chat_delete(s: SlackState, a: Args) -> Json:
    message = _own_message(s, a)
    s.remove_message(message.channel, message.ts)
    return {"ok": True, "channel": message.channel, "ts": message.ts}


def chat_get_permalink(s: SlackState, a: Args) -> Json:
    channel = _channel(s, a.text("channel"))
    message = s.find_message(channel.id, a.text("message_ts"))
    if message is None:
        raise ApiError("message_not_found")
    link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel.id}/p{message.ts.replace('.', '')}"
    if message.thread_ts and message.thread_ts != message.ts:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return {"ok": True, "channel": channel.id, "permalink": link}


# --- views ----------------------------------------------------------------------------------------------------


def _exchange(s: SlackState, trigger_id: str) -> Trigger | None:
    """A trigger is good once, within 3 s of issue; `strict_triggers=False` accepts any string."""
    trigger = s.triggers.get(trigger_id)
    if trigger is None:
        if s.strict_triggers:
            raise ApiError("invalid_trigger_id")
        return None
    if trigger.used or s.clock() - trigger.issued_at > TRIGGER_TTL:
        raise ApiError("expired_trigger_id")
    trigger.used = True
    return trigger


def _view_arg(s: SlackState, view: Any, *, kind: str, own: str | None = None) -> Json:
    """A valid view of the given type; its external_id must be unused by any other view."""
    errors = check_view(view, file_ok=s.file_is_shared)
    if not errors and view["type"] != kind:
        errors = [BlockError("/view/type", "invalid_value", f"must be `{kind}` for this method")]
    if errors:
        raise invalid_arguments(*(e.as_text() for e in errors))
    external = view.get("external_id")
    if external and any(v.payload.get("external_id") == external and v.id != own for v in s.views.values()):
        raise ApiError("duplicate_external_id")
    return dict(view)


def _echo(s: SlackState, view: Json, view_id: str, root: str, previous: str | None) -> Json:
    """The view as Slack returns it: the request plus id, hash, empty state and app identity."""
    defaults: Json = {"private_metadata": "", "callback_id": "", "external_id": "", "clear_on_close": False,
                      "notify_on_close": False}
    return defaults | view | {
        "id": view_id, "team_id": TEAM_ID, "state": {"values": {}}, "hash": s.new_hash(), "root_view_id": root,
        "previous_view_id": previous, "app_id": APP_ID, "app_installed_team_id": TEAM_ID, "bot_id": BOT_ID}


def _store(s: SlackState, view: Json, user: str | None, root: str | None = None,
           previous: str | None = None) -> Json:
    view_id = slack_id("V")
    payload = _echo(s, view, view_id, root or view_id, previous)
    s.views[view_id] = View(view_id, user, payload, root or view_id)
    return {"ok": True, "view": payload}


def views_open(s: SlackState, a: Args) -> Json:
    trigger = _exchange(s, a.need("trigger_id"))
    return _store(s, _view_arg(s, a.json("view"), kind="modal"), trigger.user if trigger else None)


def views_push(s: SlackState, a: Args) -> Json:
    """Onto the stack of the modal the trigger came from (else the user's latest); at most 3 views deep."""
    trigger = _exchange(s, a.need("trigger_id"))
    view = _view_arg(s, a.json("view"), kind="modal")
    user = trigger.user if trigger else None
    source = s.views.get(trigger.view_id or "") if trigger else None
    if source is None:
        modals = [v for v in s.views.values() if v.payload["type"] == "modal" and (user is None or v.user == user)]
        source = modals[-1] if modals else None
    if source is None:
        return _store(s, view, user)
    stack = [v for v in s.views.values() if v.root_view_id == source.root_view_id]
    if len(stack) >= 3:
        raise ApiError("push_limit_reached")
    return _store(s, view, user, root=source.root_view_id, previous=stack[-1].id)


def _find_view(s: SlackState, a: Args) -> View:
    view_id, external = a.maybe("view_id"), a.maybe("external_id")
    if view_id is None and external is None:
        raise invalid_arguments("must provide one of: view_id, external_id")
    for view in s.views.values():
        if view.id == view_id or (external is not None and view.payload.get("external_id") == external):
            return view
    raise ApiError("not_found")


def views_update(s: SlackState, a: Args) -> Json:
    current = _find_view(s, a)
    if a.maybe("hash") not in (None, current.hash):
        raise ApiError("hash_conflict")
    kind = str(current.payload["type"])
    new = _view_arg(s, a.json("view"), kind=kind, own=current.id)
    current.payload = _echo(s, {"external_id": current.payload.get("external_id", "")} | new, current.id,
                            current.root_view_id, current.payload.get("previous_view_id"))
    if kind == "home" and current.user:
        s.home[current.user] = current.payload
    return {"ok": True, "view": current.payload}


def views_publish(s: SlackState, a: Args) -> Json:
    """The Home tab of one user; its id stays the same across publishes, its hash changes every time."""
    user = a.need("user_id")
    if user not in s.users:
        raise ApiError("user_not_found")
    old = s.home.get(user)
    if old is not None and a.maybe("hash") not in (None, old["hash"]):
        raise ApiError("hash_conflict")
    view = _view_arg(s, a.json("view"), kind="home")
    if old is None:
        payload = _store(s, view, user)["view"]
    else:
        payload = _echo(s, view, str(old["id"]), str(old["id"]), None)
        s.views[str(old["id"])].payload = payload
    s.home[user] = payload
    return {"ok": True, "view": payload}


def view_submission_response(s: SlackState, view_id: str, action: str, view: Any) -> Json:
    """A view_submission ack's `response_action`: `update` replaces the submitted view, `push` stacks a new one;
    the view is checked like views.update/views.push would check it."""
    current = s.views.get(view_id)
    if current is None:
        raise ApiError("not_found")
    new = _view_arg(s, view, kind="modal", own=current.id if action == "update" else None)
    if action == "update":
        current.payload = _echo(s, new, current.id, current.root_view_id, current.payload.get("previous_view_id"))
        return current.payload
    if len([v for v in s.views.values() if v.root_view_id == current.root_view_id]) >= 3:
        raise ApiError("push_limit_reached")
    pushed: Json = _store(s, new, current.user, root=current.root_view_id, previous=current.id)["view"]
    return pushed


# --- files ----------------------------------------------------------------------------------------------------


def files_get_upload_url(s: SlackState, a: Args) -> Json:
    filename, length = a.need("filename"), a.number("length", 0)
    if length <= 0:
        raise ApiError("missing_argument")  # what the notes record for length=0
    if len(a.text("alt_txt")) > 1000:
        raise ApiError("alt_txt_too_large")
    record = FileRecord(slack_id("F"), filename, length, slack_id("", 24).lower(), a.maybe("alt_txt"),
                        a.maybe("snippet_type"), created=s.clock())
    s.files[record.id] = record
    return {"ok": True, "upload_url": f"{s.base_url}upload/v1/{record.upload_token}", "file_id": record.id}


def upload_bytes(s: SlackState, token: str, data: bytes, content_type: str) -> tuple[int, str]:
    """The raw POST to an upload URL (no auth). Multipart bodies are unwrapped to their file part."""
    record = next((f for f in s.files.values() if f.upload_token == token), None)
    if record is None:
        return 404, "Not Found"
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + data)
        parts = [p for p in message.iter_parts() if p.get_filename()] or list(message.iter_parts())
        payload = parts[0].get_payload(decode=True) if parts else b""
        data = payload if isinstance(payload, bytes) else b""
    record.content = data
    return 200, f"OK - {len(data)}"


def file_json(s: SlackState, record: FileRecord) -> Json:
    mimetype = mimetypes.guess_type(record.filename)[0] or "application/octet-stream"
    url = f"{s.base_url}files/{record.id}/{record.filename}"
    data: Json = {
        "id": record.id, "created": int(record.created), "timestamp": int(record.created), "name": record.filename,
        "title": record.title or record.filename, "mimetype": mimetype,
        "filetype": record.filename.rsplit(".", 1)[-1].lower() if "." in record.filename else "binary",
        "user": BOT_USER_ID, "size": len(record.content or b""), "mode": "hosted", "is_external": False,
        "url_private": url, "url_private_download": url,
        "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{BOT_USER_ID}/{record.id}/{record.filename}",
    }
    return data | ({"alt_txt": record.alt_txt} if record.alt_txt else {})


def _completed_files(s: SlackState, a: Args) -> list[FileRecord]:
    items = a.json("files")
    if not isinstance(items, list) or not items:
        raise invalid_arguments("missing required field: files")
    records = []
    for item in items:
        record = s.files.get(str(item.get("id"))) if isinstance(item, dict) else None
        if record is None or record.content is None:  # never uploaded: Slack cannot complete it
            raise ApiError("file_not_found")
        record.title = item.get("title") or record.filename
        records.append(record)
    return records


def files_complete_upload(s: SlackState, a: Args) -> Json:
    """Completes the upload and shares it: one message per channel, a thread reply when `thread_ts` is set."""
    records = _completed_files(s, a)
    targets = [c for c in dict.fromkeys([a.text("channel_id"), *a.text("channels").split(",")]) if c]
    thread_ts = a.maybe("thread_ts")
    if thread_ts and len(targets) != 1:
        raise invalid_arguments("thread_ts requires exactly one channel")
    channels = [_postable(s, c) for c in targets]
    comment, blocks = a.maybe("initial_comment"), a.json("blocks")
    for channel in channels:
        for record in records:
            record.channel, record.thread_ts, record.initial_comment = channel.id, thread_ts, comment
        share = Message(channel.id, s.next_ts(), comment or "", None if comment else blocks or None,
                        thread_ts=thread_ts, files=[file_json(s, r) for r in records])
        s.add_message(share)
    return {"ok": True, "files": [file_json(s, r) for r in records]}


# --- blocks.validate and response_url -------------------------------------------------------------------------


def blocks_validate(s: SlackState, a: Args) -> Json:
    """Exactly one of blocks/message/view; errors as `{pointer, code, message}` objects."""
    given = [name for name in ("blocks", "message", "view") if a.data.get(name) is not None]
    if len(given) != 1:
        raise invalid_arguments("must provide exactly one of: blocks, message, view")
    value = a.json(given[0])
    if given[0] == "view":
        errors = check_view(value, file_ok=s.file_is_shared)
    elif given[0] == "message":
        message = value if isinstance(value, dict) else {}
        errors = check_message(message.get("blocks"), message.get("attachments"), file_ok=s.file_is_shared)
    else:
        errors = check_message(value, None, file_ok=s.file_is_shared)
    if errors:
        return {"ok": False, "error": "invalid_blocks", "errors": [e.as_dict() for e in errors]}
    return {"ok": True}


def post_response_url(s: SlackState, url_id: str, body: Json) -> tuple[int, str]:
    """5 posts within 30 minutes of issue (or of first use, for URLs the fake did not mint); 404 after."""
    record = s.response_urls.setdefault(url_id, ResponseUrl(url_id, s.clock()))
    if s.clock() - record.issued_at > RESPONSE_URL_TTL:
        return 404, "expired_url"
    if len(record.posts) >= RESPONSE_URL_USES:
        return 404, "used_url"
    a = Args(body)
    try:
        text, blocks, attachments = _content(s, a, need_some=not a.flag("delete_original"))
    except ApiError as exc:
        return 400, exc.error
    record.posts.append(body)
    _apply_response(s, record, a, text, blocks, attachments)
    return 200, "ok"


def _apply_response(s: SlackState, record: ResponseUrl, a: Args, text: str, blocks: Any, attachments: Any) -> None:
    """What the user would see, when the URL was minted with its channel/user/message context."""
    original = s.find_message(record.channel, record.message_ts) if record.channel and record.message_ts else None
    if original is None and _ephemeral_original(s, record, a, text, blocks, attachments):
        return
    if a.flag("delete_original"):
        if original is not None:
            s.remove_message(original.channel, original.ts)
    elif a.flag("replace_original") and original is not None:
        original.text, original.blocks, original.attachments, original.edited = text, blocks, attachments, True
    elif a.text("response_type") == "in_channel" and record.channel:
        s.add_message(Message(record.channel, s.next_ts(), text, blocks, attachments,
                              thread_ts=a.maybe("thread_ts")))
    elif record.channel and record.user:
        s.ephemeral.setdefault((record.channel, record.user), []).append(
            Message(record.channel, s.next_ts(), text, blocks, attachments, thread_ts=a.maybe("thread_ts")))


def _ephemeral_original(s: SlackState, record: ResponseUrl, a: Args, text: str, blocks: Any,
                        attachments: Any) -> bool:
    """replace_/delete_original on an ephemeral source message acts on that ephemeral, as in Slack."""
    if not (record.channel and record.user and record.message_ts):
        return False
    shown = s.ephemeral.get((record.channel, record.user), [])
    original = next((m for m in shown if m.ts == record.message_ts), None)
    if original is None or not (a.flag("replace_original") or a.flag("delete_original")):
        return False
    if a.flag("delete_original"):
        shown.remove(original)
    else:
        original.text, original.blocks, original.attachments, original.edited = text, blocks, attachments, True
    return True


METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.getPermalink": chat_get_permalink,
    "views.open": views_open,
    "views.update": views_update,
    "views.push": views_push,
    "views.publish": views_publish,
    "files.getUploadURLExternal": files_get_upload_url,
    "files.completeUploadExternal": files_complete_upload,
    "conversations.info": conversations_info,
    "conversations.join": conversations_join,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
    "conversations.members": conversations_members,
    "conversations.open": conversations_open,
    "users.info": users_info,
    "users.lookupByEmail": users_lookup_by_email,
    "blocks.validate": blocks_validate,
}
