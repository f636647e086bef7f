"""Shell mode's rendering: Block Kit and Slack calls as terminal text.

Slack mrkdwn becomes plain text (:func:`plain`: mentions, channels, links), Block
Kit blocks become lines (:func:`render_text`), with each button as ``[label]`` or,
when the caller numbers it, ``[1] label``; a file upload shows its first lines.
:class:`ShellMessage` and :class:`Button` are what the console remembers of a
message it printed, so a typed number can click its button.

Example:
    >>> print(render_text([{"type": "section", "text": {"type": "mrkdwn", "text": "hi <@U1>"}}]))
    hi @U1
    >>> destination("U1"), destination("C1"), destination(None)
    ('DM @U1', '#C1', 'you')
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Button",
    "ShellMessage",
    "destination",
    "file_text",
    "plain",
    "render_text",
    "text_of",
]

MAX_FILE_LINES = 60
_USER = re.compile(r"<@([A-Z0-9a-z._-]+)(?:\|([^>]+))?>")
_CHANNEL = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)[^>]*>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")


def plain(text: str) -> str:
    """Slack mrkdwn markup to terminal text (mentions, channels, links)."""
    text = _USER.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(lambda m: "@" + m.group(1), text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass
class Button:
    """A button the console printed as ``[number] label``; typing the number clicks it."""

    number: int
    label: str
    action_id: str
    value: str
    block_id: str | None
    message: ShellMessage | None


@dataclass
class ShellMessage:
    """A message the console printed: its blocks, and its buttons still clickable."""

    channel: str | None
    ts: str | None
    blocks: list[dict[str, Any]]
    text: str
    buttons: list[Button] = field(default_factory=list)


def text_of(obj: Any) -> str:
    """The plain text of a Block Kit text object (``{"type": ..., "text": ...}``)."""
    if isinstance(obj, dict):
        return plain(str(obj.get("text") or ""))
    return ""


def render_text(
    blocks: list[dict[str, Any]],
    text: str = "",
    *,
    on_button: Callable[[dict[str, Any], str | None], int | None] | None = None,
) -> str:
    """Block Kit as terminal lines; ``on_button`` numbers each button (None: unnumbered)."""

    def label(element: dict[str, Any], block_id: str | None) -> str:
        name = text_of(element.get("text")) or element.get("action_id", "?")
        number = None if on_button is None else on_button(element, block_id)
        return f"[{name}]" if number is None else f"[{number}] {name}"

    if not blocks:
        return plain(text)
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        block_id = block.get("block_id")
        if kind == "header":
            lines.append(f"■ {text_of(block.get('text'))}")
        elif kind == "section":
            body = text_of(block.get("text"))
            if body:
                lines.append(body)
            lines.extend("  " + text_of(f) for f in block.get("fields") or [])
            accessory = block.get("accessory") or {}
            if accessory.get("type") == "button":
                lines.append("  " + label(accessory, block_id))
        elif kind == "context":
            parts = [text_of(e) for e in block.get("elements") or [] if e.get("type") != "image"]
            # every line indented, a context of several lines' too (recheck25 L4)
            lines.append("  " + " · ".join(p for p in parts if p).replace("\n", "\n  "))
        elif kind == "divider":
            lines.append("─" * 40)
        elif kind == "actions":
            buttons = [
                label(e, block_id) for e in block.get("elements") or [] if e.get("type") == "button"
            ]
            if buttons:
                lines.append("  " + "   ".join(buttons))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif text and not lines:
            lines.append(plain(text))
    return "\n".join(lines)


def destination(channel: str | None) -> str:
    """Where a message went, as a title: a channel, a DM, or the person at the terminal."""
    if not channel:
        return "you"
    if channel[:1] in ("U", "W"):
        return f"DM @{channel}"
    return channel if channel.startswith("#") else f"#{channel}"


def file_text(args: dict[str, Any]) -> str:
    """A ``files.upload`` as a title line, the comment and the file's first lines."""
    where = destination(args.get("channel"))
    lines = [f"── file {args.get('filename')} ({args.get('title') or ''}) to {where} ──"]
    if args.get("initial_comment"):
        lines.append(plain(str(args["initial_comment"])))
    try:
        content = base64.b64decode(str(args.get("content_b64") or ""), validate=True)
        body = content.decode("utf-8").splitlines()
    except (binascii.Error, ValueError):
        body = ["(binary content)"]
    lines.extend(body[:MAX_FILE_LINES])
    if len(body) > MAX_FILE_LINES:
        lines.append(f"… and {len(body) - MAX_FILE_LINES} more lines")
    return "\n".join(lines)
