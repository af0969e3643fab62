"""Block Kit and mrkdwn to HTML, for the sandbox's browser UI. Pure: JSON-ready dicts in, HTML strings out.

Contract: everything that came from the bot is HTML-escaped; only the markup built here is trusted. Interactive
elements carry their Slack identity in a `data-act` JSON attribute (`type`, `action_id`, `block_id`, `value`;
selects and pickers get their value from the element when used) and input elements in modals a `data-input`
attribute (`block_id`, `action_id`, `type`), which `static/sandbox.js` turns into `block_actions` clicks and
`view_submission` state. Files (image blocks with `slack_file`, uploads) resolve through a `Lookup` to the fake
Slack's own file URLs. Emoji shortcodes stay text, as the issue asks.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Json = Mapping[str, Any]


@dataclass(frozen=True)
class Lookup:
    """Names for mentions and where files live."""

    users: Mapping[str, str] = field(default_factory=dict)  # id -> display name
    channels: Mapping[str, str] = field(default_factory=dict)  # id -> name
    file_url: Callable[[str], str | None] = lambda _file_id: None


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def attr(data: object) -> str:
    """A JSON value as a safely quoted HTML attribute value."""
    return esc(json.dumps(data, separators=(",", ":")))


# --- mrkdwn -------------------------------------------------------------------------------------------------

_CODE_BLOCK = re.compile(r"```(.+?)```", re.S)
_CODE = re.compile(r"`([^`\n]+)`")
_TOKEN = re.compile(r"<([^<>\s][^<>]*)>")
_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")
_EMOJI = re.compile(r"(?<!\w):([a-z0-9_+\-']+):(?!\w)")  # not the colons of a time such as 1:50:50
_HOLE = re.compile(r"\x00(\d+)\x00")


def mrkdwn(text: str, lookup: Lookup) -> str:
    """Slack's mrkdwn: *bold*, _italic_, ~strike~, `code`, ```pre```, > quotes, links, mentions, :emoji:."""
    holes: list[str] = []

    def hole(markup: str) -> str:
        holes.append(markup)
        return f"\x00{len(holes) - 1}\x00"

    text = _CODE_BLOCK.sub(lambda m: hole(f"<pre>{esc(html.unescape(m.group(1)))}</pre>"), text)
    text = _CODE.sub(lambda m: hole(f"<code>{esc(html.unescape(m.group(1)))}</code>"), text)
    text = _TOKEN.sub(lambda m: hole(_token(m.group(1), lookup)), text)
    out = esc(html.unescape(text))
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _ITALIC.sub(r"<em>\1</em>", out)
    out = _STRIKE.sub(r"<del>\1</del>", out)
    out = _EMOJI.sub(r'<span class="emoji">:\1:</span>', out)
    lines = [f'<span class="quote">{line[5:]}</span>' if line.startswith("&gt; ") else line
             for line in out.split("\n")]
    out = "<br>".join(lines)
    while _HOLE.search(out):
        out = _HOLE.sub(lambda m: holes[int(m.group(1))], out)
    return out


