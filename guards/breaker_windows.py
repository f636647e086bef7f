"""The windows a breaker counts in: its recent outcomes and its recent spend.

Plain values, no SQL and no clock, like the machine in :mod:`guards.breaker` that
reads them:

- :class:`FailureWindow`: the last ``window_calls`` outcomes, the failures among
  them, the sources (agents) they came from and the failures in a row;
- :class:`SpendWindow`: the micros charged in a sliding window of time.

Example:
    >>> w = SpendWindow(60)
    >>> w.add(0.0, 100)
    >>> w.add(30.0, 50)
    >>> w.total_at(59.0), w.total_at(60.0)
    (150, 50)
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable
from typing import TypeVar

__all__ = ["FailureWindow", "SpendWindow", "drop_idle"]

T = TypeVar("T")


def drop_idle(entries: dict[str, T], idle: Callable[[T], bool], floor: int) -> int:
    """Drop the idle entries of an in-memory cache that reached its size; return the size
    at which to look again. Agents, conversations and model names come and go (a token
    may make up any number): memory must not grow with them. Entries that must stay are
    not scanned again at every new key: the next look comes at twice what is left."""
    for key in [k for k, v in entries.items() if idle(v)]:
        del entries[key]
    return max(floor, 2 * len(entries))


class FailureWindow:
    """The last ``cap`` outcomes (None: success; a source name: a failure) and the streak."""

    __slots__ = ("cap", "consecutive", "failures", "items", "sources")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.items: deque[str | None] = deque()
        self.failures = 0
        self.consecutive = 0
        self.sources: Counter[str] = Counter()

    def add(self, failed: bool, source: str) -> bool:
        """Record one outcome; True when the window must be stored again.

        A window without failures is not stored: a healthy agent costs no write. After
        a restart such a window starts empty, which can only make the rate trip sooner.
        """
        had_failures = self.failures > 0
        if not failed and not had_failures and len(self.items) >= self.cap:
            return False
        self.items.append(source if failed else None)
        if failed:
            self.failures += 1
            self.sources[source] += 1
            self.consecutive += 1
        else:
            self.consecutive = 0
        while len(self.items) > self.cap:
            old = self.items.popleft()
            if old is not None:
                self.failures -= 1
                self.sources[old] -= 1
                if not self.sources[old]:
                    del self.sources[old]
        return had_failures or self.failures > 0

    def clear(self) -> None:
        self.items.clear()
        self.failures = self.consecutive = 0
        self.sources.clear()

    def encode(self) -> str:
        return json.dumps(list(self.items), separators=(",", ":"))

    @classmethod
    def decode(cls, cap: int, text: str, consecutive: int) -> FailureWindow:
        window = cls(cap)
        for item in json.loads(text or "[]"):
            window.add(item is not None, item or "")
        window.consecutive = consecutive
        return window


class SpendWindow:
    """Micros charged in the sliding window ``(now - per_seconds, now]``; O(1) amortised."""

    __slots__ = ("items", "per_seconds", "total")

    def __init__(self, per_seconds: int) -> None:
        self.per_seconds = per_seconds
        self.items: deque[tuple[float, int]] = deque()
        self.total = 0

    def add(self, at: float, micros: int) -> None:
        self.items.append((at, micros))
        self.total += micros

    def total_at(self, now: float) -> int:
        """What was charged after ``now - per_seconds`` (older charges leave the window)."""
        horizon = now - self.per_seconds
        items = self.items
        while items and items[0][0] <= horizon:
            self.total -= items.popleft()[1]
        return self.total

    def shift_back(self, seconds: float) -> None:
        """The wall clock stepped back ``seconds``: the charges made before the step move
        back with it, so that they keep their real age (else they would stay in the
        window for the step as well, and trip the breaker on spend long gone). Charges
        already made after the step (a settle just before this call) stay where they are:
        they follow a drop in the times."""
        items = list(self.items)
        before = len(items)
        for i in range(len(items) - 1, 0, -1):
            if items[i - 1][0] > items[i][0]:  # the step: everything up to here is older
                before = i
                break
        self.items = deque([(at - seconds, m) for at, m in items[:before]] + items[before:])

    def clear(self) -> None:
        self.items.clear()
        self.total = 0
