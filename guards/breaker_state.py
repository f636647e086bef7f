"""One breaker's state: the states, what it is configured with, and the moves between them.

:class:`BreakerState` holds the fields of one breaker (those its row stores) and the
primitive moves (open, close, start and end a trial) that change them and return a
:class:`Transition`. The rules that decide *when* to move (trips, trials, operators)
are :class:`guards.breaker.Breaker`'s, which builds on this class; the states and
their diagram are drawn in :mod:`guards.breaker`.

Example:
    >>> s = BreakerState("acme/a/bot", BreakerConfig(cooldown_seconds=60))
    >>> s.state, s.retry_after(0.0)
    ('closed', 0)
    >>> BreakerConfig(cooldown_seconds=60, max_cooldown_seconds=200).cooldown(2)
    200
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from guards.breaker_windows import FailureWindow
from guards.config_types import format_seconds
from guards.money import usd_for
from guards.words import plural

__all__ = [
    "CLOSED",
    "FORCED_OPEN",
    "HALF_OPEN",
    "HALF_OPEN_PENDING",
    "MODEL_FIGURE",
    "MODEL_SINCE",
    "OPEN",
    "PENDING_RETRY_SECONDS",
    "REFUSING",
    "STATES",
    "TRIAL_RETRY_SECONDS",
    "BreakerConfig",
    "BreakerState",
    "Transition",
    "trip_reason",
]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN_PENDING = "half_open_pending"
HALF_OPEN = "half_open"
FORCED_OPEN = "forced_open"
STATES = (CLOSED, OPEN, HALF_OPEN_PENDING, HALF_OPEN, FORCED_OPEN)
REFUSING = (OPEN, HALF_OPEN_PENDING, FORCED_OPEN)
# the figure of an agent's failure trip naming the model its tripping call was on
# (``model:<name>``), kept while the breaker stays open (kept open by a person, or a
# trial that failed on that same model), and when that trip came (MODEL_SINCE)
MODEL_FIGURE = "model"
MODEL_SINCE = "model_since"

PENDING_RETRY_SECONDS = 60  # a hint while a human decides
TRIAL_RETRY_SECONDS = 10  # a hint while the trial's calls are out


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """What one breaker trips on and how it recovers (built from the policy)."""

    consecutive: int | None = None  # None: this breaker does not trip on failures
    rate: float = 0.5
    window_calls: int = 20
    min_calls: int = 10
    min_sources: int = 1  # failures must come from this many sources (agents) to trip
    slow_after: int = 0  # a call settled this long after its reserve is a failure (0: none)
    spend_max_micros: int | None = None  # None: no spend-rate trip
    spend_per_seconds: int = 600
    cooldown_seconds: int = 900
    max_cooldown_seconds: int = 4 * 3600
    trial_calls: int = 3
    trial_budget_micros: int = 500_000
    modes: Mapping[str, str] = field(default_factory=dict)  # trip kind -> approval / auto
    trials_by_id: bool = True  # False (models): every settle in half_open is a trial call
    # which limits these are: a `breakers.scopes` prefix, or "breakers" (the top level)
    limits_from: str = "breakers"

    def cooldown(self, reopens: int) -> int:
        """The cool-down after ``reopens`` consecutive re-opens."""
        factor: int = 2 ** min(reopens, 40)
        return min(self.cooldown_seconds * factor, self.max_cooldown_seconds)

    def mode(self, origin: str | None) -> str:
        if origin == "manual":
            return "approval"
        return self.modes.get(origin or "", "approval")


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of state, to be stored as a row and maybe announced as an event."""

    key: str
    from_state: str
    to_state: str
    reason: str
    actor: str
    at: float
    trip: str | None = None
    figures: Mapping[str, Any] = field(default_factory=dict)
    cooldown_seconds: int = 0
    announce: bool = True  # False: no event (e.g. an operator keeping it open)


