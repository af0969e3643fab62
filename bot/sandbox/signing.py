"""Signed inbound requests exactly as Slack sends them to the app (slash commands, actions, modals, events).

Contract: each builder returns `(body, headers)`; `body` is the raw bytes to POST to `/slack/events` (or to
wrap in `BoltRequest(body=body.decode(), headers=headers)`), and `headers` carry the content type,
`x-slack-request-timestamp` and the v0 `x-slack-signature` computed by slack_sdk's own `SignatureVerifier`.
Shapes follow docs/slack-notes.md section 1.3: form fields for commands, a `payload=<JSON>` form field for
interactivity, a JSON body for the Events API. `timestamp` defaults to now; pass an old one (more than 300 s) to
get the 401 a replayed request must get. Ids default to the fake workspace's seeds (`bot.sandbox.fake_state`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.sandbox.fake_state import APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID, default_channels, slack_id

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
Request = tuple[bytes, dict[str, str]]

_CHANNEL_NAMES = {c.id: c.name or "directmessage" for c in default_channels()}


def sign(secret: str, body: bytes | str, timestamp: int | str) -> str:
    """`v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">`, computed by slack_sdk so it matches Bolt's check."""
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    if signature is None:  # only for a None timestamp, which the types already exclude
        raise ValueError("a timestamp is required to sign a request")
    return signature