def _token(inner: str, lookup: Lookup) -> str:
    """`<@U…>`, `<#C…|name>`, `<!here>`, `<url|text>`, as Slack shows them."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        name = label or lookup.users.get(target[1:], target[1:])
        return f'<span class="mention">@{esc(name)}</span>'
    if target.startswith("#"):
        name = label or lookup.channels.get(target[1:], target[1:])
        return f'<span class="mention">#{esc(name)}</span>'
    if target.startswith("!"):
        word = target[1:].split("^")[0]
        return f'<span class="mention">@{esc(label or word)}</span>'
    url = html.unescape(target)
    if not re.match(r"^(https?|mailto):", url):
        return esc(html.unescape(inner))
    return f'<a href="{esc(url)}" target="_blank" rel="noopener">{esc(html.unescape(label or target))}</a>'


def text_html(obj: Any, lookup: Lookup) -> str:
    """A composition text object (plain_text or mrkdwn), or a bare string."""
    if isinstance(obj, str):
        return esc(obj)
    if not isinstance(obj, Mapping):
        return ""
    if obj.get("type") == "mrkdwn":
        return mrkdwn(str(obj.get("text", "")), lookup)
    return esc(obj.get("text", ""))


def plain(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


# --- blocks -------------------------------------------------------------------------------------------------


def blocks_html(blocks: Sequence[Any], lookup: Lookup) -> str:
    return "".join(block_html(b, i, lookup) for i, b in enumerate(blocks) if isinstance(b, Mapping))


def block_html(block: Json, index: int, lookup: Lookup) -> str:
    kind = str(block.get("type", ""))
    block_id = str(block.get("block_id") or f"b{index}")
    render = _BLOCKS.get(kind)
    if render is None:
        return f'<div class="bk-unknown">[{esc(kind)} block]</div>'
    return render(block, block_id, lookup)


def _header(block: Json, block_id: str, lookup: Lookup) -> str:
    return f'<div class="bk-header">{text_html(block.get("text"), lookup)}</div>'


def _section(block: Json, block_id: str, lookup: Lookup) -> str:
    parts = []
    if block.get("text"):
        parts.append(f'<div class="bk-text">{text_html(block["text"], lookup)}</div>')
    fields = block.get("fields") or []
    if fields:
        cells = "".join(f'<div class="bk-field">{text_html(f, lookup)}</div>' for f in fields)
        parts.append(f'<div class="bk-fields">{cells}</div>')
    accessory = block.get("accessory")
    side = f'<div class="bk-accessory">{element_html(accessory, block_id, lookup)}</div>' if accessory else ""
    return f'<div class="bk-section"><div class="bk-main">{"".join(parts)}</div>{side}</div>'


def _context(block: Json, block_id: str, lookup: Lookup) -> str:
    items = []
    for element in block.get("elements") or []:
        if element.get("type") == "image":
            items.append(f'<img class="bk-context-img" src="{esc(_image_src(element, lookup))}" '
                         f'alt="{esc(element.get("alt_text", ""))}">')
        else:
            items.append(f"<span>{text_html(element, lookup)}</span>")
    return f'<div class="bk-context">{"".join(items)}</div>'


def _divider(block: Json, block_id: str, lookup: Lookup) -> str:
    return '<hr class="bk-divider">'


def _image_src(element: Json, lookup: Lookup) -> str:
    if element.get("image_url"):
        return str(element["image_url"])
    slack_file = element.get("slack_file") or {}
    if slack_file.get("id"):
        return lookup.file_url(str(slack_file["id"])) or ""
    return str(slack_file.get("url", ""))


def _image(block: Json, block_id: str, lookup: Lookup) -> str:
    title = f'<div class="bk-image-title">{text_html(block["title"], lookup)}</div>' if block.get("title") else ""
    return (f'<figure class="bk-image">{title}<img src="{esc(_image_src(block, lookup))}" '
            f'alt="{esc(block.get("alt_text", ""))}"></figure>')


def _actions(block: Json, block_id: str, lookup: Lookup) -> str:
    elements = "".join(element_html(e, block_id, lookup) for e in block.get("elements") or [])
    return f'<div class="bk-actions">{elements}</div>'


def _input(block: Json, block_id: str, lookup: Lookup) -> str:
    """An input block of a modal: label, element, hint and the slot for a validation error."""
    optional = ' <span class="optional">(optional)</span>' if block.get("optional") else ""
    hint = f'<div class="bk-hint">{text_html(block["hint"], lookup)}</div>' if block.get("hint") else ""
    element = input_html(block.get("element") or {}, block_id, lookup)
    return (f'<div class="bk-input" data-block-id="{esc(block_id)}"><label>{text_html(block.get("label"), lookup)}'
            f'{optional}</label>{element}{hint}<div class="field-error" hidden></div></div>')


def _rich_text(block: Json, block_id: str, lookup: Lookup) -> str:
    texts = []
    for section in block.get("elements") or []:
        for piece in section.get("elements") or []:
            texts.append(esc(piece.get("text") or piece.get("url") or ""))
    return f'<div class="bk-text">{"".join(texts)}</div>'


def _markdown(block: Json, block_id: str, lookup: Lookup) -> str:
    return f'<div class="bk-text">{mrkdwn(str(block.get("text", "")), lookup)}</div>'


_BLOCKS: dict[str, Callable[[Json, str, Lookup], str]] = {
    "header": _header, "section": _section, "context": _context, "divider": _divider, "image": _image,
    "actions": _actions, "input": _input, "rich_text": _rich_text, "markdown": _markdown,
}


# --- elements -----------------------------------------------------------------------------------------------


def _act(element: Json, block_id: str, value: object = None) -> str:
    data = {"type": element.get("type"), "action_id": element.get("action_id", ""), "block_id": block_id}
    if value is not None:
        data["value"] = value
    confirm = element.get("confirm")
    extra = f' data-confirm="{esc(plain(confirm.get("text")))}"' if isinstance(confirm, Mapping) else ""
    return f'data-act="{attr(data)}"{extra}'


def _options(element: Json) -> list[Json]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option_tags(options: Sequence[Json], selected: set[str], placeholder: str | None) -> str:
    tags = [f'<option value="" disabled{"" if selected else " selected"}>{esc(placeholder)}</option>'
            ] if placeholder is not None else []
    for option in options:
        value = str(option.get("value", ""))
        mark = " selected" if value in selected else ""
        tags.append(f'<option value="{esc(value)}"{mark}>{esc(plain(option.get("text")))}</option>')
    return "".join(tags)


def element_html(element: Any, block_id: str, lookup: Lookup) -> str:
    """An interactive element of a message, the Home tab or a modal's section/actions block."""
    if not isinstance(element, Mapping):
        return ""
    kind = element.get("type")
    if kind == "button":
        style = f" {element['style']}" if element.get("style") in ("primary", "danger") else ""
        url = f' data-url="{esc(element["url"])}"' if element.get("url") else ""
        label = esc(plain(element.get("text")))
        return f'<button type="button" class="bk-btn{style}"{url} {_act(element, block_id, element.get("value"))}>' \
               f'{label}{" ↗" if url else ""}</button>'
    if kind == "image":
        return (f'<img class="bk-thumb" src="{esc(_image_src(element, lookup))}" '
                f'alt="{esc(element.get("alt_text", ""))}">')
    if kind in ("static_select", "overflow"):
        placeholder = "•••" if kind == "overflow" else plain(element.get("placeholder")) or "Select an item"
        initial = element.get("initial_option") or {}
        selected = {str(initial.get("value"))} if initial else set()
        css = "bk-overflow" if kind == "overflow" else "bk-select"
        return (f'<select class="{css}" {_act(element, block_id)}>'
                f"{_option_tags(_options(element), selected, placeholder)}</select>")
    if kind == "datepicker":
        return (f'<input type="date" class="bk-date" value="{esc(element.get("initial_date", ""))}" '
                f'{_act(element, block_id)}>')
    return f'<span class="bk-unknown">[{esc(kind)}]</span>'


