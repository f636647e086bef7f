"""Slack's message limits, and the one function that fits a message to them.

Slack refuses a message past its limits (``invalid_blocks``, ``msg_too_long``,
``msg_blocks_too_long``), and a refused reply at 3 a.m. is a silent failure. Lists
count and cut their own items ("… and 12 more breakers"); :func:`fit` is the safety
net applied where every message leaves (:func:`bot.commands.Reply.limited` for
command replies, the outbox deliverer for every Slack call, ``views.open`` for
modals). It never cuts silently: a clipped text ends with "… and N more lines", a
shortened label with "…", dropped blocks are counted in a last context block, and
the cut is logged.

The limits (Slack's Block Kit reference and method docs): 50 blocks in a message
(100 in a view), section text 3,000 characters, a field 2,000 and at most 10 fields,
a header 150, a context block 10 elements, an actions block 25 elements, a button's
text 75 and its value 2,000, ids 255, a modal's title 24, a message's ``text``
40,000. Slack also refuses a message whose blocks hold "about 12,000" characters of
text in all (``msg_blocks_too_long``; undocumented, slackapi/bolt-js#2509): we keep
to :data:`BLOCKS_TEXT`, well under it.

Example:
    >>> blocks, text = fit([{"type": "divider"}] * 60, "sixty dividers")
    >>> len(blocks), blocks[-1]["elements"][0]["text"]
    (50, '… and 11 more blocks not shown (too long)')
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from guards.words import plural

__all__ = [
    "BLOCKS_TEXT",
    "BUTTON_TEXT",
    "LIST_TEXT",
    "MESSAGE_BLOCKS",
    "MESSAGE_TEXT",
    "VIEW_BLOCKS",
    "clip_text",
    "fit",
    "fit_args",
    "fit_view",
    "text_chars",
]

log = logging.getLogger(__name__)

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
MESSAGE_TEXT = 40_000
BLOCKS_TEXT = 10_000  # our budget for all block text of a message (Slack refuses ~12,000)
LIST_TEXT = BLOCKS_TEXT - 1_000  # a list's rows; the rest for its title, hints and counts
SECTION_TEXT = 3000
FIELD_TEXT = 2000
SECTION_FIELDS = 10
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
URL_LENGTH = 3000
ID_LENGTH = 255
VIEW_TITLE = 24
INPUT_LABEL = 2000
OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
PLACEHOLDER = 150
NOTE_ROOM = 120  # characters kept free for the note that counts dropped blocks

_TEXT_TYPES = ("plain_text", "mrkdwn")
_MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral"})
_TRUNCATED = " … (truncated)"


def clip_text(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, saying what was left out.

    Whole lines are kept and the rest counted ("… and 3 more lines"); a single
    over-long line is cut with " … (truncated)"; a short label (under 200) ends "…".

    Example:
        >>> clip_text("\\n".join(["x" * 99] * 5), 250).split("\\n")[-1]
        '… and 3 more lines'
        >>> clip_text("Approve the trial of acme/alice/rss-bot", 20)
        'Approve the trial o…'
    """
    if len(text) <= limit:
        return text
    if limit < 200:
        return text[: limit - 1] + "…"
    lines = text.split("\n")
    kept: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        note = f"\n… and {plural(len(lines) - i, 'more line')}"
        if size + len(line) + len(note) > limit:
            break
        kept.append(line)
        size += len(line) + 1
    if kept:
        return "\n".join(kept) + f"\n… and {plural(len(lines) - len(kept), 'more line')}"
    return text[: limit - len(_TRUNCATED)] + _TRUNCATED


def text_chars(value: Any) -> int:
    """Characters of text in a block (or a list of them): every text object's ``text``."""
    if isinstance(value, list):
        return sum(text_chars(v) for v in value)
    if not isinstance(value, dict):
        return 0
    own = value.get("text")
    size = len(own) if value.get("type") in _TEXT_TYPES and isinstance(own, str) else 0
    return size + sum(text_chars(v) for v in value.values() if isinstance(v, (dict, list)))


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


