"""When a budget's window resets: the first instant of its next period, in the time zone of
its namespace (audit28 C2 L1: an agent refused at 3 a.m. must know whether waiting helps,
and until when).

A day resets at the next local midnight, a week on the next Monday's, a month on the
next 1st's, as :func:`guards.usage.periods_at` names periods; ``total`` never resets
(None). The instant is found from the period's name alone, so it costs nothing until a
402 or ``GET /v1/budgets`` asks for it. A day the clocks change on is 23 or 25 hours
long: the reset is still the next local midnight (and where the clocks skip midnight
itself, the first instant of the new day, e.g. 01:00).

Example:
    >>> from zoneinfo import ZoneInfo
    >>> ny = ZoneInfo("America/New_York")
    >>> resets_at("day", "2027-03-14", ny)  # the 23-hour day: 04:00Z, not 05:00Z
    '2027-03-15T00:00:00-04:00'
    >>> resets_at("week", "2026-W48", ny), resets_at("total", "all", ny)
    ('2026-11-30T00:00:00-05:00', None)
    >>> reset_words("2027-03-15T00:00:00-04:00", window="day", zone=ny,
    ...             now=1_805_000_400.0)  # 2027-03-14 00:00 EST
    'at 00:00 America/New_York (in 23h)'
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["reset_words", "resets_at", "span", "window_end"]


def _next_first_day(window: str, period: str) -> date | None:
    """The first local day of the period after ``period`` (None: ``total``, or a name
    that is not a period of ``window``)."""
    try:
        if window == "day":
            return date.fromisoformat(period) + timedelta(days=1)
        if window == "week":
            year, week = period.split("-W")
            return date.fromisocalendar(int(year), int(week), 1) + timedelta(days=7)
        if window == "month":
            first = date.fromisoformat(f"{period}-01")
            return date(first.year + first.month // 12, first.month % 12 + 1, 1)
    except ValueError:
        return None
    return None


def window_end(window: str, period: str, tz: ZoneInfo) -> datetime | None:
    """The instant ``period`` of ``window`` ends (the next one begins), in ``tz``.

    Local midnight of the next period's first day; fold 0 takes the first of a midnight
    the clocks show twice, and a midnight they skip resolves to the first instant after
    the gap (read back through the time stamp, so the offset shown is the one in force).
    """
    first = _next_first_day(window, period)
    if first is None:
        return None
    stamp = datetime.combine(first, time(), tzinfo=tz).timestamp()
    return datetime.fromtimestamp(stamp, tz)


def resets_at(window: str, period: str, tz: ZoneInfo) -> str | None:
    """:func:`window_end` as ISO 8601 with the zone's offset then, to the second."""
    end = window_end(window, period, tz)
    return end.isoformat() if end is not None else None


def span(seconds: float) -> str:
    """A wait as a message words it: ``45s``, ``12m``, ``3h 12m``, up to two days in hours
    (``25h``: a day the clocks go back), then ``3d 4h``.

    >>> span(59), span(11_520), span(90_000), span(266_400)
    ('59s', '3h 12m', '25h', '3d 2h')
    """
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 2 * 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def reset_words(resets: str, *, window: str, zone: ZoneInfo | None, now: float | None) -> str:
    """When a window resets, in words: ``at 00:00 America/New_York (in 3h 12m)`` for a
    day, ``on Mon 30 Nov at 00:00 America/New_York (in 2d 5h)`` for a week or a month.

    ``zone`` names the time zone (without it, the instant's offset: ``UTC-05:00``, as a
    client reading only ``resets_at`` can say); ``now`` adds how long that is from now.
    """
    when = datetime.fromisoformat(resets)
    named = when.tzname() or ""
    if zone is not None:
        when, named = when.astimezone(zone), zone.key
    clock = when.strftime("%H:%M")
    said = f"at {clock}" if window == "day" else f"on {when.strftime('%a %d %b')} at {clock}"
    left = f" (in {span(when.timestamp() - now)})" if now is not None else ""
    return f"{said} {named}{left}"