def input_html(element: Json, block_id: str, lookup: Lookup) -> str:
    """The element of a modal input block, marked for `view_submission` state collection."""
    kind = str(element.get("type", ""))
    data = f'data-input="{attr({"block_id": block_id, "action_id": element.get("action_id", ""), "type": kind})}"'
    placeholder = plain(element.get("placeholder"))
    if kind == "plain_text_input":
        initial = esc(element.get("initial_value", ""))
        if element.get("multiline"):
            return f'<textarea {data} placeholder="{esc(placeholder)}">{initial}</textarea>'
        return f'<input type="text" {data} placeholder="{esc(placeholder)}" value="{initial}">'
    if kind == "number_input":
        return f'<input type="number" step="any" {data} value="{esc(element.get("initial_value", ""))}">'
    if kind == "datepicker":
        return f'<input type="date" {data} value="{esc(element.get("initial_date", ""))}">'
    if kind in ("static_select", "multi_static_select"):
        chosen_options: list[Json] = element.get("initial_options") or (
            [element["initial_option"]] if element.get("initial_option") else [])
        selected = {str(o.get("value")) for o in chosen_options}
        multiple = " multiple" if kind.startswith("multi") else ""
        prompt = None if multiple else (placeholder or "Select an item")
        return f"<select {data}{multiple}>{_option_tags(_options(element), selected, prompt)}</select>"
    if kind in ("conversations_select", "channels_select", "users_select"):
        names = lookup.users if kind == "users_select" else lookup.channels
        initial_key = {"users_select": "initial_user", "channels_select": "initial_channel"}.get(
            kind, "initial_conversation")
        current = str(element.get(initial_key) or "")
        prefix = "@" if kind == "users_select" else "#"
        options = [{"value": k, "text": f"{prefix}{v}"} for k, v in names.items() if v]
        prompt = placeholder or ("Select a person" if kind == "users_select" else "Select a channel")
        return f"<select {data}>{_option_tags(options, {current} if current else set(), prompt)}</select>"
    if kind in ("radio_buttons", "checkboxes"):
        checked: list[Json] = element.get("initial_options") or (
            [element["initial_option"]] if element.get("initial_option") else [])
        chosen = {str(o.get("value")) for o in checked}
        box = "radio" if kind == "radio_buttons" else "checkbox"
        name = esc(f"{block_id}-{element.get('action_id', '')}")
        items = "".join(
            f'<label class="bk-choice"><input type="{box}" name="{name}" value="{esc(o.get("value", ""))}"'
            f'{" checked" if str(o.get("value")) in chosen else ""}> {text_html(o.get("text"), lookup)}</label>'
            for o in _options(element))
        return f'<div class="bk-choices" {data}>{items}</div>'
    return f'<span class="bk-unknown">[{esc(kind)}]</span>'


