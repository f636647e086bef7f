"""Slack's message limits as Slack checks them, for the fake Slack Web API.

Written out from Slack's Block Kit reference and method docs, not imported from the
product: the fake refuses what Slack refuses, whatever Nightshift thinks the limits
are. :func:`message_errors` and :func:`view_errors` answer Slack's error code and its
``response_metadata.messages`` lines (``[ERROR] … [json-pointer:/blocks/3/text/text]``).

Example:
    >>> message_errors({"blocks": [{"type": "divider"}] * 51})
    ('invalid_blocks', ['[ERROR] no more than 50 items allowed [json-pointer:/blocks]'])
"""

from __future__ import annotations

from typing import Any

__all__ = ["BLOCKS_TEXT", "MESSAGE_METHODS", "message_errors", "view_errors"]

MESSAGE_BLOCKS = 50  # blocks in a message
VIEW_BLOCKS = 100  # blocks in a modal or App Home view
MESSAGE_TEXT = 40_000  # a message's `text`: chat.postMessage answers msg_too_long past it
# The text of all of a message's blocks together: msg_blocks_too_long past it. Slack does
# not document it; 12,000 is the figure Slack's staff gave (slackapi/bolt-js#2509, #2867).
BLOCKS_TEXT = 12_000
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
URL_LENGTH = 3000
ID_LENGTH = 255  # block_id, action_id, callback_id
VIEW_TITLE = 24  # a modal's title, submit and close labels
PRIVATE_METADATA = 3000
INPUT_LABEL = 2000
OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
PLACEHOLDER = 150
IMAGE_ALT = 2000
CONFIRM_TEXT = 300
MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral"})

_SELECTS = {
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
}
_INTERACTIVE = _SELECTS | {
    "button",
    "overflow",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
}
_INPUTS = _INTERACTIVE - {"button", "overflow"} | {
    "plain_text_input",
    "number_input",
    "email_text_input",
    "url_text_input",
    "rich_text_input",
    "file_input",
}


