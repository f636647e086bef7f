"""What a Slack interaction payload says, read into plain values: the message a click
came from (:class:`Origin`), the values of a submitted modal (:func:`view_values`), and
what a modal's submit came to (:class:`Submitted`).

Example:
    >>> view_values({"state": {"values": {"amount": {"a": {"value": "$5"}}}}})
    {'amount': '$5'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.commands import ActionResult

__all__ = ["Origin", "Submitted", "view_values"]


@dataclass(frozen=True)
class Origin:
    """The message a click came from, to update it later."""

    channel: str | None
    ts: str | None
    blocks: list[dict[str, Any]]
    text: str
    block_id: str | None
    response_url: str | None
    ephemeral: bool

    @classmethod
    def of(cls, body: dict[str, Any], block_id: str | None) -> Origin:
        container = body.get("container") or {}
        message = body.get("message") or {}
        return cls(
            channel=container.get("channel_id") or (body.get("channel") or {}).get("id"),
            ts=container.get("message_ts") or message.get("ts"),
            blocks=list(message.get("blocks") or []),
            text=str(message.get("text") or ""),
            block_id=block_id,
            response_url=body.get("response_url"),
            ephemeral=bool(container.get("is_ephemeral")),
        )


@dataclass(frozen=True)
class Submitted:
    """A modal's submit: its result, or its refusal, as words under the form's fields
    (``errors``) and in full for a DM once the form has closed (``told``)."""

    result: ActionResult | None
    errors: dict[str, str] | None = None
    told: str = ""


def view_values(view: dict[str, Any]) -> dict[str, str]:
    """``{block_id: value}`` from a submitted view's state (text inputs and selects)."""
    out: dict[str, str] = {}
    for block_id, elements in ((view.get("state") or {}).get("values") or {}).items():
        for element in elements.values():
            if element.get("selected_option"):
                out[block_id] = str(element["selected_option"].get("value") or "")
            else:
                out[block_id] = str(element.get("value") or "")
            break
    return out