# --- messages, files, views ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One line of a channel: a message (with its replies), an ephemeral, or a Slack error notice."""

    ts: str
    author: str
    is_bot: bool
    text: str = ""
    blocks: Sequence[Any] = ()
    attachments: Sequence[Any] = ()
    files: Sequence[Json] = ()
    ephemeral: bool = False
    notice: bool = False
    edited: bool = False
    replies: Sequence[Item] = ()


def clock_time(ts: str) -> str:
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%H:%M")
    except ValueError:
        return ""


def item_html(item: Item, channel: str, lookup: Lookup, *, in_thread: bool = False) -> str:
    css = "msg" + (" ephemeral" if item.ephemeral else "") + (" notice" if item.notice else "")
    source = attr({"channel": channel, "ts": item.ts, "ephemeral": item.ephemeral})
    initials = "".join(w[0] for w in item.author.split()[:2]).upper() or "?"
    badge = '<span class="app-badge">APP</span>' if item.is_bot else ""
    only_you = '<span class="only-you">Only visible to you</span>' if item.ephemeral else ""
    edited = '<span class="edited">(edited)</span>' if item.edited else ""
    body = blocks_html(item.blocks, lookup) if item.blocks else \
        f'<div class="bk-text">{mrkdwn(item.text, lookup)}</div>'
    if item.notice:
        body = f'<div class="bk-text">⚠️ {esc(item.text)}</div>'
    parts = [body, "".join(_attachment(a, lookup) for a in item.attachments if isinstance(a, Mapping)),
             "".join(file_html(f) for f in item.files)]
    thread = ""
    if not in_thread and not item.notice:
        replies = "".join(item_html(r, channel, lookup, in_thread=True) for r in item.replies)
        count = f'<div class="thread-count">{len(item.replies)} {"reply" if len(item.replies) == 1 else "replies"}' \
                f"</div>" if item.replies else ""
        thread = (f'<div class="thread">{count}{replies}</div>' if item.replies else "") + \
                 (f'<button type="button" class="reply-btn" data-thread="{esc(item.ts)}">Reply in thread</button>'
                  if not item.ephemeral else "")
    return (f'<div class="{css}" data-msg="{source}" id="m-{esc(item.ts.replace(".", "-"))}">'
            f'<div class="avatar{" bot" if item.is_bot else ""}">{esc(initials)}</div><div class="msg-body">'
            f'<div class="meta"><b>{esc(item.author)}</b>{badge}<time>{clock_time(item.ts)}</time>{edited}{only_you}'
            f'</div>{"".join(parts)}{thread}</div></div>')


