"""Cron expressions: parse them the classic way, describe them in words, list fire times.

Expressions are the five classic fields ``minute hour day-of-month month day-of-week``
(or ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``). Day-of-week
numbers follow crontab (0 or 7 = Sunday). Fields are expanded here to explicit lists
and fire times computed from them (the jobs tick decides what runs; no APScheduler
trigger is involved). The words for an expression are in :mod:`bot.jobs.cron_words`.

Two rules differ from Vixie cron and are stated in the description when they matter:
when both day-of-month and day-of-week are restricted, a day must match **both**
(as in APScheduler); and on the night clocks go back, a job with fixed hours runs
once, not twice (a wildcard-hour job runs every real hour). A job with fixed hours is
timed day by local day, so a wall time the clocks jump over (even midnight) runs at
the same offset after the jump; a wildcard-hour job in real time, so clock changes of
any size (Chatham's, Lord Howe's) repeat or skip exactly the wall times they do.

Example:
    >>> spec = parse_cron("* 8 * * *")
    >>> spec.per_hour, spec.per_day
    (60, 60)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "MONTH_NAMES",
    "WEEKDAY_NAMES",
    "CronError",
    "CronSpec",
    "aware",
    "days_from",
    "fire_times",
    "parse_cron",
    "repeated",
]

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab order: 0 = Sunday
WEEKDAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, WEEKDAYS),
)
_ITEM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")
MAX_SCAN = 5000  # fire times examined at most per call


class CronError(ValueError):
    """An expression that is not a valid five-field cron line; the message says why."""


@dataclass(frozen=True)
class CronSpec:
    """A parsed expression: the original text and each field expanded to its values."""

    text: str
    fields: tuple[str, str, str, str, str]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]  # crontab numbering, 0 = Sunday

    @property
    def dom_restricted(self) -> bool:
        return len(self.days) < 31

    @property
    def dow_restricted(self) -> bool:
        return len(self.weekdays) < 7

    @property
    def wildcard_hours(self) -> bool:
        return self.fields[1] == "*"

    @property
    def per_hour(self) -> int:
        return len(self.minutes)

    @property
    def per_day(self) -> int:
        return len(self.minutes) * len(self.hours)

    def runs_on(self, day: date) -> bool:
        """True when the expression fires on this calendar day (both day rules hold)."""
        weekday = (day.weekday() + 1) % 7
        return day.day in self.days and day.month in self.months and weekday in self.weekdays


def _value(token: str, lo: int, hi: int, names: tuple[str, ...], field: str) -> int:
    if token.isdigit():
        number = int(token)
    elif token.isalpha() and token[:3] in names:
        number = names.index(token[:3]) + (1 if names is MONTHS else 0)
    else:
        raise CronError(f"{field} field: {token!r} is not a number or a name")
    if not lo <= number <= hi:
        raise CronError(f"{field} field: {number} is out of range {lo}-{hi}")
    return number


def _expand(text: str, field: str, lo: int, hi: int, names: tuple[str, ...]) -> set[int]:
    values: set[int] = set()
    for item in text.lower().split(","):
        m = _ITEM.match(item)
        if not m:
            raise CronError(
                f"{field} field: {item!r} is not understood (use *, 5, 1-5, */15 or 1,15)"
            )
        body, step_text = m.group(1), m.group(2)
        step = int(step_text) if step_text else 1
        if step < 1:
            raise CronError(f"{field} field: a step of 0 never advances")
        if body == "*":
            start, end = lo, hi
        elif "-" in body:
            a, b = body.split("-")
            start, end = _value(a, lo, hi, names, field), _value(b, lo, hi, names, field)
            if start > end:
                raise CronError(f"{field} field: the range {body} runs backwards")
        else:
            start = _value(body, lo, hi, names, field)
            end = hi if step_text else start  # "5/15" means 5-max/15, as in Vixie cron
        values.update(range(start, end + 1, step))
    return values


def parse_cron(text: str) -> CronSpec:
    """Parse a five-field cron line (or a macro such as ``@daily``).

    Raises:
        CronError: the expression is malformed; the message names the field.
    """
    expr = MACROS.get(text.strip().lower(), text.strip())
    parts = expr.split()
    if expr.startswith("@"):
        raise CronError(f"{text!r}: unknown macro (known: {', '.join(MACROS)})")
    if len(parts) != 5:
        raise CronError(
            f"{text!r} has {len(parts)} fields; write five: minute hour day-of-month month "
            "day-of-week, e.g. '0 8 * * *' for 08:00 every day"
        )
    expanded = [
        _expand(part, name, lo, hi, names)
        for part, (name, lo, hi, names) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = {d % 7 for d in expanded[4]}
    spec = CronSpec(
        text=text.strip(),
        fields=(parts[0], parts[1], parts[2], parts[3], parts[4]),
        minutes=tuple(sorted(expanded[0])),
        hours=tuple(sorted(expanded[1])),
        days=tuple(sorted(expanded[2])),
        months=tuple(sorted(expanded[3])),
        weekdays=tuple(sorted(weekdays)),
    )
    if not any(spec.runs_on(d) for d in days_from(date(2024, 1, 1), 366 * 8)):
        raise CronError(f"{text!r} never fires (no calendar day matches its day fields)")
    return spec


def days_from(start: date, count: int) -> Iterator[date]:
    for i in range(count):
        yield start + timedelta(days=i)


# -- fire times -------------------------------------------------------------------------


def aware(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def repeated(local: datetime) -> bool:
    """True for the second pass through a wall-clock time on the night clocks go back."""
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def fire_times(
    spec: CronSpec, tz: ZoneInfo, *, after: float, until: float | None = None, limit: int = 3
) -> list[float]:
    """Fire times strictly after ``after`` (and at or before ``until``), at most ``limit``.

    A job with fixed hours does not fire a second time in the hour that repeats when
    clocks go back; a wall time skipped when clocks go forward fires at the same
    offset after the jump (02:30 → 03:30).
    """
    if not spec.wildcard_hours:
        return _fixed_hour_fires(spec, tz, after=after, until=until, limit=limit)
    return _every_hour_fires(spec, tz, after=after, until=until, limit=limit)


QUARTER = 900  # clocks change at whole quarter hours of UTC (offsets are quarter hours)


def _every_hour_fires(
    spec: CronSpec, tz: ZoneInfo, *, after: float, until: float | None, limit: int
) -> list[float]:
    """:func:`fire_times` for a wildcard-hour expression, in real time: every instant whose
    local minute and day match, so the hour that repeats runs in both passes and the one
    skipped not at all, whatever the size of the change (Chatham's 45-minute offset, Lord
    Howe's half hour). From one instant the scan jumps to the next matching minute, but
    never over a quarter hour of UTC, where a clock change could move the minutes."""
    minutes = spec.minutes
    out: list[float] = []
    t = (math.floor(after) // 60 + 1) * 60  # the first whole minute after ``after``
    for _ in range(MAX_SCAN * 8):
        if len(out) >= limit or (until is not None and t > until):
            break
        local = datetime.fromtimestamp(t, tz)
        if not spec.runs_on(local.date()):
            day = local.date() + timedelta(days=1)
            t = max(t + 60, math.ceil(_midnight(day, tz) / 60) * 60)
            continue
        if local.minute in minutes:
            out.append(float(t))
            t += 60
            continue
        wait = min((m - local.minute) % 60 for m in minutes) * 60
        t = min(t + wait, (t // QUARTER + 1) * QUARTER)
    return out


def _fixed_hour_fires(
    spec: CronSpec, tz: ZoneInfo, *, after: float, until: float | None, limit: int
) -> list[float]:
    """:func:`fire_times` for an expression with fixed hours, day by local day.

    Each wall time is read as it is first reached (``fold=0``): one that happens twice
    fires once, and one that does not exist (the clocks jumped over it) fires at the same
    offset after the jump, including at midnight (Santiago's ``0 0 * * *`` on the day
    its clocks go from 00:00 to 01:00 runs at 01:00, where APScheduler skipped the day).
    """
    out: list[float] = []
    day = aware(after).astimezone(tz).date() - timedelta(days=1)  # a jump may cross midnight
    for _ in range(MAX_SCAN):
        if len(out) >= limit or (until is not None and _midnight(day, tz) > until):
            break
        if spec.runs_on(day):
            times = sorted(
                {
                    datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).timestamp()
                    for hour in spec.hours
                    for minute in spec.minutes
                }
            )
            for ts in times:
                if ts <= after:
                    continue
                if (until is not None and ts > until) or len(out) >= limit:
                    break
                out.append(ts)
        day += timedelta(days=1)
    return out


def _midnight(day: date, tz: ZoneInfo) -> float:
    """00:00 of a local day read as first reached: no fire of that day comes earlier."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
