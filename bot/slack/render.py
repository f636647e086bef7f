"""Block Kit plumbing shared by the Slack and shell transports (plain dicts, no Slack calls)."""

from __future__ import annotations

from typing import Any

from bot.blocks import context
from bot.commands import Reply

__all__ = ["replace_actions", "reply_payload"]


def reply_payload(reply: Reply) -> dict[str, Any]:
    """A reply as a slash-command / response_url body, within Slack's limits."""
    limited = reply.limited()
    return {
        "response_type": "ephemeral" if limited.ephemeral else "in_channel",
        "text": limited.text,
        "blocks": limited.blocks,
    }


def replace_actions(
    blocks: list[dict[str, Any]], block_id: str | None, line: str
) -> list[dict[str, Any]]:
    """The message's blocks with its buttons replaced by a context ``line``.

    The actions block holding the clicked button (``block_id``) becomes the line;
    when it cannot be found, every actions block goes and the line is appended.
    """
    out: list[dict[str, Any]] = []
    replaced = False
    for block in blocks:
        if block.get("type") == "actions" and block_id and block.get("block_id") == block_id:
            out.append(context(line))
            replaced = True
        else:
            out.append(block)
    if not replaced:
        out = [b for b in out if b.get("type") != "actions"]
        out.append(context(line))
    return out