def _attachment(attachment: Json, lookup: Lookup) -> str:
    color = str(attachment.get("color") or "#ddd")
    inner = blocks_html(attachment["blocks"], lookup) if attachment.get("blocks") else \
        f'<div class="bk-text">{mrkdwn(str(attachment.get("text") or attachment.get("fallback") or ""), lookup)}</div>'
    return f'<div class="attachment" style="border-left-color:{esc(color)}">{inner}</div>'


def file_html(record: Json) -> str:
    """A PNG/JPEG/GIF inline; anything else a download link with its type and size."""
    url, name = esc(record.get("url_private", "")), esc(record.get("name", "file"))
    title = esc(record.get("title") or record.get("name", ""))
    mimetype = str(record.get("mimetype", ""))
    if mimetype.startswith("image/"):
        return (f'<figure class="file file-image"><figcaption>{title}</figcaption>'
                f'<a href="{url}" target="_blank"><img src="{url}" alt="{esc(record.get("alt_txt") or title)}">'
                f"</a></figure>")
    kind = esc(str(record.get("filetype", "")).upper())
    size = int(record.get("size") or 0)
    shown = f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} B"
    return (f'<a class="file file-download" href="{url}" download="{name}" data-mimetype="{esc(mimetype)}">'
            f'<span class="file-icon">{kind}</span><span><b>{title}</b><br><small>{name} · {kind} · {shown}'
            f"</small></span></a>")


def modal_html(view: Json, lookup: Lookup) -> str:
    """A modal as an overlay form; `data-view` and `data-hash` let the page keep typed input across polls."""
    view_id, hash_ = esc(view.get("id", "")), esc(view.get("hash", ""))
    submit = plain(view.get("submit")) if view.get("submit") else ""
    close = plain(view.get("close")) or ("Cancel" if submit else "Close")
    submit_button = f'<button type="submit" class="bk-btn primary">{esc(submit)}</button>' if submit else ""
    return (f'<div class="modal-backdrop"><form class="modal" data-view="{view_id}" data-hash="{hash_}">'
            f'<header><span>{esc(plain(view.get("title")))}</span>'
            f'<button type="button" class="modal-x" data-close aria-label="Close">×</button></header>'
            f'<div class="modal-body">{blocks_html(view.get("blocks") or [], lookup)}</div>'
            f'<div class="modal-error" hidden></div>'
            f'<footer><button type="button" class="bk-btn" data-close>{esc(close)}</button>{submit_button}</footer>'
            f"</form></div>")


def home_html(view: Json | None, lookup: Lookup) -> str:
    if not view:
        return '<div class="home empty">Opening the Home tab… (the bot publishes it on app_home_opened)</div>'
    return (f'<div class="home" data-view="{esc(view.get("id", ""))}" data-hash="{esc(view.get("hash", ""))}">'
            f'{blocks_html(view.get("blocks") or [], lookup)}</div>')
