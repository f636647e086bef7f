"""On-call rotations: who is on call at an instant, and when the next hand-off is.

Pure functions over a :class:`~guards.config.Rotation`, a time zone and an instant.
A hand-off happens at a local wall-clock time (``"mon 09:00"`` for a weekly
rotation, ``"09:00"`` for a daily one) in the policy's time zone, so it stays at
09:00 local across daylight-saving changes: the instants are computed from local
dates, never by adding 7 × 86,400 seconds. A hand-off time that does not exist on a
spring-forward day (02:30 in Europe/Berlin) happens at the same UTC instant as the
offset before the change gives (03:30 local).

The first user of the list is on call from the first hand-off at or after the
rotation's ``start`` date (default 2026-01-05, a Monday); each hand-off passes to the
next user, cyclically. An override (``/agent oncall override @user 4h``) puts
another user on call until it ends; the latest active override wins. One booked ahead
(``... 12h from sat 09:00``) counts only from its ``starts_at`` (read by
:func:`bot.alerts.when.start_at`).

Users who left the workspace (``gone``, found by :mod:`bot.people`) are passed over: an
override of one does not count, and a shift of one goes to the next user of the
rotation who is still there (the other users' shifts stay as scheduled). With every
user gone, nobody is on call (``user`` is None).

A rotation may be limited to ``hours`` (``"08:00-20:00"``, several ranges, one crossing
midnight belongs to the day it starts) and ``days`` (``mon-fri``), read in its own
``timezone`` when it has one, else the policy's; its hand-offs happen in that zone too.
Off hours it keeps its person (who hands off to whom does not change), but
:attr:`OnCallNow.resumes_at` says when its hours begin again: the escalation chain passes
it over until then. An override is on call whatever the hours (it was booked on
purpose). Hours keep to the wall clock across daylight-saving changes, as hand-offs do.
The night the clocks go back, a range begins at the first of a time shown twice and ends
at the second (``22:00-02:00`` in Europe/Berlin lasts five hours that night): no wall
time it names is off hours, and its hours begin once.

Example:
    >>> from guards.config import Rotation
    >>> from zoneinfo import ZoneInfo
    >>> rot = Rotation(name="primary", users=["U01", "U02"], period="week", handoff="mon 09:00")
    >>> shift_at(rot, ZoneInfo("Europe/Berlin"), 1_767_600_000.0).user  # Mon 5 Jan 2026, 09:00
    'U01'
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from guards.config import OnCall, Rotation
from guards.config_hours import HoursOf

__all__ = [
    "OnCallNow",
    "Override",
    "Shift",
    "handoffs",
    "hours_text",
    "hours_window",
    "on_call",
    "on_hours",
    "present_user",
    "rotation_named",
    "rotation_zone",
    "shift_at",
    "spans",
]

DEFAULT_START = date(2026, 1, 5)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Shift:
    """One user's turn of a rotation: from one hand-off to the next."""

    rotation: str
    user: str
    index: int
    starts_at: float
    ends_at: float
    next_user: str


@dataclass(frozen=True, slots=True)
class Override:
    """A user who takes a rotation from ``starts_at`` until ``ends_at``."""

    rotation: str
    user: str
    starts_at: float
    ends_at: float
    created_at: float = 0.0
    created_by: str = ""

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def booked(self, now: float) -> bool:
        """Whether it starts later than ``now`` (``override ... from sat 09:00``)."""
        return now < self.starts_at < self.ends_at


@dataclass(frozen=True, slots=True)
class OnCallNow:
    """Who is on call for a rotation now, by schedule or by override.

    ``user`` is None when every user of the rotation left the workspace; ``skipped``
    names those passed over because they did (the scheduled user, an override's).
    ``resumes_at``: when the rotation's hours begin again, when it is off hours now
    with no override (None: on call now)."""

    rotation: str
    user: str | None
    shift: Shift
    override: Override | None
    skipped: tuple[str, ...] = ()
    resumes_at: float | None = None

    @property
    def until(self) -> float:
        """When this person stops being on call (the override's end or the hand-off)."""
        return self.override.ends_at if self.override is not None else self.shift.ends_at