def signed_headers(secret: str, body: bytes, content_type: str, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {"content-type": content_type, "x-slack-request-timestamp": stamp,
            "x-slack-signature": sign(secret, body, stamp)}


def _form(secret: str, fields: Mapping[str, str], timestamp: int | None) -> Request:
    body = urlencode(fields).encode()
    return body, signed_headers(secret, body, FORM, timestamp)


def _interactive(secret: str, payload: Mapping[str, Any], timestamp: int | None) -> Request:
    return _form(secret, {"payload": json.dumps(payload)}, timestamp)


def _user(user_id: str, team_id: str) -> dict[str, str]:
    name = user_id.removeprefix("U_").lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _team(team_id: str) -> dict[str, Any]:
    return {"id": team_id, "domain": TEAM_DOMAIN, "enterprise_id": None, "enterprise_name": None}


def slash_command_request(secret: str, *, command: str = "/billing", text: str = "", user_id: str = "U_ADMIN",
                          channel_id: str = "C_FINANCE", team_id: str = TEAM_ID, response_url: str,
                          trigger_id: str, timestamp: int | None = None) -> Request:
    """A slash command: form fields, `response_url` and `trigger_id` as Slack sends them (point both at the fake)."""
    fields = {
        "token": "verification-token", "team_id": team_id, "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id, "channel_name": _CHANNEL_NAMES.get(channel_id, "privategroup"),
        "user_id": user_id, "user_name": user_id.removeprefix("U_").lower(), "command": command, "text": text,
        "api_app_id": APP_ID, "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return _form(secret, fields, timestamp)


def action(action_type: str, action_id: str, *, block_id: str, value: str | None, text: str | None = None) -> (
        dict[str, Any]):
    """One entry of `actions`: a button carries `value`; selects `selected_option`; pickers their own field."""
    data: dict[str, Any] = {"type": action_type, "action_id": action_id, "block_id": block_id,
                            "action_ts": f"{time.time():.6f}"}
    label = {"type": "plain_text", "text": text or value or action_id, "emoji": True}
    if action_type == "button":
        return data | {"text": label} | ({"value": value} if value is not None else {})
    if action_type in ("static_select", "external_select", "overflow", "radio_buttons"):
        return data | {"selected_option": {"text": label, "value": value}}
    selected = {"datepicker": "selected_date", "users_select": "selected_user", "channels_select":
                "selected_channel", "conversations_select": "selected_conversation"}.get(action_type, "value")
    return data | {selected: value}


def block_action_request(secret: str, *, action_id: str, value: str | None = None, block_id: str = "actions",
                         action_type: str = "button", user_id: str = "U_ADMIN", team_id: str = TEAM_ID,
                         channel_id: str = "C_FINANCE", message: Mapping[str, Any] | None = None,
                         is_ephemeral: bool = False, view: Mapping[str, Any] | None = None,
                         response_url: str | None = None, trigger_id: str,
                         state_values: Mapping[str, Any] | None = None, timestamp: int | None = None) -> Request:
    """A `block_actions` payload from a message (give `message`, at least its `ts`) or from a view (give `view`).

    Inside a modal or the Home tab there is no channel and no response_url, as in Slack.
    """
    payload: dict[str, Any] = {
        "type": "block_actions", "user": _user(user_id, team_id), "api_app_id": APP_ID,
        "token": "verification-token", "trigger_id": trigger_id, "team": _team(team_id),
        "enterprise": None, "is_enterprise_install": False,
        "actions": [action(action_type, action_id, block_id=block_id, value=value)],
    }
    if view is not None:
        state = {"values": dict(state_values or view.get("state", {}).get("values", {}))}
        container = {"type": "view", "view_id": view.get("id")}
        return _interactive(secret, payload | {"container": container, "view": {**view, "state": state}}, timestamp)
    msg = dict(message or {})
    container = {"type": "message", "message_ts": msg.get("ts"), "channel_id": channel_id,
                 "is_ephemeral": is_ephemeral}
    payload |= {"container": container, "channel": {"id": channel_id, "name": _CHANNEL_NAMES.get(channel_id, "")},
                "state": {"values": dict(state_values or {})}, "response_url": response_url}
    if not is_ephemeral:  # Slack includes the source message only when it is a real (stored) message
        payload["message"] = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": ""} | msg
    return _interactive(secret, payload, timestamp)


def view_submission_request(secret: str, *, values: Mapping[str, Any], view: Mapping[str, Any] | None = None,
                            callback_id: str | None = None, private_metadata: str | None = None,
                            user_id: str = "U_ADMIN", team_id: str = TEAM_ID, trigger_id: str,
                            response_urls: Sequence[Mapping[str, str]] = (),
                            timestamp: int | None = None) -> Request:
    """A `view_submission`: `view` is the modal as opened (e.g. `fake.views()[-1].payload`) and `values` its
    `{block_id: {action_id: {"type": ..., "value"|"selected_option"|...: ...}}}` state."""
    base: dict[str, Any] = {"id": slack_id("V"), "team_id": team_id, "type": "modal", "blocks": [],
                            "private_metadata": "", "callback_id": "", "hash": f"{int(time.time())}.abcdef",
                            "title": {"type": "plain_text", "text": "Modal"}, "clear_on_close": False,
                            "notify_on_close": False, "previous_view_id": None, "external_id": "",
                            "app_id": APP_ID, "app_installed_team_id": team_id, "bot_id": BOT_ID}
    submitted = base | dict(view or {}) | {"state": {"values": dict(values)}}
    submitted.setdefault("root_view_id", submitted["id"])
    if callback_id is not None:
        submitted["callback_id"] = callback_id
    if private_metadata is not None:
        submitted["private_metadata"] = private_metadata
    payload = {"type": "view_submission", "team": _team(team_id), "user": _user(user_id, team_id),
               "api_app_id": APP_ID, "token": "verification-token", "trigger_id": trigger_id, "view": submitted,
               "response_urls": list(response_urls), "is_enterprise_install": False, "enterprise": None}
    return _interactive(secret, payload, timestamp)


def event_request(secret: str, event: Mapping[str, Any], *, team_id: str = TEAM_ID, event_id: str | None = None,
                  event_time: int | None = None, timestamp: int | None = None) -> Request:
    """An Events API `event_callback` (JSON body) wrapping `event`, authorised for the bot user."""
    at = int(time.time()) if event_time is None else event_time
    envelope = {
        "token": "verification-token", "team_id": team_id, "api_app_id": APP_ID,
        "event": {"event_ts": f"{at}.000100", **event}, "type": "event_callback",
        "event_id": event_id or slack_id("Ev"), "event_time": at, "event_context": slack_id("4-", 20),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": BOT_USER_ID, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }
    body = json.dumps(envelope).encode()
    return body, signed_headers(secret, body, JSON, timestamp)


def app_home_opened(user_id: str = "U_ADMIN", *, channel_id: str | None = None, tab: str = "home",
                    view: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `app_home_opened` event; `view` is the currently published Home view, absent on the first open."""
    event: dict[str, Any] = {"type": "app_home_opened", "user": user_id,
                             "channel": channel_id or f"D_{user_id.removeprefix('U_')}", "tab": tab}
    return event | ({"view": dict(view)} if view is not None else {})


def url_verification_request(secret: str, challenge: str, *, timestamp: int | None = None) -> Request:
    body = json.dumps({"token": "verification-token", "challenge": challenge, "type": "url_verification"}).encode()
    return body, signed_headers(secret, body, JSON, timestamp)
