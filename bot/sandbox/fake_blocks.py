"""Block Kit checks the fake Slack applies to what the bot sends, in Slack's own error wording.

Contract: pure functions from JSON-ready dicts to a list of `BlockError` (empty means valid). They cover the
limits slack_sdk does not check on plain dicts (docs/slack-notes.md section 3): blocks per message (50) or per
modal/Home tab (100), section text 3000 and fields 10 x 2000, header 150, image url-or-slack_file plus alt_text,
actions 25 elements, button text 75, block_id/action_id 255, modal title/submit/close 24. An error renders the
way Slack's `invalid_blocks`/`invalid_arguments` responses do: `"<message> [json-pointer:<pointer>]"`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_SURFACE_BLOCKS = 100  # modals and the Home tab
MAX_MESSAGE_TEXT = 40_000
FILE_ID = re.compile(r"^F[A-Z0-9]{8,}$")

# Types Slack accepts at the top level of a layout; a typo ("secton") should fail here as it does in Slack.
BLOCK_TYPES = frozenset({
    "actions", "context", "divider", "file", "header", "image", "input", "markdown", "rich_text", "section",
    "video", "call", "table", "context_actions",
})

FileCheck = Callable[[str], bool]


@dataclass(frozen=True)
class BlockError:
    """One violation, located by a JSON pointer into the request (e.g. `/blocks/0/text/text`)."""

    pointer: str
    code: str
    message: str

    def as_text(self) -> str:
        return f"{self.message} [json-pointer:{self.pointer}]"

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "code": self.code, "message": self.message}


def _too_long(value: Any, limit: int, pointer: str) -> list[BlockError]:
    if isinstance(value, str) and len(value) > limit:
        return [BlockError(pointer, "max_length", f"must be less than {limit + 1} characters")]
    return []


def _missing(name: str, pointer: str) -> BlockError:
    return BlockError(pointer, "missing_field", f"missing required field: {name}")


def _text_object(obj: Any, limit: int, pointer: str, *, required: bool = True) -> list[BlockError]:
    """A composition text object: `{"type": "plain_text"|"mrkdwn", "text": ...}` with a length cap."""
    if obj is None:
        return [_missing(pointer.rsplit("/", 1)[-1], pointer.rsplit("/", 1)[0])] if required else []
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [_missing("text", pointer)]
    return _too_long(obj["text"], limit, f"{pointer}/text")


def _too_many(items: Any, limit: int, pointer: str) -> list[BlockError]:
    if isinstance(items, list) and len(items) > limit:
        return [BlockError(pointer, "max_items", f"no more than {limit} items allowed")]
    return []


def check_element(element: Any, pointer: str) -> list[BlockError]:
    """An interactive element (button, select, ...): action_id length, and a button's text and value."""
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [_missing("type", pointer)]
    errors = _too_long(element.get("action_id"), 255, f"{pointer}/action_id")
    if element["type"] == "button":
        errors += _text_object(element.get("text"), 75, f"{pointer}/text")
        errors += _too_long(element.get("value"), 2000, f"{pointer}/value")
        errors += _too_long(element.get("url"), 3000, f"{pointer}/url")
    return errors


def _section(block: dict[str, Any], ptr: str, _: FileCheck) -> list[BlockError]:
    fields = block.get("fields")
    if block.get("text") is None and not fields:
        return [BlockError(ptr, "missing_field", "must provide at least one of: text, fields")]
    errors = _text_object(block.get("text"), 3000, f"{ptr}/text", required=False)
    errors += _too_many(fields, 10, f"{ptr}/fields")
    for i, field in enumerate(fields or []):
        errors += _text_object(field, 2000, f"{ptr}/fields/{i}")
    if block.get("accessory") is not None:
        errors += check_element(block["accessory"], f"{ptr}/accessory")
    return errors


def _header(block: dict[str, Any], ptr: str, _: FileCheck) -> list[BlockError]:
    return _text_object(block.get("text"), 150, f"{ptr}/text")


def _image(block: dict[str, Any], ptr: str, file_ok: FileCheck) -> list[BlockError]:
    errors = [] if block.get("alt_text") is not None else [_missing("alt_text", ptr)]
    errors += _too_long(block.get("alt_text"), 2000, f"{ptr}/alt_text")
    url, slack_file = block.get("image_url"), block.get("slack_file")
    if (url is None) == (slack_file is None):
        return [*errors, BlockError(ptr, "invalid_value", "must provide exactly one of: image_url, slack_file")]
    if url is not None:
        return errors + _too_long(url, 3000, f"{ptr}/image_url")
    return errors + _slack_file(slack_file, f"{ptr}/slack_file", file_ok)