class _Fitter:
    """Fits blocks one by one and remembers what it had to cut (for the log)."""

    def __init__(self) -> None:
        self.cuts: list[str] = []

    def text(self, obj: Any, limit: int, *, plain: bool = False) -> dict[str, Any] | None:
        """A text object within ``limit``; None when there is no text to show."""
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"]:
            return None
        out = dict(obj)
        if plain or out.get("type") not in _TEXT_TYPES:
            out["type"] = "plain_text"
            out.pop("verbatim", None)
        if len(out["text"]) > limit:
            self.cuts.append(f"a text of {len(out['text'])} characters")
            out["text"] = clip_text(out["text"], limit)
        return out

    def element(self, element: Any) -> dict[str, Any] | None:
        """An interactive element within limits; None when it cannot be sent as it is."""
        if not isinstance(element, dict):
            return None
        out = dict(element)
        action_id = out.get("action_id")
        value = out.get("value")
        if (isinstance(action_id, str) and len(action_id) > ID_LENGTH) or (
            isinstance(value, str) and len(value) > BUTTON_VALUE
        ):
            return None  # a cut id or value would act on something else
        if isinstance(out.get("url"), str) and len(out["url"]) > URL_LENGTH:
            return None
        if out.get("type") == "button":
            label = self.text(out.get("text"), BUTTON_TEXT, plain=True)
            if label is None:
                return None
            out["text"] = label
        if "placeholder" in out:
            placeholder = self.text(out["placeholder"], PLACEHOLDER, plain=True)
            if placeholder is None:
                out.pop("placeholder")
            else:
                out["placeholder"] = placeholder
        if isinstance(out.get("options"), list):
            out["options"] = self.options(out["options"])
        return out

    def options(self, options: list[Any]) -> list[Any]:
        kept = []
        for option in options[:OPTIONS]:
            value = option.get("value") if isinstance(option, dict) else None
            label = self.text(option.get("text") if isinstance(option, dict) else None, OPTION_TEXT)
            if isinstance(value, str) and len(value) <= OPTION_VALUE and label is not None:
                kept.append({**option, "text": label})
        if len(kept) < len(options):
            self.cuts.append(f"{len(options) - len(kept)} of {len(options)} options")
        return kept

    def block(self, block: Any) -> list[dict[str, Any]]:
        """The block within Slack's limits: [] (nothing to show), [block], or [block, note]."""
        if not isinstance(block, dict):
            return []
        out = dict(block)
        if isinstance(out.get("block_id"), str) and len(out["block_id"]) > ID_LENGTH:
            out["block_id"] = out["block_id"][:ID_LENGTH]
        kind = out.get("type")
        if kind == "section":
            return self.section(out)
        if kind == "header":
            text = self.text(out.get("text"), HEADER_TEXT, plain=True)
            return [] if text is None else [{**out, "text": text}]
        if kind == "context":
            return self.context(out)
        if kind == "actions":
            return self.actions(out)
        if kind == "input":
            label = self.text(out.get("label"), INPUT_LABEL, plain=True)
            if label is None:
                return []
            out["label"] = label
            if "hint" in out:
                out["hint"] = self.text(out["hint"], INPUT_LABEL, plain=True)
                if out["hint"] is None:
                    out.pop("hint")
            element = self.element(out.get("element"))
            if element is None:
                self.cuts.append("an input block")
                return [_context("… an input was left out (too long for Slack)")]
            return [{**out, "element": element}]
        return [out]

    def section(self, out: dict[str, Any]) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = []
        text = self.text(out.get("text"), SECTION_TEXT)
        if text is None:
            out.pop("text", None)
        else:
            out["text"] = text
        if "fields" in out:
            raw = out["fields"] if isinstance(out["fields"], list) else []
            fields = [f for f in (self.text(f, FIELD_TEXT) for f in raw) if f is not None]
            if len(fields) > SECTION_FIELDS:
                hidden = len(fields) - (SECTION_FIELDS - 1)
                self.cuts.append(f"{hidden} section fields")
                more = {"type": "mrkdwn", "text": f"… and {hidden} more not shown (too long)"}
                fields = [*fields[: SECTION_FIELDS - 1], more]
            if fields:
                out["fields"] = fields
            else:
                out.pop("fields")
        accessory = out.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") != "image":  # an element
            fitted = self.element(accessory)
            if fitted is not None:
                out["accessory"] = fitted
            else:
                out.pop("accessory")
                self.cuts.append("a section's button")
                notes.append(_context("… a button was left out (too long for Slack)"))
        if "text" not in out and "fields" not in out:
            return notes
        return [out, *notes]

    def context(self, out: dict[str, Any]) -> list[dict[str, Any]]:
        raw = out.get("elements") if isinstance(out.get("elements"), list) else []
        elements: list[dict[str, Any]] = []
        for element in raw or []:
            if isinstance(element, dict) and element.get("type") == "image":
                elements.append(element)
            elif (text := self.text(element, SECTION_TEXT)) is not None:
                elements.append(text)
        if len(elements) > CONTEXT_ELEMENTS:
            hidden = len(elements) - (CONTEXT_ELEMENTS - 1)
            self.cuts.append(f"{hidden} context elements")
            more = {"type": "mrkdwn", "text": f"… and {hidden} more not shown (too long)"}
            elements = [*elements[: CONTEXT_ELEMENTS - 1], more]
        return [{**out, "elements": elements}] if elements else []

    def actions(self, out: dict[str, Any]) -> list[dict[str, Any]]:
        raw = out.get("elements") if isinstance(out.get("elements"), list) else []
        elements: list[dict[str, Any]] = []
        action_ids: set[str] = set()
        for element in raw or []:
            fitted = self.element(element)
            action_id = fitted.get("action_id") if fitted is not None else None
            if fitted is None or (action_id is not None and action_id in action_ids):
                continue  # cannot be sent as it is; Slack refuses a repeated action_id
            if action_id is not None:
                action_ids.add(str(action_id))
            elements.append(fitted)
        elements = elements[:ACTIONS_ELEMENTS]
        hidden = len(raw or []) - len(elements)
        kept = [{**out, "elements": elements}] if elements else []
        if not hidden:
            return kept
        self.cuts.append(plural(hidden, "button"))
        return [*kept, _context(f"… and {plural(hidden, 'more button')} not shown (too long)")]


