"""A rotation's hours and days (``oncall.rotations[].hours`` / ``days``): follow the sun.

``hours`` is one range of the clock or a list of them (``"08:00-20:00"``; one crossing
midnight, ``"22:00-06:00"``, belongs to the day it starts; ``24:00`` may end one);
``days`` a list of weekdays or ranges (``mon-fri``, ``fri-mon``), kept written out in
week order. Either may be one string instead of a list; an empty list is refused.

Example:
    >>> hours_range("22:00-06:00")
    '22:00-06:00'
    >>> week_order(["fri-mon"])
    ['mon', 'fri', 'sat', 'sun']
"""

from __future__ import annotations

import re
from typing import Annotated, Protocol

from pydantic import AfterValidator, BeforeValidator, model_validator

from guards.config_types import Section, TimeZone, refuse

__all__ = [
    "WEEKDAYS",
    "Days",
    "Hours",
    "HoursOf",
    "QuietHours",
    "day_word",
    "hours_range",
    "week_order",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = r"([01]\d|2[0-3]):[0-5]\d"


def hours_range(value: str) -> str:
    """``value``, a range of hours ``09:00-21:00`` (one crossing midnight, ``22:00-06:00``,
    belongs to the day it starts; ``24:00`` may end one), or ValueError."""
    if not re.fullmatch(rf"{_CLOCK}-({_CLOCK}|24:00)", value):
        raise ValueError(f"{value!r}: write hours as '09:00-17:00' (or '22:00-06:00' overnight)")
    start, end = value.split("-")
    if start == end or (start == "00:00" and end == "24:00"):
        raise ValueError(f"{value!r} is no time, or all of it: for all day, leave `hours` out")
    return value


def day_word(value: str) -> str:
    """``value``, a weekday ``mon`` or a range of them ``mon-fri``, in lower case."""
    word = value.strip().lower()
    if not all(part in WEEKDAYS for part in word.split("-", 1)):
        raise ValueError(f"{value!r} is not a day: write mon, tue, … sun, or a range like mon-fri")
    return word


def _one_or_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _not_empty(value: list[str] | None) -> list[str] | None:
    if value is not None and not value:
        raise ValueError("an empty list: leave the key out for no limit")
    return value


def week_order(value: list[str] | None) -> list[str] | None:
    """Ranges written out, in week order: ``fri-mon`` is mon, fri, sat, sun."""
    if value is None:
        return None
    picked: set[int] = set()
    for word in value:
        first, _, last = word.partition("-")
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        picked.update(i % 7 for i in range(a, a + (b - a) % 7 + 1))
    return [WEEKDAYS[i] for i in sorted(picked)]


Hours = Annotated[
    list[Annotated[str, AfterValidator(hours_range)]] | None,
    BeforeValidator(_one_or_list),
    AfterValidator(_not_empty),
]
Days = Annotated[
    list[Annotated[str, AfterValidator(day_word)]] | None,
    BeforeValidator(_one_or_list),
    AfterValidator(_not_empty),
    AfterValidator(week_order),
]


class HoursOf(Protocol):
    """What has ``hours`` and ``days`` (a rotation; ``alerts.quiet_hours``)."""

    @property
    def hours(self) -> list[str] | None: ...

    @property
    def days(self) -> list[str] | None: ...


class QuietHours(Section):
    """``alerts.quiet_hours``: the hours (and days) in which a P1 pages nobody. It is
    posted as ever; its escalation waits for the end of the quiet hours, and pages then if
    nobody has acknowledged it. A P0 pages whatever the hour. ``hours`` and ``days`` read
    as a rotation's, in ``timezone`` (default: the policy's): ``days`` alone is those
    whole days. One range of hours may be written alone: ``quiet_hours: "22:00-07:00"``."""

    hours: Hours = None
    days: Days = None
    timezone: TimeZone | None = None

    @model_validator(mode="before")
    @classmethod
    def _hours_alone(cls, data: object) -> object:
        return {"hours": data} if isinstance(data, str | list) else data

    @model_validator(mode="after")
    def _some_hours(self) -> QuietHours:
        if self.hours is None and self.days is None:
            said = "write the quiet hours ('22:00-07:00'), or days for whole days ([sat, sun])"
            refuse("QuietHours", [(("hours",), said)])
        return self
