"""What Slack is answered for a verified request no listener takes, in both transports.

Most are nobody's wait: an event the app is not subscribed to, a ``view_closed``, a
``block_suggestion``, a type Slack adds later. They get an empty 200, logged at DEBUG
only, as Socket Mode acknowledges its envelopes: Slack sends a non-2xx event again and
may turn an app's events off after many (audit27 B2 L7).

A slash command other than ``/agent`` is a person waiting for an answer (the Slack app
has a second command, or the operator renamed ``/agent`` there): they are told that
Nightshift answers ``/agent`` only, and a WARNING names the command, so that neither the
person nor the operator is left with a command that silently does nothing (review27 R2
M2). Socket Mode passes a slash command to Bolt, so it is answered the same way.

Example:
    >>> unhandled({"command": "/nightshift", "text": "help"}).status
    200
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.response import BoltResponse

from bot.escape import printable, slack_text

__all__ = ["foreign", "unhandled"]

log = logging.getLogger(__name__)
COMMAND_CHARS = 40  # of a foreign command's name, said and logged (Slack's are shorter)


def foreign(command: str) -> str:
    """What the sender of a slash command other than ``/agent`` is told (only they see it).

    Example:
        >>> print(foreign("/nightshift"))  # doctest: +NORMALIZE_WHITESPACE
        Nightshift answers `/agent` only (`/agent help` says what it does): `/nightshift`
        reaches it by the Slack app's settings, but nothing here answers it, so nothing
        was done. An admin of the Slack app can point the command at `/agent`.
    """
    name = slack_text(command, COMMAND_CHARS).replace("`", "'")
    return (
        f"Nightshift answers `/agent` only (`/agent help` says what it does): `{name}` reaches"
        " it by the Slack app's settings, but nothing here answers it, so nothing was done."
        " An admin of the Slack app can point the command at `/agent`."
    )


def unhandled(body: Any) -> BoltResponse:
    """The answer to a request (its parsed ``body``) that no listener takes: an ephemeral
    text for a slash command, with its WARNING; else an empty 200, at DEBUG."""
    body = body if isinstance(body, dict) else {}
    command = body.get("command")
    if isinstance(command, str) and command:  # a person typed it: tell them
        log.warning(
            "Slack sent the slash command %s, which Nightshift does not answer (it answers"
            " /agent): the Slack app's settings send it here; point it at /agent there or"
            " remove it. Its sender was told so",
            printable(command[:COMMAND_CHARS]),
        )
        return BoltResponse(
            status=200, body={"response_type": "ephemeral", "text": foreign(command)}
        )
    event = body.get("event")
    kind = event.get("type") if isinstance(event, dict) else body.get("type")
    log.debug("acknowledged a Slack request no listener takes: %.100r", kind)
    return BoltResponse(status=200, body="")
