"""Durations and clock times as the alerts feature words them (``1h 2m``, ``09:00``).

Example:
    >>> from zoneinfo import ZoneInfo
    >>> duration(3725)
    '1h 2m'
    >>> clock_time(1_767_600_000.0, ZoneInfo("Europe/Berlin"))
    '09:00'
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["HALF_A_YEAR", "clock_time", "duration", "local_instants", "wall_time"]

HALF_A_YEAR = 182 * 86_400  # a date this far from now names its year


def duration(seconds: float) -> str:
    """A short human duration: ``45s``, ``12m``, ``1m 30s``, ``1h 2m``, ``3d 4h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        m, rest = divmod(s, 60)
        return f"{m}m {rest}s" if rest else f"{m}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def clock_time(ts: float, tz: ZoneInfo, *, now: float | None = None, seconds: bool = False) -> str:
    """``03:17`` in ``tz``; with the weekday and date when not on the same day as ``now``,
    and the year when half a year or more away, as ``ls -l`` does (a year-long silence
    must not read as ending tomorrow); ``03:17:42`` with ``seconds``.

    Example:
        >>> berlin = ZoneInfo("Europe/Berlin")
        >>> clock_time(1_767_772_800.0, berlin, now=1_767_600_000.0)
        'Wed 07 Jan 09:00'
        >>> clock_time(1_767_600_007.0, berlin, seconds=True)
        '09:00:07'
    """
    local = datetime.fromtimestamp(ts, tz)
    hours = "%H:%M:%S" if seconds else "%H:%M"
    if now is not None and datetime.fromtimestamp(now, tz).date() != local.date():
        year = " %Y" if abs(ts - now) >= HALF_A_YEAR else ""
        return wall_time(local, f"%a %d %b{year} {hours}")
    return wall_time(local, hours)


def wall_time(local: datetime, fmt: str) -> str:
    """``local`` as ``fmt`` shows it, with its zone's abbreviation when the clocks show that
    time twice (the night they go back: "until 02:50 CET", not the other 02:50)."""
    text = local.strftime(fmt)
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        text += f" {local.tzname()}"
    return text


# an instant stored as ISO 8601 text, with its offset (a silence's end, the "until" of a
# budget set for a while, an override's "until …+01:00")
_ISO = re.compile(
    r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})(?![\w:])"
)


def local_instants(text: str, tz: ZoneInfo, *, now: float, seconds: bool = False) -> str:
    """``text`` with each instant it holds as ISO text shown as :func:`clock_time` shows
    a time (audit rows store ends as ISO, in UTC or with an offset: read among times in
    the policy's zone, they are shown in it: audit24 L4), to the second with ``seconds``.
    A time without an offset is no instant: left as written. Only for text Nightshift
    wrote: what a person typed is shown as typed (review24 L5).

    Example:
        >>> berlin = ZoneInfo("Europe/Berlin")
        >>> local_instants("until 2026-01-05T08:00:00.5Z", berlin, now=1_767_600_000.0)
        'until 09:00'
        >>> local_instants("at 2026-01-05T09:00", berlin, now=1_767_600_000.0)
        'at 2026-01-05T09:00'
    """

    def local(found: re.Match[str]) -> str:
        try:
            when = datetime.fromisoformat(found.group(0).replace("Z", "+00:00"))
        except ValueError:  # 2026-13-45T…: not a time after all
            return found.group(0)
        return clock_time(when.timestamp(), tz, now=now, seconds=seconds)

    return _ISO.sub(local, text)
