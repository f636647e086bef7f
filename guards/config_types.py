"""The policy file's value types: money, durations, time zones, windows, sections.

Example:
    >>> parse_duration("2h")
    7200
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from types import UnionType
from typing import Annotated, Literal, NoReturn, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from guards.money import parse_usd

__all__ = [
    "WINDOWS",
    "Days",
    "Limits",
    "Micros",
    "PolicyError",
    "PositiveMicros",
    "PositiveSeconds",
    "Seconds",
    "Section",
    "Tier",
    "TimeZone",
    "format_seconds",
    "in_words",
    "parse_duration",
    "policy_duration",
    "refuse",
]

WINDOWS = ("day", "week", "month", "total")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.ASCII | re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class PolicyError(Exception):
    """The policy file is unusable; the message names the key and the problem."""


def parse_duration(value: object, *, max_days: int = 366, min_seconds: int = 0) -> int:
    """``30s``, ``5m``, ``2h``, ``1d`` (or a plain number of seconds) to whole seconds.

    A fraction is taken exactly when it makes whole seconds (``1.5h`` is 5400) and
    refused when it does not (``1.5s``): nothing is silently rounded. A value below
    ``min_seconds`` or above ``max_days`` is refused with the range, the same words
    for either end.

    >>> parse_duration("5m")
    300
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m, 2h or 1d")
    if isinstance(value, int):
        seconds = Decimal(value)
    elif isinstance(value, float):
        seconds = Decimal(repr(value))  # the number as written in the file
        if not seconds.is_finite():
            raise ValueError(f"{value!r} is not a duration (write 30s, 5m, 2h or 1d)")
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = Decimal(m.group(1)) * _UNITS[m.group(2).lower()]
    elif value is None:  # `key:` or `key: null` in the file
        raise ValueError("no value given (write 30s, 5m, 2h or 1d, or leave the key out)")
    else:
        raise ValueError(f"{value!r} is not a duration (write 30s, 5m, 2h or 1d)")
    if seconds < 0 or seconds > max_days * 86400:
        raise ValueError(_out_of_range(value, seconds, min_seconds, max_days))
    if seconds != seconds.to_integral_value():
        low = int(seconds)
        choices = f"{in_words(low)} or {in_words(low + 1)}" if low else "1s"
        raise ValueError(f"{value!r} is not a whole number of seconds (write {choices})")
    if seconds < min_seconds:
        raise ValueError(_out_of_range(value, seconds, min_seconds, max_days))
    return int(seconds)


