"""Outbox delivery: what a deliverer answers, and the pacing and retry policy.

A :class:`Deliverer` (the Slack Web API, or the terminal in shell mode) makes one
call and answers where it landed (:class:`Delivered`), or raises:

- :class:`RetryLater` for a transient failure: a ``429`` waits its ``Retry-After``
  (``after``); 5xx and network errors wait :func:`backoff` of the attempts so far;
- :class:`DeliveryFailed` for a permanent one (``channel_not_found``,
  ``invalid_blocks``...): the row is failed and not tried again.

Pacing: one call per channel key every ``PACE_SECONDS`` (Slack allows about one
message a second per channel). A row still failing ``MAX_AGE_SECONDS`` after its
first try is given up.

Example:
    >>> backoff(1), backoff(4), backoff(20)
    (1.0, 8.0, 300.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "MAX_AGE_SECONDS",
    "MAX_BACKOFF_SECONDS",
    "PACE_SECONDS",
    "Delivered",
    "Deliverer",
    "DeliveryFailed",
    "RetryLater",
    "backoff",
]

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
    """A permanent failure: the row is marked failed and not tried again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Deliverer(Protocol):
    async def deliver(self, method: str, args: dict[str, Any]) -> Delivered: ...


def backoff(attempts: int) -> float:
    """Seconds to wait after the n-th failed attempt: 1, 2, 4, ... up to 5 minutes."""
    return float(min(MAX_BACKOFF_SECONDS, 2 ** max(0, attempts - 1)))