def _handoff(rotation: Rotation) -> tuple[int | None, int, int]:
    day, _, clock = rotation.handoff.rpartition(" ")
    hour, minute = (int(p) for p in clock.split(":"))
    return (_WEEKDAYS.index(day) if day else None), hour, minute


def _instant(day: date, hour: int, minute: int, tz: ZoneInfo) -> float:
    """The first instant the clocks read ``hour:minute`` on ``day`` (one they skip: the
    instant the offset before the change gives, 02:30 → 03:30)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).timestamp()


def _last_instant(day: date, hour: int, minute: int, tz: ZoneInfo) -> float:
    """The last instant the clocks read ``hour:minute`` on ``day``: the second one of a
    time they show twice (the night they go back), else as :func:`_instant`. A range of
    hours ends there, so it covers each time it names as often as the clock shows it."""
    at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
    return max(at.timestamp(), at.replace(fold=1).timestamp())


def rotation_zone(rotation: Rotation, tz: ZoneInfo) -> ZoneInfo:
    """The zone of ``rotation``'s hand-offs and hours: its own, else ``tz`` (the policy's)."""
    return ZoneInfo(rotation.timezone) if rotation.timezone else tz


def _clock_of(text: str) -> tuple[int, int]:
    hour, minute = text.split(":")
    return int(hour), int(minute)


def spans(rotation: HoursOf, zone: ZoneInfo, now: float) -> list[tuple[float, float]]:
    """The spans of ``rotation``'s hours and days from the day before ``now`` to a week
    after, merged."""
    today = datetime.fromtimestamp(now, zone).date()
    spans = []
    for offset in range(-1, 9):
        day = today + timedelta(days=offset)
        if rotation.days is not None and _WEEKDAYS[day.weekday()] not in rotation.days:
            continue
        for text in rotation.hours or ["00:00-24:00"]:
            start, end = text.split("-")
            end_day = day + timedelta(days=1) if end == "24:00" or end <= start else day
            ends = (0, 0) if end == "24:00" else _clock_of(end)
            begins = _instant(day, *_clock_of(start), zone)
            spans.append((begins, _last_instant(end_day, *ends, zone)))
    merged: list[tuple[float, float]] = []
    for start_at, end_at in sorted(spans):
        if merged and start_at <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end_at))
        else:
            merged.append((start_at, end_at))
    return merged


def hours_window(rotation: Rotation, tz: ZoneInfo, now: float) -> tuple[float, float] | None:
    """The span of ``rotation``'s hours that ``now`` is in (None: off hours, or a rotation
    without ``hours`` nor ``days``, on call at every hour)."""
    if rotation.hours is None and rotation.days is None:
        return None
    return next(
        (w for w in spans(rotation, rotation_zone(rotation, tz), now) if w[0] <= now < w[1]),
        None,
    )


def on_hours(rotation: Rotation, tz: ZoneInfo, now: float) -> bool:
    """Whether ``now`` is in ``rotation``'s hours and days (always, without either)."""
    if rotation.hours is None and rotation.days is None:
        return True
    return hours_window(rotation, tz, now) is not None


def _resumes_at(rotation: Rotation, tz: ZoneInfo, now: float) -> float | None:
    """When ``rotation``'s hours begin again, if it is off hours ``now`` (else None)."""
    if on_hours(rotation, tz, now):
        return None
    later = [w[0] for w in spans(rotation, rotation_zone(rotation, tz), now) if w[0] > now]
    return min(later, default=None)


def hours_text(rotation: HoursOf) -> str:
    """``08:00-20:00 mon-fri``: a rotation's hours and days as the policy reads them
    (``every hour`` without either)."""
    words = list(rotation.hours or ())
    if rotation.days is not None:
        words.append(_days_text(rotation.days))
    return " ".join(words) or "every hour"


def _days_text(days: list[str]) -> str:
    """``mon-fri``, ``mon, wed, sat-sun``: runs of days in week order as ranges."""
    runs: list[list[int]] = []
    for i in sorted(_WEEKDAYS.index(d) for d in days):
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(
        _WEEKDAYS[r[0]] if len(r) == 1 else f"{_WEEKDAYS[r[0]]}-{_WEEKDAYS[r[-1]]}" for r in runs
    )


