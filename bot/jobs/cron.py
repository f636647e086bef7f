"""Cron expressions: parse them the classic way, describe them in words, list fire times.

Expressions are the five classic fields ``minute hour day-of-month month day-of-week``
(or ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``). Day-of-week
numbers follow crontab (0 or 7 = Sunday), not APScheduler 3.x (0 = Monday): the
fields are expanded here and handed to APScheduler's :class:`CronTrigger` as
explicit lists, so both agree on what runs.

Two rules differ from Vixie cron and are stated in the description when they matter:
when both day-of-month and day-of-week are restricted, a day must match **both**
(APScheduler's rule); and on the night clocks go back, a job with fixed hours runs
once, not twice (a wildcard-hour job runs every real hour).

Example:
    >>> spec = parse_cron("* 8 * * *")
    >>> describe(spec)
    'every minute from 08:00 to 08:59, 60 runs a day'
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

__all__ = [
    "CronError",
    "CronSpec",
    "describe",
    "dst_notes",
    "fire_times",
    "format_local",
    "parse_cron",
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
_APS_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # names are unambiguous
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

    def trigger(self, tz: ZoneInfo) -> CronTrigger:
        """The APScheduler trigger for this expression in a time zone."""

        def joined(values: tuple[int, ...], size: int) -> str:
            return "*" if len(values) == size else ",".join(str(v) for v in values)

        weekdays = (
            "*"
            if not self.dow_restricted
            else ",".join(_APS_WEEKDAYS[d] for d in sorted(self.weekdays))
        )
        return CronTrigger(
            minute=joined(self.minutes, 60),
            hour=joined(self.hours, 24),
            day=joined(self.days, 31),
            month=joined(self.months, 12),
            day_of_week=weekdays,
            timezone=tz,
        )


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
    if not any(spec.runs_on(d) for d in _days(date(2024, 1, 1), 366 * 8)):
        raise CronError(f"{text!r} never fires (no calendar day matches its day fields)")
    return spec


def _days(start: date, count: int) -> Iterator[date]:
    for i in range(count):
        yield start + timedelta(days=i)


# -- words ------------------------------------------------------------------------------


def _hhmm(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


def _runs(values: tuple[int, ...]) -> list[tuple[int, int]]:
    """Contiguous runs of sorted values: (1, 2, 3, 7) -> [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


def _and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _step(values: tuple[int, ...], size: int) -> int | None:
    """The step s when values are start, start+s, ... up to the end of the field."""
    if len(values) < 2:
        return None
    s = values[1] - values[0]
    if s > 1 and values[0] < s and list(values) == list(range(values[0], size, s)):
        return s
    return None


def _time_words(spec: CronSpec) -> str:
    minutes, hours = spec.minutes, spec.hours
    all_hours = len(hours) == 24
    hour_runs = _runs(hours)

    def span(first_minute: int, last_minute: int) -> str:
        return _and(
            [f"from {_hhmm(a, first_minute)} to {_hhmm(b, last_minute)}" for a, b in hour_runs]
        )

    if len(minutes) == 60:
        return "every minute" if all_hours else f"every minute {span(0, 59)}"
    step = _step(minutes, 60)
    if step:
        start = f" starting at :{minutes[0]:02d}" if minutes[0] else ""
        head = f"every {step} minutes{start}"
        return head if all_hours else f"{head} {span(minutes[0], minutes[-1])}"
    if len(minutes) * len(hours) <= 6:
        return "at " + _and([_hhmm(h, m) for h in hours for m in minutes])
    marks = _and([f":{m:02d}" for m in minutes])
    if all_hours:
        return f"every hour at {marks}"
    hour_step = _step(hours, 24)
    if hour_step and len(minutes) == 1:
        return f"every {hour_step} hours at {marks} from {_hhmm(hours[0], minutes[0])}"
    if len(hour_runs) == 1:
        return f"every hour at {marks} {span(minutes[0], minutes[-1])}"
    return f"at {marks} past hours {_and([str(h) for h in hours])}"


def _list_words(values: tuple[int, ...], names: tuple[str, ...], offset: int) -> str:
    parts = []
    for a, b in _runs(values):
        if a == b:
            parts.append(names[a - offset])
        elif b == a + 1:
            parts.extend([names[a - offset], names[b - offset]])
        else:
            parts.append(f"{names[a - offset]} to {names[b - offset]}")
    return _and(parts)


def _day_words(spec: CronSpec) -> str:
    words: list[str] = []
    if spec.dow_restricted:
        # Monday-first for reading: Sunday (0) goes last.
        order = tuple(sorted(spec.weekdays, key=lambda d: (d + 6) % 7))
        mon_first = tuple((d + 6) % 7 for d in order)
        names = WEEKDAY_NAMES[1:] + WEEKDAY_NAMES[:1]
        words.append("on " + _list_words(mon_first, names, 0))
    if spec.dom_restricted:
        days = _and([str(a) if a == b else f"{a} to {b}" for a, b in _runs(spec.days)])
        plural = "s" if len(spec.days) > 1 else ""
        clause = f"on day{plural} {days} of the month"
        if spec.dow_restricted:
            clause = "if it is also " + clause
        words.append(clause)
    if len(spec.months) < 12:
        words.append("in " + _list_words(spec.months, MONTH_NAMES, 1))
    return " ".join(words)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def describe(spec: CronSpec) -> str:
    """The expression in words, with how many runs it makes a day.

    >>> describe(parse_cron("30 9 * * 1-5"))
    'at 09:30, on Monday to Friday, 5 runs a week'
    """
    if spec.dom_restricted:
        most = "at most " if spec.dow_restricted else ""
        count = f"{most}{_plural(spec.per_day * len(spec.days), 'run')} a month"
    elif spec.dow_restricted:
        count = f"{_plural(spec.per_day * len(spec.weekdays), 'run')} a week"
    else:
        count = f"{_plural(spec.per_day, 'run')} a day"
    return ", ".join(p for p in (_time_words(spec), _day_words(spec), count) if p)


# -- fire times -------------------------------------------------------------------------


def _aware(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _repeated(local: datetime) -> bool:
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
    trigger = spec.trigger(tz)
    out: list[float] = []
    cursor = _aware(after) + timedelta(microseconds=1)
    for _ in range(MAX_SCAN):
        if len(out) >= limit:
            break
        nxt = trigger.get_next_fire_time(None, cursor)
        if nxt is None:
            break
        ts = nxt.timestamp()
        if until is not None and ts > until:
            break
        if spec.wildcard_hours or not _repeated(_aware(ts).astimezone(tz)):
            out.append(ts)
        cursor = _aware(ts) + timedelta(microseconds=1)
    return out


def format_local(ts: float, tz: ZoneInfo) -> str:
    """``Thu 2026-01-01 08:00 CET``: a fire time as the job's time zone shows it."""
    local = _aware(ts).astimezone(tz)
    return local.strftime("%a %Y-%m-%d %H:%M ") + (local.tzname() or tz.key)


def dst_notes(spec: CronSpec, tz: ZoneInfo, *, now: float, days: int = 366) -> list[str]:
    """What the next clock changes in ``tz`` do to this expression, in words."""
    notes: list[str] = []
    start = _aware(now).astimezone(tz).date()
    for day in _days(start, days):
        if not spec.runs_on(day):
            continue
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        before = datetime(day.year, day.month, day.day, 0, tzinfo=tz).utcoffset()
        after = (noon + timedelta(hours=12)).utcoffset()
        if before is None or after is None or before == after:
            continue
        gap = after - before
        hit = []
        for hour in spec.hours:
            for minute in spec.minutes:
                wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                roundtrip = wall.astimezone(UTC).astimezone(tz)
                if gap > timedelta(0) and roundtrip.replace(tzinfo=None) != wall.replace(
                    tzinfo=None
                ):
                    hit.append((wall, roundtrip))
                elif gap < timedelta(0) and _repeated(wall.replace(fold=1)):
                    hit.append((wall, wall))
        if not hit:
            continue
        label = day.strftime("%a %Y-%m-%d")
        wall, moved = hit[0]
        if gap > timedelta(0) and spec.wildcard_hours:
            notes.append(
                f"on {label} clocks go forward in {tz.key}: the hour from "
                f"{_hhmm(wall.hour, 0)} does not exist, so "
                + ("its run is skipped" if len(hit) == 1 else f"its {len(hit)} runs are skipped")
            )
        elif gap > timedelta(0):
            missing = _and([_hhmm(w.hour, w.minute) for w, _ in hit[:4]])
            notes.append(
                f"on {label} clocks go forward in {tz.key}: {missing} "
                f"{'does' if len(hit) == 1 else 'do'} not exist, so the job runs once at "
                f"{_hhmm(moved.hour, moved.minute)} instead"
            )
        elif spec.wildcard_hours:
            notes.append(
                f"on {label} clocks go back in {tz.key}: the hour from "
                f"{_hhmm(wall.hour, 0)} happens twice and the job runs in both"
            )
        else:
            notes.append(
                f"on {label} clocks go back in {tz.key}: {_hhmm(wall.hour, wall.minute)} "
                "happens twice; the job runs only the first time"
            )
        if len(notes) >= 2:
            break
    return notes
