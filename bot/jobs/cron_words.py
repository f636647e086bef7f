"""Cron expressions in words: what an operator reads in `jobs preview` and `/agent jobs`.

States how many runs an expression makes, and what the next clock changes do to it
(the two mistakes behind "a daily job ran 60 times, at the wrong time").

Example:
    >>> from bot.jobs.cron import parse_cron
    >>> describe(parse_cron("* 8 * * *"))
    'every minute from 08:00 to 08:59, 60 runs a day'
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.jobs.cron import (
    MONTH_NAMES,
    WEEKDAY_NAMES,
    CronSpec,
    aware,
    days_from,
    repeated,
)
from guards.words import plural

__all__ = ["describe", "dst_notes", "format_local"]


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


def _per_year(spec: CronSpec) -> str:
    """How many runs a day-of-month limited to some months makes a year (audit24 claims
    C1: `@yearly` read "1 run a month"). Day 31 is missing from April, 29 February from
    three years in four; with a weekday too, a day must match both, so "at most"."""

    def runs(leap: bool) -> int:
        year = 2028 if leap else 2027
        last = {m: calendar.monthrange(year, m)[1] for m in spec.months}
        return spec.per_day * sum(1 for m in spec.months for d in spec.days if d <= last[m])

    common, leap = runs(False), runs(True)
    if spec.dow_restricted:
        return f"at most {plural(leap, 'run')} a year"
    if common == leap:
        return f"{plural(common, 'run')} a year"
    if common == 0:
        return f"{plural(leap, 'run')} a year, only in leap years"
    return f"{plural(common, 'run')} a year ({leap:,} in a leap year)"


def describe(spec: CronSpec) -> str:
    """The expression in words, with how many runs it makes a day.

    >>> from bot.jobs.cron import parse_cron
    >>> describe(parse_cron("30 9 * * 1-5"))
    'at 09:30, on Monday to Friday, 5 runs a week'
    """
    if spec.dom_restricted and len(spec.months) < 12:
        count = _per_year(spec)
    elif spec.dom_restricted:
        # a day past the 28th is missing from some months: day 31 runs in 7 of 12
        most = "at most " if spec.dow_restricted or spec.days[-1] > 28 else ""
        count = f"{most}{plural(spec.per_day * len(spec.days), 'run')} a month"
    elif spec.dow_restricted:
        count = f"{plural(spec.per_day * len(spec.weekdays), 'run')} a week"
    else:
        count = f"{plural(spec.per_day, 'run')} a day"
    return ", ".join(p for p in (_time_words(spec), _day_words(spec), count) if p)


def _changed(day: date, tz: ZoneInfo, gap: timedelta) -> str:
    """The wall times a clock change on ``day`` skips (``gap`` > 0) or repeats: "the hour
    from 02:00", or "02:45 to 03:45" and "01:30 to 02:00" where changes are not hour-long
    on the hour (Chatham, Lord Howe)."""
    lo = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() - 3 * 3600
    hi = lo + 30 * 3600
    offset = aware(lo).astimezone(tz).utcoffset()
    while hi - lo > 1:  # the last second of the old offset
        mid = (lo + hi) // 2
        if aware(mid).astimezone(tz).utcoffset() == offset:
            lo = mid
        else:
            hi = mid
    # skipped: from the old offset's reading of the change; repeated: from the new one's
    start = aware(hi).astimezone(tz) - (gap if gap > timedelta(0) else timedelta(0))
    first = _hhmm(start.hour, start.minute)
    if abs(gap) == timedelta(hours=1) and start.minute == 0:
        return f"the hour from {first}"
    end = start + abs(gap)
    return f"{first} to {_hhmm(end.hour, end.minute)}"


def format_local(ts: float, tz: ZoneInfo) -> str:
    """``Thu 2026-01-01 08:00 CET``: a fire time as the job's time zone shows it."""
    local = aware(ts).astimezone(tz)
    return local.strftime("%a %Y-%m-%d %H:%M ") + (local.tzname() or tz.key)


def dst_notes(spec: CronSpec, tz: ZoneInfo, *, now: float, days: int = 366) -> list[str]:
    """What the next clock changes in ``tz`` do to this expression, in words."""
    notes: list[str] = []
    start = aware(now).astimezone(tz).date()
    for day in days_from(start, days):
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
                elif gap < timedelta(0) and repeated(wall.replace(fold=1)):
                    hit.append((wall, wall))
        if not hit:
            continue
        label = day.strftime("%a %Y-%m-%d")
        if gap > timedelta(0) and spec.wildcard_hours:
            notes.append(
                f"on {label} clocks go forward in {tz.key}: {_changed(day, tz, gap)} does not"
                " exist, so "
                + ("its run is skipped" if len(hit) == 1 else f"its {len(hit)} runs are skipped")
            )
        elif gap > timedelta(0):
            missing = _and([_hhmm(w.hour, w.minute) for w, _ in hit[:4]])
            # each fires as far after the jump as it was after the hour, unless that is a
            # fire of its own already (then they are one run)
            later = sorted({(m.hour, m.minute) for _, m in hit})
            extra = [t for t in later if not (t[0] in spec.hours and t[1] in spec.minutes)]
            times = _and([_hhmm(h, m) for h, m in (extra or later)[:4]])
            if not extra:
                then = (
                    f"its run at {times} is the only one"
                    if len(later) == 1
                    else f"its runs at {times} are the only ones"
                )
            elif len(extra) == 1:
                then = f"the job runs once at {times} instead"
            else:
                then = f"the job runs at {times} instead"
            notes.append(
                f"on {label} clocks go forward in {tz.key}: {missing} "
                f"{'does' if len(hit) == 1 else 'do'} not exist, so {then}"
            )
        elif spec.wildcard_hours:
            notes.append(
                f"on {label} clocks go back in {tz.key}: {_changed(day, tz, gap)} happens"
                " twice and the job runs in both"
            )
        else:
            twice = _and([_hhmm(w.hour, w.minute) for w, _ in hit[:4]])
            notes.append(
                f"on {label} clocks go back in {tz.key}: {twice} "
                f"{'happens' if len(hit) == 1 else 'happen'} twice; the job runs only the"
                " first time"
            )
        if len(notes) >= 2:
            break
    return notes
