"""The policy file's value types: money, durations, time zones, windows, sections.

Example:
    >>> parse_duration("2h")
    7200
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict

from guards.money import parse_usd

__all__ = [
    "WINDOWS",
    "Limits",
    "Micros",
    "PolicyError",
    "Seconds",
    "Section",
    "Tier",
    "TimeZone",
    "check_windows",
    "parse_duration",
]

WINDOWS = ("day", "week", "month", "total")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class PolicyError(Exception):
    """The policy file is unusable; the message names the key and the problem."""


def parse_duration(value: object) -> int:
    """``30s``, ``5m``, ``2h``, ``1d`` (or a plain number of seconds) to whole seconds.

    >>> parse_duration("5m")
    300
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m, 2h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (write 30s, 5m, 2h or 1d)")
    if seconds < 0 or seconds > 366 * 86400:
        raise ValueError(f"{value!r} is out of range (0 to 366 days)")
    return int(seconds)


def _check_tz(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("a time zone is a name like Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return value


Micros = Annotated[int, BeforeValidator(parse_usd)]
Seconds = Annotated[int, BeforeValidator(parse_duration)]
TimeZone = Annotated[str, BeforeValidator(_check_tz)]
Tier = Literal["P0", "P1", "P2"]


class Section(BaseModel):
    """A section of the policy: unknown keys are errors; values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_windows(value: dict[str, int]) -> dict[str, int]:
    for key in value:
        if key not in WINDOWS:
            raise ValueError(f"unknown window {key!r}; windows are {', '.join(WINDOWS)}")
    return value


Limits = Annotated[dict[str, Micros], BeforeValidator(lambda v: v if v is not None else {})]