@dataclass(slots=True, eq=False)
class BreakerState:
    """One breaker's fields and its primitive moves (the rules are in :mod:`guards.breaker`)."""

    key: str
    config: BreakerConfig
    state: str = CLOSED
    reason: str = ""
    trip: str | None = None  # what opened it last (spend, failures, attempts, trial, manual)
    origin: str | None = None  # what opened it from closed: decides the half-open mode
    figures: dict[str, Any] = field(default_factory=dict)
    since: float = 0.0
    opened_at: float | None = None
    cooldown_seconds: int = 0
    reopens: int = 0
    trial_calls: int = 0
    trial_budget_micros: int = 0
    # trial reservation -> what it holds; None once it settled (its charge is then counted
    # in trial_charged_micros, so the trial's budget is spent, not held): the calls in
    # flight are the entries not None (review28 R2 M1), whatever else trial_succeeded counts
    trial_holds: dict[str, int | None] = field(default_factory=dict)
    trial_charged_micros: int = 0
    trial_succeeded: int = 0
    spend_reset_at: float | None = None  # charges at or before this do not count
    # closed by a trial that passed: a trip before this is a re-open (it flaps), whose
    # cool-down doubles on from the last one, not a first trip at the base cool-down
    probation_until: float | None = None
    window: FailureWindow = field(default_factory=lambda: FailureWindow(1))
    dirty: bool = False  # changed since it was last stored

    def __post_init__(self) -> None:
        if self.window.cap != self.config.window_calls:
            self.window = FailureWindow(max(self.config.window_calls, 1))

    # -- reading ------------------------------------------------------------------------

    @property
    def trial_held_micros(self) -> int:
        """What the trial's calls in flight hold (a settled one holds nothing)."""
        return sum(v for v in self.trial_holds.values() if v is not None)

    @property
    def trial_taken_micros(self) -> int:
        """The trial's budget taken: charged by its settled calls, held by those in flight."""
        return self.trial_held_micros + self.trial_charged_micros

    @property
    def trial_in_flight(self) -> int:
        """The trial calls admitted and not settled yet: their holds, not the admitted
        less ``trial_succeeded``, which counts a scheduled job's run too (one never
        admitted: after one, the last call in flight counted as settled, review28 R2 M1)."""
        return sum(1 for v in self.trial_holds.values() if v is not None)

    @property
    def trial_used_up(self) -> bool:
        """Its settled calls, all successes, were charged its whole budget and none is in
        flight: no call is left to try, so the trial has passed (resilience4j closes once
        the calls it permitted succeeded; here the budget permitted no more)."""
        return (
            self.config.trials_by_id
            and self.trial_in_flight == 0
            and self.trial_succeeded > 0
            and self.trial_charged_micros >= self.trial_budget_micros
        )

    @property
    def trial_runs(self) -> int:
        """The scheduled job runs that were trial calls (:meth:`guards.breaker.Breaker.trial_run`:
        they succeeded before any reservation was admitted): the successes that are no
        settled reservation's."""
        if not self.config.trials_by_id:
            return 0
        settled = sum(1 for v in self.trial_holds.values() if v is None)
        return max(0, self.trial_succeeded - settled)

    @property
    def trial_full(self) -> bool:
        """Every call of the trial is admitted: the next waits for their results. A job
        run that was a trial call takes its slot, as README's jobs section says it is one
        of the trial's calls (review28 R6 M1: a trial of 3 after a run admitted 3 more and
        closed at the second's settle, the third in flight)."""
        return len(self.trial_holds) + self.trial_runs >= self.trial_calls

    def trial_waiting(self) -> str:
        """Why a full trial refuses a call: what it admitted, and waits for."""
        admitted, runs = len(self.trial_holds), self.trial_runs
        results = "its result" if admitted == 1 else "their results"
        if not runs:
            return (
                f"trial in progress: {admitted} of {plural(self.trial_calls, 'call')}"
                f" admitted, waiting for {results}"
            )
        return (
            f"trial in progress: {plural(runs, 'job run')} of the agent succeeded and"
            f" {admitted} admitted of {plural(self.trial_calls, 'call')}, waiting for {results}"
        )

    @property
    def trial_spent(self) -> bool:
        """The trial's calls in flight (with what its settled ones were charged) take all of
        its budget: the next call, however small, would take more than is left, which ends
        the trial like a failure (``half_open.trial_budget``), though a call slot is free
        (recheck27 Ka L2). Not when none is in flight: the trial has passed then."""
        return self.trial_taken_micros >= self.trial_budget_micros and not self.trial_used_up

    def deadline(self) -> float | None:
        """When an open breaker's cool-down ends."""
        if self.state != OPEN or self.opened_at is None:
            return None
        return self.opened_at + self.cooldown_seconds

    def retry_after(self, now: float) -> int:
        """Seconds a refused caller should wait (a hint when a human must act); 0 when it
        refuses nothing now: closed, or a trial with calls still to admit and budget left
        (audit27 B1 L1). A trial whose budget is all held gives what the next call gets:
        the cool-down of the re-open that call brings (recheck27 Ka L2)."""
        if self.state == OPEN:
            return max(1, math.ceil((self.deadline() or now) - now))
        if self.state == HALF_OPEN_PENDING:
            return PENDING_RETRY_SECONDS
        if self.state == HALF_OPEN:
            if self.trial_full:
                return TRIAL_RETRY_SECONDS
            return max(1, self.config.cooldown(self.reopens + 1)) if self.trial_spent else 0
        if self.state == FORCED_OPEN:
            return self.config.cooldown_seconds
        return 0

    def is_trial(self, res_id: str | None) -> bool:
        if self.state != HALF_OPEN:
            return False
        return res_id in self.trial_holds if self.config.trials_by_id else True

    # -- transitions --------------------------------------------------------------------

    def _to(
        self,
        now: float,
        state: str,
        *,
        reason: str,
        actor: str = "breaker",
        trip: str | None = None,
        figures: Mapping[str, Any] | None = None,
        announce: bool = True,
    ) -> Transition:
        before = self.state
        self.state = state
        self.since = now
        self.reason = reason
        self.dirty = True
        if trip is not None:
            self.trip = trip
            self.figures = dict(figures or {})
        return Transition(
            key=self.key,
            from_state=before,
            to_state=state,
            reason=reason,
            actor=actor,
            at=now,
            trip=trip,
            figures=dict(figures or {}),
            cooldown_seconds=self.cooldown_seconds if state == OPEN else 0,
            announce=announce,
        )

    def _open(
        self,
        now: float,
        *,
        trip: str,
        reason: str,
        figures: Mapping[str, Any],
        reopen: bool,
        actor: str = "breaker",
        announce: bool = True,
    ) -> Transition:
        if reopen:
            self.reopens += 1
        elif self.probation_until is not None and now < self.probation_until:
            # tripped again soon after a trial passed (a loop whose calls all succeed, a
            # trial too small to show the fault): its cool-down doubles on (audit21 F2)
            last = self.config.cooldown(self.reopens)
            self.reopens += 1
            self.origin = trip
            longer = self.config.cooldown(self.reopens) > last
            reason += (
                f"; tripped again {format_seconds(now - self.since)} after its trial passed,"
                + (" so the cool-down doubles" if longer else " so the cool-down stays at its cap")
            )
        else:
            self.reopens = 0
            self.origin = trip
        self.probation_until = None
        self.cooldown_seconds = self.config.cooldown(self.reopens)
        self.opened_at = now
        self._end_trial()
        return self._to(
            now, OPEN, reason=reason, actor=actor, trip=trip, figures=figures, announce=announce
        )

    def _close(
        self, now: float, *, reason: str, actor: str = "breaker", probation: float = 0
    ) -> Transition:
        """Close; ``probation`` (seconds): a trip within it doubles the cool-down on (a
        trial passed), else the re-opens start over (a person closed it)."""
        if probation > 0:
            self.probation_until = now + probation
        else:
            self.reopens = 0
            self.probation_until = None
        self.opened_at = None
        self.cooldown_seconds = 0
        self.window.clear()
        self.spend_reset_at = now
        self._end_trial()
        return self._to(now, CLOSED, reason=reason, actor=actor)

    def _budget_passed(self, now: float) -> Transition:
        """Close: its successful calls were charged the trial's whole budget, so every call
        it could pay for succeeded (spent well, it is no failure: recheck27 Kd)."""
        usd = usd_for(self.trial_charged_micros, self.trial_budget_micros)
        return self._passed(
            now,
            f"{plural(self.trial_succeeded, 'trial call')} of {self.trial_calls}",
            f" and spent the trial's budget ({usd(self.trial_charged_micros)} of"
            f" {usd(self.trial_budget_micros)})",
        )

    def _passed(self, now: float, calls: str, spent: str = "") -> Transition:
        """Close on probation for as long as it was last kept open, or a spend window: a
        trip within it doubles the cool-down on."""
        probation = max(self.config.cooldown(self.reopens), self.config.spend_per_seconds)
        return self._close(now, reason=f"{calls} succeeded{spent}", probation=probation)

    def _start_trial(self, calls: int, budget: int) -> None:
        self.trial_calls = calls
        self.trial_budget_micros = budget
        self.trial_holds = {}
        self.trial_charged_micros = 0
        self.trial_succeeded = 0

    def _end_trial(self) -> None:
        self._start_trial(0, 0)


# The wrappers an operator or a timer puts around the reason a breaker opened for; they
# are peeled off before a new one is put on, so a reason never nests.
_WRAPPED = re.compile(
    r"(?:kept open by .+? for [0-9dhms]+|cool-down over, trial started) \((?P<inner>.*)\)",
    re.DOTALL,
)


def trip_reason(reason: str) -> str:
    """The reason a breaker opened for, without the "kept open by ..." wrappers around it.

    Example:
        >>> trip_reason("kept open by U2 for 1h (kept open by U1 for 30m (3 failures in a row))")
        '3 failures in a row'
    """
    while (m := _WRAPPED.fullmatch(reason)) is not None:
        reason = m["inner"]
    return reason
