"""Injected clocks: logic never calls ``time.time()`` itself.

Example:
    >>> clock = ManualClock(1_700_000_000.0)
    >>> clock.advance(60)
    >>> clock.now()
    1700000060.0
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["AcceleratedClock", "Clock", "ManualClock", "SystemClock", "to_datetime"]


class Clock(Protocol):
    """Anything that tells the current time as POSIX seconds (UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to: for tests."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = when


class AcceleratedClock:
    """Simulated time that runs ``factor`` times faster than the wall clock (the demo)."""

    def __init__(self, *, start: float, factor: float) -> None:
        self._start = start
        self._factor = factor
        self._wall0 = time.monotonic()
        self._offset = 0.0

    def now(self) -> float:
        return self._start + self._offset + (time.monotonic() - self._wall0) * self._factor

    def advance(self, seconds: float) -> None:
        self._offset += seconds


def to_datetime(ts: float) -> datetime:
    """POSIX seconds to an aware UTC datetime."""
    return datetime.fromtimestamp(ts, tz=UTC)
