"""Escalation chains: which step comes next, when, and whom it notifies.

A chain is the policy's ``oncall.escalation`` list of steps ``{notify, after}``;
``after`` is measured from the start of the chain. A P0 enters at the first step
(at once), a P1 enters at the second step once it has gone unacknowledged for
``alerts.p1_escalate_after``. After the last step the chain runs again, from the
alert's entry step, ``alerts.repeat_escalation`` more times, waiting
``alerts.repeat_escalation_after`` first.

The position in the chain is one integer, ``round * len(steps) + step``, stored on the
alert row with the instant it is due (``esc_step``, ``esc_at``): a restart reads them
and carries on. Each step taken schedules the next one by the gap between their
``after`` values, so "Escalate now" (taking the next step early) keeps the gaps
between the remaining steps.

Without an ``escalation`` list, a policy with rotations pages the first rotation.

A step whose rotation is off hours (``oncall.rotations[].hours``/``days``) at the instant
it fires is passed over, as a step whose people all left the workspace is: it pages
nobody, the thread says why (:func:`nobody_reason`) and the chain goes on at once. When
no step of the chain is on hours, an alert is not dropped for that: each rotation step
pages the first step's person (the chain pages nobody twice in a row). An override is
on call whatever the hours.

Example:
    >>> from guards.config import Policy
    >>> chain = Chain.from_policy(Policy.model_validate({"oncall": {
    ...     "rotations": [{"name": "primary", "users": ["U01"]}],
    ...     "escalation": [{"notify": "rotation:primary", "after": "0m"},
    ...                    {"notify": "channel", "after": "15m"}]}}))
    >>> chain.following(0, entry=0)
    (1, 900)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.alerts.oncall import (
    OnCallNow,
    Override,
    hours_text,
    on_call,
    rotation_named,
    rotation_zone,
)
from bot.alerts.render_time import clock_time
from bot.escape import slack_text
from bot.people import departed
from guards.config import EscalationStep, OnCall, Policy

__all__ = ["Chain", "notify_target"]


@dataclass(frozen=True, slots=True)
class Chain:
    """The escalation chain of a policy, with its repeat settings."""

    steps: tuple[EscalationStep, ...]
    repeat: int
    repeat_after: int

    @classmethod
    def from_policy(cls, policy: Policy) -> Chain:
        steps = tuple(policy.oncall.escalation)
        if not steps and policy.oncall.rotations:
            steps = (EscalationStep(notify=f"rotation:{policy.oncall.rotations[0].name}"),)
        return cls(
            steps=steps,
            repeat=policy.alerts.repeat_escalation,
            repeat_after=policy.alerts.repeat_escalation_after,
        )

    def __len__(self) -> int:
        return len(self.steps)

    def entry(self, tier: str) -> int | None:
        """The position where an alert of ``tier`` enters the chain (None: it does not)."""
        if not self.steps or tier == "P2":
            return None
        return 0 if tier == "P0" else min(1, len(self.steps) - 1)

    def step(self, position: int) -> EscalationStep:
        return self.steps[position % len(self.steps)]

    def following(self, position: int, *, entry: int) -> tuple[int, int] | None:
        """The position after ``position`` and the seconds to wait for it; None at the end."""
        n = len(self.steps)
        rnd, idx = divmod(position, n)
        if idx + 1 < n:
            gap = self.steps[idx + 1].after - self.steps[idx].after
            return position + 1, max(0, gap)
        if rnd < self.repeat:
            return (rnd + 1) * n + entry, self.repeat_after
        return None

    def same_round(self, position: int, other: int) -> bool:
        """Whether two positions are steps of one round (not one round and the next)."""
        return position // len(self.steps) == other // len(self.steps)

    def describe(self, position: int) -> str:
        """ "step 2 of 3" (and "round 2" when the chain repeats)."""
        rnd, idx = divmod(position, len(self.steps))
        text = f"step {idx + 1} of {len(self.steps)}"
        return f"{text}, round {rnd + 1}" if rnd else text


def notify_target(
    step: EscalationStep, *, oncall: OnCall, tz: ZoneInfo, now: float, overrides: Iterable[Override]
) -> str | None:
    """The Slack user a step pages (None: the step notifies the channel, or names nobody).

    Users who left the workspace (:func:`bot.people.departed`) are passed over: a
    rotation's next user takes their shift; a step with nobody left pages no one. So is
    a rotation off hours, unless no step of the chain is on hours: then the first step's
    person is paged (see the module)."""
    overrides = list(overrides)
    who = _on_call(step, oncall=oncall, tz=tz, now=now, overrides=overrides)
    if who is None:  # the channel, a user, or a rotation not in the policy
        kind, _, name = step.notify.partition(":")
        return name if kind == "user" and name not in departed(oncall, [name]) else None
    if who.resumes_at is None:
        return who.user
    steps = oncall.escalation or [EscalationStep(notify=f"rotation:{oncall.rotations[0].name}")]
    chain = [_on_call(s, oncall=oncall, tz=tz, now=now, overrides=overrides) for s in steps]
    if any(c is None or c.resumes_at is None for c in chain):
        return None  # someone is on hours (or the channel is told): this step is passed over
    return next((c.user for c in chain if c is not None and c.user is not None), None)


def off_hours_note(
    step: EscalationStep, *, oncall: OnCall, tz: ZoneInfo, now: float, overrides: Iterable[Override]
) -> str | None:
    """What a page to ``step``'s person off hours says (every step of the chain is off
    hours, so the first step's person is paged anyway); None when it is on hours."""
    who = _on_call(step, oncall=oncall, tz=tz, now=now, overrides=list(overrides))
    if who is None or who.resumes_at is None:
        return None
    rotation = rotation_named(oncall, step.notify.partition(":")[2])
    assert rotation is not None  # _on_call found it
    zone = rotation_zone(rotation, tz)
    resumes = clock_time(who.resumes_at, zone, now=now)
    return f"nobody in the chain is on hours ({rotation.name}'s begin at {resumes} {zone.key})"