def _unique_ids(blocks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks with a repeated ``block_id`` dropped from the later ones (Slack refuses it)."""
    seen: set[str] = set()
    out = []
    for block in blocks:
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen:
                block = {k: v for k, v in block.items() if k != "block_id"}
            seen.add(block_id)
        out.append(block)
    return out


def fit(
    blocks: list[dict[str, Any]],
    text: str,
    *,
    max_blocks: int = MESSAGE_BLOCKS,
    max_chars: int | None = BLOCKS_TEXT,
) -> tuple[list[dict[str, Any]], str]:
    """``blocks`` and ``text`` within Slack's limits, with a note for whatever was cut.

    A message that fits comes back unchanged (and fitting twice changes nothing more).
    Blocks past ``max_blocks`` or past ``max_chars`` characters of text in all are
    dropped from the end and counted in a context block, which ends the message, or
    comes just before its last block when that one holds buttons: they stay.

    Example:
        >>> blocks, _ = fit([{"type": "header", "text": {"type": "plain_text",
        ...     "text": "x" * 200}}], "")
        >>> len(blocks[0]["text"]["text"])
        150
    """
    fitter = _Fitter()
    fitted = _unique_ids(b for block in blocks for b in fitter.block(block))
    sizes = [text_chars(b) for b in fitted]
    total = sum(sizes)
    if len(fitted) > max_blocks or (max_chars is not None and total > max_chars):
        # buttons at the end (Acknowledge all...) stay: the blocks before them are cut
        tail = fitted[-1:] if fitted[-1].get("type") == "actions" else []
        body = fitted[: len(fitted) - len(tail)]
        room = (total if max_chars is None else max_chars - NOTE_ROOM) - text_chars(tail)
        kept = used = 0
        while kept < min(len(body), max_blocks - 1 - len(tail)) and used + sizes[kept] <= room:
            used += sizes[kept]
            kept += 1
        hidden = len(body) - kept
        fitter.cuts.append(f"{hidden} of {len(fitted)} blocks")
        note = f"… and {hidden} more block{'s' if hidden != 1 else ''} not shown (too long)"
        fitted = [*body[:kept], _context(note), *tail]
    if len(text) > MESSAGE_TEXT:
        fitter.cuts.append(f"a message text of {len(text)} characters")
        text = clip_text(text, MESSAGE_TEXT)
    if fitter.cuts:
        log.warning("a Slack message was cut to Slack's limits: %s", "; ".join(fitter.cuts))
    return fitted, text


def fit_view(view: dict[str, Any]) -> dict[str, Any]:
    """A modal or App Home view within Slack's limits (100 blocks, titles of 24)."""
    out = dict(view)
    for key in ("title", "submit", "close"):
        obj = out.get(key)
        if isinstance(obj, dict) and isinstance(obj.get("text"), str):
            out[key] = {**obj, "text": clip_text(obj["text"], VIEW_TITLE)}
    if isinstance(out.get("blocks"), list):
        out["blocks"], _ = fit(out["blocks"], "", max_blocks=VIEW_BLOCKS, max_chars=None)
    return out


def _fit_message(message: dict[str, Any]) -> dict[str, Any]:
    blocks = message.get("blocks")
    text = message.get("text")
    if not isinstance(blocks, list) and not isinstance(text, str):
        return message
    new_blocks, new_text = fit(blocks if isinstance(blocks, list) else [], text or "")
    out = dict(message)
    if isinstance(blocks, list):
        out["blocks"] = new_blocks
    if isinstance(text, str):
        out["text"] = new_text
    return out


def fit_args(method: str, args: dict[str, Any]) -> dict[str, Any]:
    """An outgoing Slack call's arguments with its message (or view) fitted to the limits.

    ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``, a ``response_url``
    post (``args["payload"]``) and ``views.*`` are fitted; other calls pass unchanged.
    """
    if method in _MESSAGE_METHODS:
        return _fit_message(args)
    if method == "response_url" and isinstance(args.get("payload"), dict):
        return {**args, "payload": _fit_message(args["payload"])}
    if method.startswith("views.") and isinstance(args.get("view"), dict):
        return {**args, "view": fit_view(args["view"])}
    return args