class _Check:
    """Collects Slack-style error lines (``[ERROR] … [json-pointer:/blocks/3/text/text]``)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.chars = 0  # text characters in the blocks (for msg_blocks_too_long)

    def fail(self, pointer: str, message: str) -> None:
        self.errors.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def string(self, value: Any, pointer: str, limit: int, *, required: bool = False) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str):
            self.fail(pointer, "must be a string")
        elif not value and required:
            self.fail(pointer, "must be more than 0 characters")
        elif len(value) > limit:
            self.fail(pointer, f"must be less than {limit + 1} characters")

    def text(self, obj: Any, pointer: str, limit: int, *, plain: bool = False) -> None:
        if not isinstance(obj, dict):
            self.fail(pointer, "must be a text object")
            return
        kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
        if obj.get("type") not in kinds:
            self.fail(pointer + "/type", f"must be one of {', '.join(kinds)}")
        text = obj.get("text")
        self.string(text, pointer + "/text", limit, required=True)
        if isinstance(text, str):
            self.chars += len(text)

    def block_id(self, block: dict[str, Any], pointer: str, seen: set[str]) -> None:
        block_id = block.get("block_id")
        if block_id is None:
            return
        self.string(block_id, pointer + "/block_id", ID_LENGTH, required=True)
        if block_id in seen:
            self.fail(pointer + "/block_id", f"duplicate block_id {block_id!r}")
        seen.add(str(block_id))

    def options(self, options: Any, pointer: str) -> None:
        if not isinstance(options, list) or not options:
            self.fail(pointer, "must provide at least 1 item")
            return
        if len(options) > OPTIONS:
            self.fail(pointer, f"no more than {OPTIONS} items allowed")
        for i, option in enumerate(options):
            if not isinstance(option, dict):
                self.fail(f"{pointer}/{i}", "must be an option object")
                continue
            self.text(option.get("text"), f"{pointer}/{i}/text", OPTION_TEXT)
            self.string(option.get("value"), f"{pointer}/{i}/value", OPTION_VALUE, required=True)

    def element(self, element: Any, pointer: str, allowed: set[str]) -> None:
        if not isinstance(element, dict) or element.get("type") not in allowed:
            kind = element.get("type") if isinstance(element, dict) else element
            self.fail(pointer, f"{kind!r} is not a valid element here")
            return
        kind = element["type"]
        self.string(element.get("action_id"), pointer + "/action_id", ID_LENGTH)
        if kind == "button":
            self.text(element.get("text"), pointer + "/text", BUTTON_TEXT, plain=True)
            self.string(element.get("value"), pointer + "/value", BUTTON_VALUE)
            self.string(element.get("url"), pointer + "/url", URL_LENGTH)
            if element.get("style") not in (None, "primary", "danger"):
                self.fail(pointer + "/style", "must be one of primary, danger")
        if kind in ("static_select", "multi_static_select") and "option_groups" not in element:
            self.options(element.get("options"), pointer + "/options")
        if "placeholder" in element:
            self.text(element["placeholder"], pointer + "/placeholder", PLACEHOLDER, plain=True)
        confirm = element.get("confirm")
        if isinstance(confirm, dict):
            self.text(confirm.get("text"), pointer + "/confirm/text", CONFIRM_TEXT)

    def block(self, block: Any, pointer: str, seen: set[str]) -> None:
        if not isinstance(block, dict):
            self.fail(pointer, "must be an object")
            return
        kind = block.get("type")
        self.block_id(block, pointer, seen)
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.fail(pointer, "must provide text or fields")
            if "text" in block:
                self.text(block["text"], pointer + "/text", SECTION_TEXT)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list) or not fields:
                    self.fail(pointer + "/fields", "must provide at least 1 item")
                    fields = []
                if len(fields) > SECTION_FIELDS:
                    self.fail(pointer + "/fields", f"no more than {SECTION_FIELDS} items allowed")
                for i, field_ in enumerate(fields):
                    self.text(field_, f"{pointer}/fields/{i}", FIELD_TEXT)
            if "accessory" in block:
                self.element(block["accessory"], pointer + "/accessory", _INTERACTIVE | {"image"})
        elif kind == "header":
            self.text(block.get("text"), pointer + "/text", HEADER_TEXT, plain=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.fail(pointer + "/elements", "must provide at least 1 item")
                return
            if len(elements) > CONTEXT_ELEMENTS:
                self.fail(pointer + "/elements", f"no more than {CONTEXT_ELEMENTS} items allowed")
            for i, element in enumerate(elements):
                where = f"{pointer}/elements/{i}"
                if isinstance(element, dict) and element.get("type") == "image":
                    self.string(
                        element.get("alt_text"), where + "/alt_text", IMAGE_ALT, required=True
                    )
                else:
                    self.text(element, where, SECTION_TEXT)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.fail(pointer + "/elements", "must provide at least 1 item")
                return
            if len(elements) > ACTIONS_ELEMENTS:
                self.fail(pointer + "/elements", f"no more than {ACTIONS_ELEMENTS} items allowed")
            action_ids: set[str] = set()
            for i, element in enumerate(elements):
                self.element(element, f"{pointer}/elements/{i}", _INTERACTIVE)
                action_id = element.get("action_id") if isinstance(element, dict) else None
                if action_id is not None and action_id in action_ids:
                    self.fail(f"{pointer}/elements/{i}/action_id", "duplicate action_id")
                action_ids.add(str(action_id))
        elif kind == "input":
            self.text(block.get("label"), pointer + "/label", INPUT_LABEL, plain=True)
            if "hint" in block:
                self.text(block["hint"], pointer + "/hint", INPUT_LABEL, plain=True)
            self.element(block.get("element"), pointer + "/element", _INPUTS)
        elif kind == "image":
            self.string(block.get("image_url"), pointer + "/image_url", URL_LENGTH, required=True)
            self.string(block.get("alt_text"), pointer + "/alt_text", IMAGE_ALT, required=True)
        elif kind != "divider":
            self.fail(pointer + "/type", f"{kind!r} is not a block type this fake knows")

    def blocks(self, blocks: Any, pointer: str, limit: int) -> None:
        if not isinstance(blocks, list):
            self.fail(pointer, "must be an array")
            return
        if len(blocks) > limit:
            self.fail(pointer, f"no more than {limit} items allowed")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            self.block(block, f"{pointer}/{i}", seen)


def message_errors(args: dict[str, Any]) -> tuple[str, list[str]] | None:
    """What Slack refuses in a message's ``text`` and ``blocks``: (error, messages), or None.

    Example:
        >>> message_errors({"text": "hi", "blocks": [{"type": "header", "text": {
        ...     "type": "plain_text", "text": "x" * 151}}]})[0]
        'invalid_blocks'
    """
    check = _Check()
    if args.get("blocks") not in (None, "", []):
        check.blocks(args["blocks"], "/blocks", MESSAGE_BLOCKS)
    if check.errors:
        return "invalid_blocks", check.errors
    text = args.get("text")
    if isinstance(text, str) and len(text) > MESSAGE_TEXT:
        return "msg_too_long", [f"[ERROR] text is {len(text)} characters, over {MESSAGE_TEXT}"]
    if check.chars > BLOCKS_TEXT:
        return "msg_blocks_too_long", [
            f"[ERROR] the blocks hold {check.chars} characters of text, over {BLOCKS_TEXT}"
        ]
    return None


def view_errors(view: Any) -> list[str]:
    """What Slack refuses in a modal or App Home view (``views.open/update/push/publish``)."""
    check = _Check()
    if not isinstance(view, dict):
        check.fail("/view", "must be an object")
        return check.errors
    if view.get("type") not in ("modal", "home"):
        check.fail("/view/type", "must be one of modal, home")
    if view.get("type") == "modal":
        check.text(view.get("title"), "/view/title", VIEW_TITLE, plain=True)
        for key in ("submit", "close"):
            if key in view:
                check.text(view[key], f"/view/{key}", VIEW_TITLE, plain=True)
    check.string(view.get("callback_id"), "/view/callback_id", ID_LENGTH)
    check.string(view.get("private_metadata"), "/view/private_metadata", PRIVATE_METADATA)
    check.blocks(view.get("blocks"), "/view/blocks", VIEW_BLOCKS)
    return check.errors