def format_seconds(seconds: float) -> str:
    """A duration to the second, as a config echo writes it (whole seconds, rounded up).

    For a value where the exact figure matters (a cool-down, a rate's window, a log
    line); a sentence a person reads words it as ``bot.alerts.render_time.duration``
    does ("1h 2m").

    >>> format_seconds(90), format_seconds(3600), format_seconds(0.2)
    ('1m30s', '1h', '1s')
    """
    s = max(0, math.ceil(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size or (unit == "s" and not parts):
            n, s = divmod(s, size)
            parts.append(f"{n}{unit}")
    return "".join(parts)


def _out_of_range(value: object, seconds: Decimal, min_seconds: int, max_days: int) -> str:
    if not min_seconds:
        return f"{value!r} is out of range (0 to {max_days} days)"
    at_once = "; at 0 it would run out the moment it starts (write e.g. 5m)" if not seconds else ""
    return (
        f"{value!r} is out of range: must be at least {in_words(min_seconds)} and at most"
        f" {max_days} days{at_once}"
    )


def in_words(seconds: int) -> str:
    """A duration as the policy file writes it, in its largest exact unit.

    >>> in_words(86400), in_words(90)
    ('1d', '90s')
    """
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def policy_duration(value: object, *, max_days: int = 366, min_seconds: int = 0) -> int:
    """:func:`parse_duration` for the policy file, which refuses ``M``: ``1M`` there may
    well mean a month (ISO 8601's ``P1M``), and read as a minute alerts would resolve a
    minute after they fire (audit26 A1 L2). ``2H``, ``30S``, ``1D``, ``1W`` can mean
    nothing else and are read as in lower case: a file that ran before an upgrade runs
    after it (refused, a SIGHUP after the upgrade would stop the server: review26 R2 L2).

    >>> policy_duration("90m"), policy_duration("2H")
    (5400, 7200)
    """
    if isinstance(value, str) and (m := _DURATION.match(value)) and m.group(2) == "M":
        raise ValueError(
            f"{value!r}: M could be a minute or a month: write {m.group(1)}m for a minute;"
            " a month is no unit (write 30d)"
        )
    return parse_duration(value, max_days=max_days, min_seconds=min_seconds)


def _positive_duration(value: object) -> int:
    return policy_duration(value, min_seconds=1)


def refuse(title: str, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> NoReturn:
    """Refuse a value from a validator, naming each problem's own key path.

    A plain ``ValueError`` is reported at the validator's key; this reports
    ``(("tiers", "small", "model"), "no price ...")`` under that key instead, e.g.
    ``routing.tiers.small.model: no price ...``.
    """
    raise ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(type=PydanticCustomError("policy", message), loc=loc, input=None)
            for loc, message in problems
        ],
    )


def _check_tz(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("a time zone is a name like Europe/Berlin")
    try:
        if value.lower() in ("localtime", "factory"):  # the host's setting, or a placeholder
            raise ValueError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return value


Micros = Annotated[int, BeforeValidator(parse_usd)]


def _more_than_nothing(micros: int) -> int:
    if micros < 1:
        raise ValueError("must be more than $0 (at least $0.000001)")
    return micros


# an amount for which $0 makes no sense (a spend-rate limit, a trial's budget)
PositiveMicros = Annotated[int, BeforeValidator(parse_usd), AfterValidator(_more_than_nothing)]


def _whole_days(value: object) -> object:
    """A count of days, also written as a duration in days or weeks (``7d``, ``2w``, in
    either case: ``7D`` ran before audit26 and must run after it)."""
    if isinstance(value, str) and (m := re.fullmatch(r"\s*(\d+)\s*([A-Za-z]+)\s*", value)):
        number, unit = m.groups()
        if unit.lower() in ("d", "w"):
            return int(number) * (7 if unit.lower() == "w" else 1)
        raise ValueError(f"{value!r}: write a number of days, as 7, 7d or 1w")
    return value


Days = Annotated[int, BeforeValidator(_whole_days)]
Seconds = Annotated[int, BeforeValidator(policy_duration)]
# a duration for which 0 makes no sense (a hold's lifetime, a heartbeat's timeout)
PositiveSeconds = Annotated[int, BeforeValidator(_positive_duration)]
TimeZone = Annotated[str, BeforeValidator(_check_tz)]
Tier = Literal["P0", "P1", "P2"]


class Section(BaseModel):
    """A section of the policy: unknown keys are errors; values never change.

    ``true``/``false`` is refused where a number goes (pydantic would read it as 1 or 0:
    ``min_calls: true`` would mean one call).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: object) -> object:
        """A boolean where no boolean goes becomes the word it was, which the field then
        refuses under its own key."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {
            key: (
                str(value).lower()
                if isinstance(value, bool) and key in fields and _a_number(fields[key].annotation)
                else value
            )
            for key, value in data.items()
        }


def _a_number(annotation: object) -> bool:
    """Whether a field takes a number (and no boolean): ``int``, ``float``, ``int | None``."""
    kinds = (
        set(get_args(annotation)) if get_origin(annotation) in (Union, UnionType) else {annotation}
    )
    return bool(kinds & {int, float}) and bool not in kinds


Limits = Annotated[dict[str, Micros], BeforeValidator(lambda v: v if v is not None else {})]
