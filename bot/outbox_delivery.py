"""Outbox delivery: what a deliverer answers, and the pacing and retry policy.

A :class:`Deliverer` (the Slack Web API, or the terminal in shell mode) makes one
call and answers where it landed (:class:`Delivered`), or raises:

- :class:`RetryLater` for a transient failure: a ``429`` waits its ``Retry-After``
  (``after``); 5xx and network errors wait :func:`backoff` of the attempts so far;
- :class:`DeliveryFailed` for a permanent one (``channel_not_found``,
  ``invalid_blocks``...): the row is failed and not tried again.

When Slack itself refused the call (``DeliveryFailed.error``, its error code), the
worker first hands it (:class:`Refused`) to its refusal hooks, in the transaction that
fails the row: the alerts take the next escalation step when a page is refused, post
an alert again when its message was deleted (the hook puts the row back and answers
True: it is not failed), or tell a person that the alerts channel refuses posts.

Pacing: one call per channel key every ``PACE_SECONDS`` (Slack allows about one
message a second per channel). A row still failing ``MAX_AGE_SECONDS`` after its
first try is given up.

Example:
    >>> backoff(1), backoff(4), backoff(20)
    (1.0, 8.0, 300.0)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from guards.store import Tx

__all__ = [
    "MAX_AGE_SECONDS",
    "MAX_BACKOFF_SECONDS",
    "PACE_SECONDS",
    "Delivered",
    "Deliverer",
    "DeliveryFailed",
    "RefusalHook",
    "Refused",
    "RetryLater",
    "backoff",
    "run_refusal_hooks",
]

log = logging.getLogger("bot.outbox")  # the outbox's log lines keep one logger name

PACE_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0
MAX_AGE_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Delivered:
    """Where a call landed: the message's channel and ``ts`` (when there is one)."""

    channel: str | None = None
    ts: str | None = None


class RetryLater(Exception):
    """A transient failure: try again after ``after`` seconds (None: backoff)."""

    def __init__(self, reason: str, *, after: float | None = None, kind: str = "other") -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after
        self.kind = kind


class DeliveryFailed(Exception):
    """A permanent failure: the row is marked failed and not tried again.

    ``error``: Slack's error code when Slack refused the call (``user_not_found``,
    ``is_archived``, ``message_not_found``...); None for a failure of our own."""

    def __init__(self, reason: str, *, error: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass(frozen=True)
class Refused:
    """A call Slack refused for good, as the worker hands it to its refusal hooks.

    ``args``: as sent (references filled in); ``stored``: as the row holds them."""

    row_id: int
    ref: str | None
    method: str
    lane: str
    args: dict[str, Any]
    stored: dict[str, Any]
    error: str


#: called in the transaction that fails the row; True: the hook put the row back or
#: replaced it (it is not failed, nor counted)
RefusalHook = Callable[[Tx, Refused], bool]


class Deliverer(Protocol):
    async def deliver(self, method: str, args: dict[str, Any]) -> Delivered: ...


def backoff(attempts: int) -> float:
    """Seconds to wait after the n-th failed attempt: 1, 2, 4, ... up to 5 minutes."""
    return float(min(MAX_BACKOFF_SECONDS, 2 ** max(0, attempts - 1)))


def run_refusal_hooks(tx: Tx, hooks: list[RefusalHook], refused: Refused) -> bool:
    """Run the hooks, each in its own savepoint (one that raises is logged and undone:
    the row fails as it would have); True when one put the row back."""
    for hook in list(hooks):
        tx.execute("SAVEPOINT refusal_hook")
        try:
            handled = hook(tx, refused)
        except Exception:
            log.exception("outbox row %s: a refusal hook raised", refused.row_id)
            tx.execute("ROLLBACK TO refusal_hook")
            handled = False
        tx.execute("RELEASE refusal_hook")
        if handled:
            return True
    return False
