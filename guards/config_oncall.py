"""The policy's on-call section: rotations (who takes turns, when they hand off) and the
escalation chain (who is paged, and how long after the alert fired).

Example:
    >>> chain = OnCall.model_validate({"escalation": [{"notify": "channel", "after": "5m"}]})
    >>> chain.escalation[0].after
    300
"""

from __future__ import annotations

import re
from datetime import date
from itertools import pairwise
from typing import Literal

from pydantic import Field, field_validator, model_validator

from guards.config_hours import Days, Hours
from guards.config_people import MemberId, member_id, one_word
from guards.config_types import Seconds, Section, TimeZone, in_words, refuse
from guards.config_webhooks import webhook_name

__all__ = ["EscalationStep", "OnCall", "Rotation"]


class Rotation(Section):
    """Who takes turns, and when they hand off. ``hours`` and ``days`` limit when the
    rotation is on call at all (a step of the chain naming it is passed over off hours),
    read in ``timezone`` (default: the policy's), in which its hand-offs happen too."""

    name: str
    users: list[MemberId] = Field(min_length=1)
    period: Literal["day", "week"] = "week"
    handoff: str = "mon 09:00"
    start: str | None = None  # ISO date the first user started; defaults to 2026-01-05
    hours: Hours = None
    days: Days = None
    timezone: TimeZone | None = None

    @model_validator(mode="before")
    @classmethod
    def _daily_hands_off_at_nine(cls, data: object) -> object:
        """A daily rotation left without a hand-off hands off at 09:00 (the weekly
        default names a weekday, which a daily rotation refuses)."""
        if isinstance(data, dict) and data.get("period") == "day" and "handoff" not in data:
            return {**data, "handoff": "09:00"}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return one_word(value, "a rotation's name")

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str) -> str:
        if not re.fullmatch(r"((mon|tue|wed|thu|fri|sat|sun) )?([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r}: write a hand-off as 'mon 09:00' or '09:00'")
        return value

    @field_validator("start", mode="before")
    @classmethod
    def _start_as_written(cls, value: object) -> object:
        """YAML reads an unquoted ``2026-01-05`` as a date: take it as written."""
        return value.isoformat() if isinstance(value, date) else value

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r}: write the start as a date, e.g. 2026-01-05") from None
        return value

    @model_validator(mode="after")
    def _weekday_needs_week(self) -> Rotation:
        if self.period == "day" and " " in self.handoff:
            said = f"a daily rotation hands off every day: write '{self.handoff[4:]}'"
            refuse("Rotation", [(("handoff",), said)])
        return self


class EscalationStep(Section):
    notify: str
    after: Seconds = 0

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: str) -> str:
        kind, colon, name = value.partition(":")
        if value == "channel":
            return value
        if kind == "rotation" and colon:
            return f"rotation:{one_word(name, 'a rotation name')}"
        if kind in ("user", "webhook") and colon:
            return f"{kind}:{member_id(name) if kind == 'user' else webhook_name(name)}"
        raise ValueError(f"{value!r}: notify is rotation:NAME, user:ID, webhook:NAME or channel")


def _known(names: set[str]) -> str:
    if not names:
        return "; oncall.rotations defines none"
    return f"; rotations are {', '.join(sorted(names))}"


class OnCall(Section):
    """Rotations, the escalation chain, and ``notify_shift_start``: whether each person
    gets a DM when their shift (a hand-off, or an override) starts."""

    rotations: list[Rotation] = Field(default_factory=list)
    escalation: list[EscalationStep] = Field(default_factory=list)
    notify_shift_start: bool = False

    @model_validator(mode="after")
    def _refs(self) -> OnCall:
        # names are read in any case (escalation steps, overrides): so two names that differ
        # only in case are one name (`Primary` would page the users of `primary`)
        first: dict[str, int] = {}
        twice: list[tuple[tuple[str | int, ...], str]] = []
        for i, rotation in enumerate(self.rotations):
            key = rotation.name.lower()  # as rotation_named and the overrides read it
            if key in first:
                taken = self.rotations[first[key]].name
                same = (
                    "" if taken == rotation.name else f" (as {taken!r}: names are read in any case)"
                )
                twice.append(
                    (
                        ("rotations", i, "name"),
                        f"the name {rotation.name!r} is already taken by oncall.rotations."
                        f"{first[key]}{same}; give each rotation its own name",
                    )
                )
            first.setdefault(key, i)
        if twice:
            refuse("OnCall", twice)
        names = {rotation.name for rotation in self.rotations}
        unknown = [
            (("escalation", i, "notify"), f"unknown rotation {step.notify[9:]!r}{_known(names)}")
            for i, step in enumerate(self.escalation)
            if step.notify.startswith("rotation:") and step.notify[9:].lower() not in first
        ]
        if problems := [*unknown, *_out_of_order(self.escalation)]:  # all at once
            refuse("OnCall", problems)
        return self


def _out_of_order(steps: list[EscalationStep]) -> list[tuple[tuple[str | int, ...], str]]:
    """A step whose ``after`` is sooner than the step before it (audit26 A1 M1): each
    ``after`` counts from when the alert fired, and the chain takes the steps in the order
    listed, so such a step would fire with the one before, not at its own time. Equal
    ``after``s are two steps at once, as written."""
    return [
        (("escalation", i, "after"), _sooner(step, before=before, i=i))
        for i, (before, step) in enumerate(pairwise(steps), start=1)
        if step.after < before.after
    ]


def _sooner(step: EscalationStep, *, before: EscalationStep, i: int) -> str:
    """Why step ``i`` is refused, and what to write. A step with no ``after`` (a natural
    way to write "and then the channel") is due at once: moving it first, as "list the
    steps in order" would have it, pages at once the one it was meant to follow
    (review26 R2 L1)."""
    earlier = (
        f"the {in_words(before.after)} of the step before it (oncall.escalation.{i - 1}.after)"
    )
    fires = (
        "steps fire in the order listed and each `after` counts from when the alert fired,"
        " so this one would fire with the step before it"
    )
    if "after" not in step.model_fields_set:
        return (
            f"this step has no `after`, so it is due at once (0m), sooner than {earlier}:"
            f" {fires}; to follow that step, give it an `after` of at least"
            f" {in_words(before.after)} (e.g. `after: {in_words(before.after + 300)}`)"
        )
    return (
        f"{in_words(step.after)} is sooner than {earlier}: {fires}; list the steps in order"
        " of `after`"
    )
