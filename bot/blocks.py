"""Block Kit blocks and text that fit Slack's limits: what replies and alerts are built of.

Example:
    >>> section("*Budget: acme*")["text"]["type"]
    'mrkdwn'
    >>> bar(0.42)
    '▓▓▓▓░░░░░░'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.slack.limits import MESSAGE_BLOCKS, clip_text
from guards.agent_text import CONTROL  # (control characters and bidi controls: one home)

__all__ = [
    "CONTROL",
    "MAX_BLOCKS",
    "MAX_TEXT",
    "actions",
    "bar",
    "button",
    "clip",
    "context",
    "echo",
    "fit_text",
    "header",
    "line_sections",
    "section",
]

MAX_BLOCKS = MESSAGE_BLOCKS
MAX_TEXT = 3000


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Cut ``text`` to ``limit`` characters, saying what was left out (as :func:`clip_text`).

    Example:
        >>> clip("Approve the trial of acme/alice/rss-bot", 20)
        'Approve the trial o…'
    """
    return clip_text(text, limit)


def line_sections(
    lines: Sequence[str],
    *,
    per_section: int = 15,
    max_sections: int | None = None,
    limit: int = MAX_TEXT,
) -> tuple[list[dict[str, Any]], int]:
    """Section blocks holding whole ``lines``, and how many of the lines they hold.

    At most ``per_section`` lines and ``limit`` characters go in one section, so no clip
    cuts a list mid-way (only a single over-long line is clipped); with
    ``max_sections`` the lines that do not fit are left out, for the caller to count
    in its own "… and N more <items>".

    Example:
        >>> blocks, placed = line_sections([f"agent {i}" for i in range(40)], max_sections=2)
        >>> len(blocks), placed
        (2, 30)
    """
    out: list[dict[str, Any]] = []
    chunk: list[str] = []
    size = placed = 0
    for line in lines:
        line = clip(line, limit)
        if chunk and (len(chunk) >= per_section or size + 1 + len(line) > limit):
            out.append(section("\n".join(chunk)))
            chunk, size = [], 0
            if max_sections is not None and len(out) >= max_sections:
                return out, placed
        size += len(line) + (1 if chunk else 0)
        chunk.append(line)
        placed += 1
    if chunk:
        out.append(section("\n".join(chunk)))
    return out, placed


def fit_text(
    head: Sequence[str],
    items: Sequence[str],
    *,
    more: Callable[[int], str],
    total: int | None = None,
    tail: Sequence[str] = (),
    limit: int = MAX_TEXT,
) -> str:
    """The plain-text rendering of a list within ``limit`` characters, by construction.

    ``head`` and ``tail`` are always kept; then as many whole ``items`` as fit, and
    ``more(n)`` where ``n`` counts the items left out (of ``total``, when the caller
    already dropped some).

    Example:
        >>> more = lambda n: f"… and {n} more"
        >>> fit_text(["3 jobs"], ["alpha", "beta", "gamma"], more=more, limit=30)
        '3 jobs\\nalpha\\n… and 2 more'
    """
    total = len(items) if total is None else total
    fixed = [clip(line, limit // 4) for line in (*head, *tail)]
    room = limit - sum(len(line) + 1 for line in fixed)
    kept: list[str] = []
    for i, item in enumerate(items):
        rest = total - i - 1
        note = len(more(total)) + 1 if rest else 0  # room for the note, if one follows
        if len(item) + 1 + note > room:
            break
        kept.append(item)
        room -= len(item) + 1
    hidden = total - len(kept)
    lines = [*fixed[: len(head)], *kept, *([more(hidden)] if hidden else []), *fixed[len(head) :]]
    return clip("\n".join(lines), limit)


def echo(text: str, limit: int = 40) -> str:
    """User text quoted back in a reply: short, and unable to mention anyone or break markup.

    Example:
        >>> echo("<!channel> `x`")
        "&lt;!channel&gt; 'x'"
    """
    short = CONTROL.sub(" ", text[:limit]) + ("…" if len(text) > limit else "")
    return short.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text)}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text)}]}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, 150)}}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        b["style"] = style
    return b


def actions(*buttons: dict[str, Any], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(buttons)}
    if block_id:
        block["block_id"] = block_id
    return block


def bar(fraction: float, width: int = 10) -> str:
    """A text bar for a fraction of a budget: ``▓▓▓▓▓░░░░░``."""
    fraction = min(1.0, max(0.0, fraction))
    full = round(fraction * width)
    return "▓" * full + "░" * (width - full)
