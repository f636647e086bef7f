"""``from <when>``: the start a person types for a booked override or silence.

One reader for both ``/agent oncall override … from <when>`` and ``/agent silence …
from <when>``: ``HH:MM`` (the next time the clock reads it), ``today HH:MM`` (refused once
past), ``tomorrow HH:MM``, ``<mon..sun> HH:MM`` (the next such day and time) or
``YYYY-MM-DD HH:MM``, in the policy's zone, at most :data:`MAX_AHEAD_DAYS` ahead.

A start within the last :data:`START_GRACE` seconds is kept rather than moved to the next
day or refused: ``from 23:30`` typed at 23:30:20 means now (the caller starts it now), not
tomorrow's 23:30, and the reply says so (:func:`now_note`); at 23:31:00 the minute is over
and it means tomorrow's (:func:`is_past`, which ``POST /v1/silences`` asks too). "Today"
is the day of the instant the person typed it, also just past midnight.

Daylight saving: a time the clocks skip (02:30 the night they go forward) is taken as a
hand-off is (03:30); one the clocks show twice (01:30 the night they go back in New York)
is the first one, or the second when the first is past.

Example:
    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> start_at(["sat", "09:00"], berlin, 1_767_225_600.0)  # Thu 1 Jan 2026, 01:00
    1767427200.0
    >>> start_at(["01:00"], berlin, 1_767_225_620.0, grace=START_GRACE)  # at 01:00:20
    1767225600.0
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["MAX_AHEAD_DAYS", "START_GRACE", "WhenError", "is_past", "now_note", "start_at"]

MAX_AHEAD_DAYS = 92  # an override starts at most this far ahead (a quarter)
START_GRACE = 60  # seconds: a start typed this recently means now
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAYS = {**{d: i for i, d in enumerate(_WEEKDAYS)}, **{d: i for i, d in enumerate(_FULL)}}
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_PAST = "is past: an override starts later than now"


class WhenError(ValueError):
    """A start of ``from`` that is not one: what was typed (None: the whole start was
    read) and why, in words for the reply (``"25:00" "is not a time: ..."``)."""

    def __init__(self, typed: str | None, why: str) -> None:
        super().__init__(f"{typed} {why}" if typed is not None else why)
        self.typed = typed
        self.why = why


def start_at(words: Sequence[str], tz: ZoneInfo, now: float, *, grace: float = 0) -> float:
    """The instant ``words`` name, later than ``now - grace``, in ``tz`` (see the module):
    one not later than ``now`` is a start within the grace, which the caller takes as now.

    Raises:
        WhenError: not a start, not a time or date, past, or too far ahead.
    """
    if len(words) not in (1, 2):
        raise WhenError(" ".join(words), "is not a start")
    hour, minute = _clock(words[-1])
    today = datetime.fromtimestamp(now, tz).date()

    def first(*days: date) -> float | None:
        """The first instant on ``days`` the clock reads the time, later than ``now - grace``."""
        times = (t for d in days for t in _times(d, hour, minute, tz))
        return next((t for t in times if not is_past(t, now, grace=grace)), None)

    day = words[0].lower() if len(words) == 2 else None
    if day is None:  # the next one: today's (either, the night the clocks go back) or later
        at = first(today - timedelta(days=1), today, today + timedelta(days=1))
    elif day == "today":  # as the replies say it: `03:30 today` (not moved to tomorrow)
        at = first(today)
    elif day == "tomorrow":
        at = first(today + timedelta(days=1))
    elif day in _DAYS:
        ahead = (_DAYS[day] - today.weekday()) % 7
        at = first(today + timedelta(days=ahead), today + timedelta(days=ahead + 7))
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        try:
            on = date.fromisoformat(day)
        except ValueError:
            raise WhenError(day, "is not a date") from None
        at = first(on)
    else:
        raise WhenError(" ".join(words), "is not a start")
    if at is None:
        raise WhenError(" ".join(words), _PAST)
    if _wall(at, tz) - _wall(now, tz) > timedelta(days=MAX_AHEAD_DAYS):  # days as on a calendar
        raise WhenError(None, f"an override starts at most {MAX_AHEAD_DAYS} days ahead")
    return at


def is_past(at: float, now: float, *, grace: float = START_GRACE) -> bool:
    """Whether a start at ``at`` is past at ``now``: ``grace`` seconds ago or more. The one
    test of the chat command's reader and of ``POST /v1/silences``'s ``starts_at``.

    Example:
        >>> is_past(0.0, 59.0), is_past(0.0, 60.0)  # 23:30 at 23:30:59, and at 23:31:00
        (False, True)
    """
    return at <= now - grace


def now_note(words: Sequence[str], at: float, now: float) -> str | None:
    """What a reply says of a start within the grace, taken as now (None: ``at`` is later
    than ``now``, a start ahead).

    Example:
        >>> now_note(["23:30"], 0.0, 20.0)
        '`from 23:30` is now (it was 20 s ago).'
    """
    if at > now:
        return None
    ago = int(now - at)
    return f"`from {' '.join(words)}` is now" + (f" (it was {ago} s ago)." if ago else ".")


def _times(day: date, hour: int, minute: int, tz: ZoneInfo) -> list[float]:
    """The instants the clocks read ``hour:minute`` on ``day``: one, two the night they go
    back (first, second), or the one a hand-off takes when they skip it (02:30 → 03:30)."""
    first = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
    second = first.replace(fold=1)
    return sorted({first.timestamp(), max(first.timestamp(), second.timestamp())})


def _wall(ts: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts, tz).replace(tzinfo=None)


def _clock(word: str) -> tuple[int, int]:
    m = _CLOCK.fullmatch(word)
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        raise WhenError(word, "is not a time: write HH:MM, 00:00 to 23:59")
    return int(m[1]), int(m[2])