def _slack_file(ref: Any, ptr: str, file_ok: FileCheck) -> list[BlockError]:
    """`{"id": "F..."}` or `{"url": ...}`, never both; the file must be shared somewhere and processed."""
    if not isinstance(ref, dict) or ("id" in ref) == ("url" in ref):
        return [BlockError(ptr, "invalid_value", "must provide exactly one of: id, url")]
    file_id = ref.get("id")
    if file_id is not None and not (isinstance(file_id, str) and FILE_ID.match(file_id) and file_ok(file_id)):
        return [BlockError(ptr, "invalid_slack_file", "invalid slack file")]
    return []


def _actions(block: dict[str, Any], ptr: str, _: FileCheck) -> list[BlockError]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [BlockError(f"{ptr}/elements", "min_items", "must provide at least 1 items")]
    errors = _too_many(elements, 25, f"{ptr}/elements")
    for i, element in enumerate(elements):
        errors += check_element(element, f"{ptr}/elements/{i}")
    return errors


def _context(block: dict[str, Any], ptr: str, _: FileCheck) -> list[BlockError]:
    return _too_many(block.get("elements"), 10, f"{ptr}/elements")


def _input(block: dict[str, Any], ptr: str, _: FileCheck) -> list[BlockError]:
    errors = _text_object(block.get("label"), 2000, f"{ptr}/label")
    if block.get("element") is None:
        return [*errors, _missing("element", ptr)]
    return errors + check_element(block["element"], f"{ptr}/element")


_BY_TYPE: dict[str, Callable[[dict[str, Any], str, FileCheck], list[BlockError]]] = {
    "section": _section, "header": _header, "image": _image, "actions": _actions, "context": _context,
    "input": _input,
}


def check_block(block: Any, ptr: str, file_ok: FileCheck) -> list[BlockError]:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return [_missing("type", ptr)]
    if block["type"] not in BLOCK_TYPES:
        return [BlockError(f"{ptr}/type", "invalid_value", f"unsupported type: {block['type']}")]
    errors = _too_long(block.get("block_id"), 255, f"{ptr}/block_id")
    check = _BY_TYPE.get(block["type"])
    return errors + (check(block, ptr, file_ok) if check else [])


def _any_file(_: str) -> bool:
    return True


def check_blocks(blocks: Any, *, root: str = "/blocks", limit: int = MAX_MESSAGE_BLOCKS,
                 file_ok: FileCheck = _any_file) -> list[BlockError]:
    """A list of layout blocks: count, then each block in order."""
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return [BlockError(root, "invalid_type", "must be an array")]
    errors = _too_many(blocks, limit, root)
    for i, block in enumerate(blocks):
        errors += check_block(block, f"{root}/{i}", file_ok)
    return errors


def check_message(blocks: Any, attachments: Any, *, file_ok: FileCheck = _any_file) -> list[BlockError]:
    """A message's blocks, and the blocks inside its legacy attachments (Slack checks both)."""
    errors = check_blocks(blocks, file_ok=file_ok)
    for i, attachment in enumerate(attachments if isinstance(attachments, list) else []):
        if isinstance(attachment, dict):
            errors += check_blocks(attachment.get("blocks"), root=f"/attachments/{i}/blocks", file_ok=file_ok)
    return errors


def check_view(view: Any, *, file_ok: FileCheck = _any_file) -> list[BlockError]:
    """A modal or Home tab view, reported under `/view/...` as views.* methods do."""
    if not isinstance(view, dict):
        return [_missing("view", "")]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [BlockError("/view/type", "invalid_value", "must be a valid enum value")]
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return [BlockError("/view/blocks", "min_items", "must provide at least 1 items")]
    errors = check_blocks(blocks, root="/view/blocks", limit=MAX_SURFACE_BLOCKS, file_ok=file_ok)
    errors += _too_long(view.get("private_metadata"), 3000, "/view/private_metadata")
    errors += _too_long(view.get("callback_id"), 255, "/view/callback_id")
    errors += _too_long(view.get("external_id"), 255, "/view/external_id")
    return errors + (_modal_chrome(view) if kind == "modal" else [])


def _modal_chrome(view: dict[str, Any]) -> list[BlockError]:
    """A modal's title (required), submit and close buttons: 24 characters each; input blocks need submit."""
    errors = _text_object(view.get("title"), 24, "/view/title")
    for name in ("submit", "close"):
        errors += _text_object(view.get(name), 24, f"/view/{name}", required=False)
    if view.get("submit") is None:
        for i, block in enumerate(view["blocks"]):
            if isinstance(block, dict) and block.get("type") == "input":
                errors.append(BlockError(f"/view/blocks/{i}/input", "invalid_value",
                                         "must define `submit` to use an `input` block in modals"))
    return errors
