"""An operator's words in a request body: plain text on one line, or a 400 naming the field.

A kill switch's ``reason`` (``POST /v1/breakers/{scope}/open``), a silence's ``reason``
(``POST /v1/silences``) and an acknowledgement's ``note`` (``POST /v1/alerts/{id}/ack``)
are a person's or a runbook's words, shown to agents in their 503s, in the alert and
kept in the audit: a control character (a line break, a tab, NUL, ESC, a bidi control)
is refused, not stripped, as a person can send them again (audit28 C1 L1). An agent's
text, which cannot be refused, is cleaned instead (:mod:`guards.agent_text`).

Example:
    >>> # reason: Annotated[FreeText, plain_words("shown in the alert")] = Field(None, ...)
    >>> as_sent("a\\x1bb"), as_sent(None)
    ('"a\\\\u001bb"', 'null')
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BeforeValidator

from guards.agent_text import CONTROL

__all__ = ["BREAKER_REASON_SHOWN", "as_sent", "plain_words", "refuse_control"]

# why a kill switch's reason is plain text, in POST /v1/breakers/{scope}/open's 400 and
# `/agent breaker <scope> open <reason>`'s refusal alike (recheck28 Kc L2)
BREAKER_REASON_SHOWN = "agents read it in their 503s"


def as_sent(value: Any) -> str:
    """``value`` as JSON writes it (``true``, ``null``, ``"2"``), cut to 40 characters."""
    return json.dumps(value)[:40]


def refuse_control(value: str, *, why: str) -> None:
    """ValueError (read_json makes it a 400 naming the field) when ``value`` holds a
    control character: which one, where, and ``why`` it must be plain text."""
    if found := CONTROL.search(value):
        raise ValueError(
            f"holds a control character ({as_sent(found.group())}, at character"
            f" {found.start() + 1}): {why}, so it is plain text on one line (no line breaks,"
            " tabs or bidi controls); nothing changed"
        )


def plain_words(why: str) -> Any:
    """A validator for an optional text field (``null`` or absent: none) that refuses
    a control character (:func:`refuse_control`)."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            refuse_control(value, why=why)
        return value

    return BeforeValidator(check)