def shift_at(rotation: Rotation, tz: ZoneInfo, now: float) -> Shift:
    """The scheduled shift of ``rotation`` that contains the instant ``now`` (its hand-offs
    in the rotation's own zone when it has one, else in ``tz``)."""
    tz = rotation_zone(rotation, tz)
    weekday, hour, minute = _handoff(rotation)
    start = date.fromisoformat(rotation.start) if rotation.start else DEFAULT_START
    step = 1 if rotation.period == "day" else 7
    day = datetime.fromtimestamp(now, tz).date()
    epoch = start
    if step == 7:
        target = weekday if weekday is not None else start.weekday()
        day -= timedelta(days=(day.weekday() - target) % 7)
        epoch += timedelta(days=(target - start.weekday()) % 7)
    if _instant(day, hour, minute, tz) > now:
        day -= timedelta(days=step)
    index = (day - epoch).days // step
    users = rotation.users
    return Shift(
        rotation=rotation.name,
        user=users[index % len(users)],
        index=index,
        starts_at=_instant(day, hour, minute, tz),
        ends_at=_instant(day + timedelta(days=step), hour, minute, tz),
        next_user=users[(index + 1) % len(users)],
    )


def present_user(rotation: Rotation, index: int, gone: Collection[str] = ()) -> str | None:
    """Who takes shift ``index``: its user, or the next one of the rotation (cyclically)
    still in the workspace when that one is ``gone``; None when all are gone."""
    users = rotation.users
    for step in range(len(users)):
        user = users[(index + step) % len(users)]
        if user not in gone:
            return user
    return None


def on_call(
    rotation: Rotation,
    tz: ZoneInfo,
    now: float,
    overrides: Iterable[Override] = (),
    gone: Collection[str] = (),
) -> OnCallNow:
    """Who is on call for ``rotation`` at ``now``: the latest active override, else the
    shift; users in ``gone`` (who left the workspace) are passed over. Off hours without
    an override, ``resumes_at`` says when its hours begin."""
    shift = shift_at(rotation, tz, now)
    name = rotation.name.lower()  # `oncall override … Secondary` names `secondary`
    active = [o for o in overrides if o.rotation.lower() == name and o.active(now)]
    skipped = [o.user for o in active if o.user in gone]
    active = [o for o in active if o.user not in gone]
    override = max(active, key=lambda o: (o.created_at, o.starts_at)) if active else None
    if override is None and shift.user in gone:
        skipped.append(shift.user)
    return OnCallNow(
        rotation=rotation.name,
        user=override.user if override else present_user(rotation, shift.index, gone),
        shift=shift,
        override=override,
        skipped=tuple(dict.fromkeys(skipped)),
        resumes_at=None if override is not None else _resumes_at(rotation, tz, now),
    )


def rotation_named(oncall: OnCall, name: str) -> Rotation | None:
    """The rotation called ``name`` (case-insensitive), or None."""
    for rotation in oncall.rotations:
        if rotation.name.lower() == name.lower():
            return rotation
    return None


def next_change(
    rotation: Rotation,
    tz: ZoneInfo,
    now: float,
    overrides: Iterable[Override] = (),
    gone: Collection[str] = (),
) -> tuple[float, str | None] | None:
    """When someone else than now is next on call for ``rotation``, and who: at a
    hand-off, or when an override ends (a hand-off an override covers changes nobody; a
    shift of someone who left goes on with the one on call: audit21 oncall 3). None when
    nobody else is on call within a round of the rotation."""
    name = rotation.name.lower()
    mine = [o for o in overrides if o.rotation.lower() == name]
    current = on_call(rotation, tz, now, mine, gone).user
    shifts = handoffs(rotation, tz, now, len(rotation.users) + 2)
    points = {s.ends_at for s in shifts}
    points |= {t for o in mine for t in (o.starts_at, o.ends_at) if t > now}
    for at in sorted(points):
        user = on_call(rotation, tz, at, mine, gone).user
        if user != current:
            return at, user
    return None


def handoffs(rotation: Rotation, tz: ZoneInfo, now: float, count: int) -> Sequence[Shift]:
    """The current shift and the ``count - 1`` after it (for a preview)."""
    shifts = [shift_at(rotation, tz, now)]
    while len(shifts) < count:
        shifts.append(shift_at(rotation, tz, shifts[-1].ends_at))
    return shifts
