"""The sandbox's browser UI, served by the fake Slack itself (`FakeSlack.mount`).

Contract — pages and JSON endpoints on the fake's port (e.g. http://127.0.0.1:3000):
- `GET /?as=<user>&c=<channel>|home` the workspace page (server-rendered from `templates/workspace.html`);
  `GET /static/<file>` its script and style.
- `GET /ui/feed?as=&c=` what that user sees there now: `{"feed": html, "modal": {id, hash, html} | null,
  "home": html | null}`; the page polls it every second.
- `POST /ui/send {as, c, text, thread_ts?}` the composer: `/billing …` becomes a signed slash command (through
  `bot.sandbox.relay.Relay`), anything else a message from that person.
- `POST /ui/action {as, c?, ts?, ephemeral?, view?, act, values?}` a click, select or date pick;
  `POST /ui/submit {as, view, values}` / `POST /ui/close {as, view}` a modal's buttons;
  `POST /ui/home {as}` opening the Home tab (`app_home_opened`). Each answers the relay's `Outcome` as JSON.
A request never waits on the bot longer than Slack's 3-second ack deadline (the relay enforces it).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.parsing import EXAMPLES, SUBCOMMANDS
from bot.sandbox.fake_slack import FakeSlack, Page
from bot.sandbox.fake_state import BOT_USER_ID, Message
from bot.sandbox.relay import COMMAND, Outcome, Relay
from bot.sandbox.ui_render import Item, Lookup, home_html, item_html, modal_html

HERE = Path(__file__).parent
STATIC = HERE / "static"
HOME = "home"  # the pseudo-channel of the app's Home tab


def _json_page(data: Any, status: int = 200) -> Page:
    return Page(status, "application/json; charset=utf-8", json.dumps(data).encode(),
                {"Cache-Control": "no-store"})


class SandboxUI:
    """Routes of the browser UI; `roles` labels the people of the user switcher (a function is asked on every
    page, so a role granted with `/billing access` shows after a reload)."""

    def __init__(self, fake: FakeSlack, relay: Relay, *,
                 roles: Mapping[str, str] | Callable[[], Mapping[str, str]]) -> None:
        self.fake = fake
        self.relay = relay
        self._roles = roles
        self._templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                      autoescape=select_autoescape(["html"]))

    @property
    def roles(self) -> dict[str, str]:
        return dict(self._roles() if callable(self._roles) else self._roles)

    def mount(self) -> None:
        self.fake.mount("", self.page)
        self.fake.mount("static", self.static)
        self.fake.mount("ui", self.api)
        self.fake.mount("favicon.ico", lambda *request: Page(204, "image/x-icon", b""))  # not a Web API call

    # --- pages -------------------------------------------------------------------------------------------------

    def page(self, verb: str, rest: str, query: str, headers: dict[str, str], body: bytes) -> Page:
        if rest:
            return Page(404, "text/plain; charset=utf-8", b"not found")
        args = {k: v[-1] for k, v in parse_qs(query).items()}
        user, channel = self._who(args)
        roles = self.roles
        people = [u for u in self.fake.users() if not u.is_bot and u.id in roles]
        channels = [c for c in self.fake.channels() if not c.is_im]
        dm = self._dm(user)
        page = self._templates.get_template("workspace.html").render(
            user=user, channel=channel, dm=dm, people=people, channels=channels, roles=roles,
            current=next((u for u in people if u.id == user), None), home=HOME,
            channel_name=self._channel_title(channel, dm),
            subcommands=[{"name": k, "about": v, "example": EXAMPLES.get(k, f"{COMMAND} {k}")}
                         for k, v in SUBCOMMANDS.items()])
        return Page(200, "text/html; charset=utf-8", page.encode(), {"Cache-Control": "no-store"})

    def static(self, verb: str, rest: str, query: str, headers: dict[str, str], body: bytes) -> Page:
        names = {p.name: p for p in STATIC.iterdir() if p.is_file()}
        path = names.get(rest)
        if path is None:
            return Page(404, "text/plain; charset=utf-8", b"not found")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Page(200, f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith("javascript")
                    else kind, path.read_bytes())

    # --- the JSON API ------------------------------------------------------------------------------------------

    def api(self, verb: str, rest: str, query: str, headers: dict[str, str], body: bytes) -> Page:
        if verb == "GET" and rest == "feed":
            return _json_page(self.feed({k: v[-1] for k, v in parse_qs(query).items()}))
        if verb != "POST":
            return _json_page({"ok": False, "error": "method_not_allowed"}, 405)
        try:
            data = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return _json_page({"ok": False, "error": "invalid_json"}, 400)
        handler = {"send": self.send, "action": self.action, "submit": self.submit, "close": self.close,
                   "home": self.home}.get(rest)
        if handler is None or not isinstance(data, dict):
            return _json_page({"ok": False, "error": "not_found"}, 404)
        return _json_page(handler(data).as_json())

    def feed(self, args: Mapping[str, str]) -> dict[str, Any]:
        user, channel = self._who(args)
        lookup = self.lookup()
        modal = self.relay.open_modal(user)
        shown: dict[str, Any] = {"feed": "", "modal": None, "home": None}
        if modal is not None:
            shown["modal"] = {"id": modal.id, "hash": modal.hash, "html": modal_html(modal.payload, lookup)}
        if channel == HOME:
            shown["home"] = home_html(self.fake.home_view(user), lookup)
            return shown
        shown["feed"] = "".join(item_html(i, channel, lookup) for i in self.items(channel, user))
        return shown

    def send(self, data: Mapping[str, Any]) -> Outcome:
        user, channel = self._who(data)
        text = str(data.get("text") or "").strip()
        if not text or channel == HOME:
            return Outcome(False, "no_text")
        if text.startswith("/"):
            command, _, rest = text.partition(" ")
            return self.relay.command(user, channel, rest.strip(), command=command)
        thread = str(data["thread_ts"]) if data.get("thread_ts") else None
        self.fake.post_as_user(channel, user, text, thread_ts=thread)
        return Outcome(True)

    def action(self, data: Mapping[str, Any]) -> Outcome:
        user, channel = self._who(data)
        act = data.get("act")
        if not isinstance(act, dict) or not act.get("action_id"):
            return Outcome(False, "invalid_action")
        values = data.get("values") if isinstance(data.get("values"), dict) else None
        view = str(data["view"]) if data.get("view") else None
        place = None if channel == HOME else channel
        return self.relay.click(user, act, channel=place, message_ts=str(data.get("ts") or "") or None,
                                ephemeral=bool(data.get("ephemeral")), view_id=view, state_values=values)

    def submit(self, data: Mapping[str, Any]) -> Outcome:
        user, _ = self._who(data)
        values = data.get("values")
        return self.relay.submit(user, str(data.get("view") or ""), values if isinstance(values, dict) else {})

    def close(self, data: Mapping[str, Any]) -> Outcome:
        return self.relay.close(str(data.get("view") or ""))

    def home(self, data: Mapping[str, Any]) -> Outcome:
        user, _ = self._who(data)
        return self.relay.home_opened(user)

    # --- what a channel shows ------------------------------------------------------------------------------

    def items(self, channel: str, user: str) -> list[Item]:
        """Messages with their threads, this user's ephemerals and Slack's error lines, oldest first."""
        names = self.lookup().users
        private = [self._item(m, names, ephemeral=True) for m in self.fake.ephemeral(channel, user)]
        threaded = {m.ts: m for m in self.fake.ephemeral(channel, user) if m.thread_ts}
        items: list[Item] = []
        for message in self.fake.messages(channel):
            replies = [self._item(r, names) for r in message.replies]
            replies += [i for i in private if threaded.get(i.ts) and threaded[i.ts].thread_ts == message.ts]
            replies.sort(key=lambda r: float(r.ts))
            items.append(self._item(message, names, replies=replies))
        items += [i for i in private if i.ts not in threaded]
        items += [Item(f"{n.at:.6f}", "Slackbot", True, n.text, notice=True, ephemeral=n.user is not None)
                  for n in self.relay.notices(channel, user)]
        return sorted(items, key=lambda i: float(i.ts))

    @staticmethod
    def _item(message: Message, names: Mapping[str, str], *, ephemeral: bool = False,
              replies: list[Item] | None = None) -> Item:
        is_bot = message.bot_id is not None or message.user == BOT_USER_ID
        return Item(message.ts, names.get(message.user, message.user), is_bot, message.text, message.blocks or (),
                    message.attachments or (), message.files, ephemeral=ephemeral, edited=message.edited,
                    replies=replies or ())

    def lookup(self) -> Lookup:
        users = {u.id: u.real_name if not u.is_bot else u.name for u in self.fake.users()}
        channels = {c.id: c.name for c in self.fake.channels() if c.name}
        return Lookup(users, channels, self._file_url)

    def _file_url(self, file_id: str) -> str | None:
        record = self.fake.file(file_id)
        if record is None or record.content is None:
            return None
        return f"{self.fake.url}files/{record.id}/{record.filename}"

    def _who(self, args: Mapping[str, Any]) -> tuple[str, str]:
        user = str(args.get("as") or "U_ADMIN")
        if user not in {u.id for u in self.fake.users() if not u.is_bot}:  # not the roles: no query per poll
            user = "U_ADMIN"
        channel = str(args.get("c") or "C_FINANCE")
        known = {c.id for c in self.fake.channels()}
        if channel != HOME and channel not in known:
            channel = "C_FINANCE"
        return user, channel

    def _dm(self, user: str) -> str:
        return next((c.id for c in self.fake.channels() if c.im_user == user), f"D_{user.removeprefix('U_')}")

    def _channel_title(self, channel: str, dm: str) -> str:
        if channel in (HOME, dm):
            return "billing-bot"
        return "#" + next((c.name for c in self.fake.channels() if c.id == channel), channel)

