"""Where answers go, and the one place core errors become friendly messages.

In a channel linked to the account the answer is posted there (the team sees it) and files land in its
thread; anywhere else the answer is ephemeral and files go to the requester's DM with the bot.
"""

from __future__ import annotations

import logging
import urllib.error
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from billing_core.errors import BillingError, UpstreamUnavailable
from bot.access import Who
from bot.views.common import Message, error_message, unexpected_message

log = logging.getLogger("billing_bot")
Respond = Callable[..., Any]


@dataclass(frozen=True)
class Posted:
    """A message we can thread files under: channel and ts (ts None for an ephemeral answer)."""

    channel: str
    ts: str | None


class Reply:
    def __init__(self, client: WebClient, who: Who, *, public: bool, respond: Respond | None,
                 thread_ts: str | None = None) -> None:
        self.client = client
        self.who = who
        self.public = public and who.channel is not None
        self.respond = respond
        self.thread_ts = thread_ts

    def send(self, msg: Message, *, replace: bool = False) -> Posted:
        """Post `msg` where this request's answers go."""
        if self.public:
            assert self.who.channel is not None
            if replace and self.thread_ts:
                self.client.chat_update(channel=self.who.channel, ts=self.thread_ts, **msg)
                return Posted(self.who.channel, self.thread_ts)
            result = self.client.chat_postMessage(channel=self.who.channel, thread_ts=self.thread_ts,
                                                  unfurl_links=False, unfurl_media=False, **msg)
            return Posted(self.who.channel, self.thread_ts or str(result["ts"]))
        self.private(msg, replace=replace)
        return Posted(self.who.channel or "", None)

    def private(self, msg: Message, *, replace: bool = False) -> None:
        """Only the requester sees it (response_url, else chat.postEphemeral, else the DM)."""
        if self.respond is not None:
            self.respond(response_type="ephemeral", replace_original=replace, **msg)
        elif self.who.channel:
            self.client.chat_postEphemeral(channel=self.who.channel, user=self.who.user, **msg)
        else:
            self.client.chat_postMessage(channel=self.dm(), **msg)

    def dm(self) -> str:
        return str(self.client.conversations_open(users=self.who.user)["channel"]["id"])

    def file(self, posted: Posted, *, filename: str, content: bytes, title: str, comment: str | None = None,
             alt_text: str | None = None) -> str:
        """Upload into the thread of `posted` (public) or the requester's DM (private); returns the file id."""
        channel, thread = (posted.channel, posted.ts) if self.public and posted.ts else (self.dm(), None)
        kwargs: dict[str, Any] = {"channel": channel, "filename": filename, "content": content, "title": title}
        if thread:
            kwargs["thread_ts"] = thread
        if comment:
            kwargs["initial_comment"] = comment
        if alt_text:
            kwargs["alt_txt"] = alt_text[:1000]
        result = self._upload(kwargs)
        return str(result["file"]["id"]) if result.get("file") else ""

    def _upload(self, kwargs: dict[str, Any]) -> Any:
        """files_upload_v2, tried twice: its raw POST of the bytes bypasses slack_sdk's retry handlers."""
        for attempt in (1, 2):
            try:
                return self.client.files_upload_v2(**kwargs)
            except urllib.error.URLError as error:  # HTTPError included: the upload URL answered non-200
                log.warning("upload of %s failed (attempt %d): %s", kwargs["filename"], attempt, error)
        raise UpstreamUnavailable(f"Slack did not accept the upload of {kwargs['filename']}.",
                                  hint="Try again in a moment.")


def report_error(reply: Reply, error: BaseException) -> None:
    """Translate an error once, at the edge: a core error as itself, anything else with a reference."""
    try:
        if isinstance(error, BillingError):
            reply.private(error_message(error))
        elif isinstance(error, SlackApiError):
            log.warning("Slack API error: %s", error.response.get("error"))
            reply.private(error_message(UpstreamUnavailable(
                f"Slack refused part of the answer ({error.response.get('error')}).",
                hint="Try again in a moment; if it persists, invite the bot to this channel.")))
        else:
            reference = uuid.uuid4().hex[:8]
            log.exception("unexpected error %s", reference, exc_info=error)
            reply.private(unexpected_message(reference))
    except Exception:
        log.exception("could not report an error to the user")