def _on_call(
    step: EscalationStep, *, oncall: OnCall, tz: ZoneInfo, now: float, overrides: list[Override]
) -> OnCallNow | None:
    """Who is on call for the rotation ``step`` names (None: it names no rotation)."""
    kind, _, name = step.notify.partition(":")
    rotation = rotation_named(oncall, name) if kind == "rotation" else None
    if rotation is None:
        return None
    gone = departed(oncall, [*rotation.users, *(o.user for o in overrides)])
    return on_call(rotation, tz, now, overrides, gone)


def nobody_reason(
    step: EscalationStep, oncall: OnCall, *, tz: ZoneInfo | None = None, now: float | None = None
) -> str:
    """Why a step that names someone pages nobody, worded by its kind: "<@U1> left the
    workspace", "everyone in rotation primary left the workspace", "rotation eu is off
    hours until 08:00 (Europe/Berlin): passed over" (without ``now``: its hours)."""
    kind, _, name = step.notify.partition(":")
    if kind == "user":
        return f"<@{slack_text(name, 40)}> left the workspace"
    rotation = rotation_named(oncall, name)
    if rotation is None:
        return f"rotation {slack_text(name, 80)} is not in the policy"
    gone = departed(oncall, rotation.users)
    if (rotation.hours is None and rotation.days is None) or all(u in gone for u in rotation.users):
        return f"everyone in rotation {slack_text(name, 80)} left the workspace"
    said = f"rotation {rotation.name} is off hours"
    if tz is not None and now is not None:
        resumes = on_call(rotation, tz, now, (), gone).resumes_at
        if resumes is not None:
            zone = rotation_zone(rotation, tz)
            return f"{said} until {clock_time(resumes, zone, now=now)} ({zone.key}): passed over"
    zone_key = f", {rotation.timezone}" if rotation.timezone else ""
    return f"{said} (on call {hours_text(rotation)}{zone_key}): passed over"
