"""What an operator may do to one breaker: approve a trial, keep it open, force it open or closed.

:class:`OperatedBreaker` adds the operator moves to the fields and primitive moves of
:class:`~guards.breaker_state.BreakerState`; each refuses, with
:class:`~guards.errors.Conflict`, a move that does not apply to the breaker's state.
:class:`guards.breaker.Breaker` builds on it; the states are drawn in :mod:`guards.breaker`.

Example:
    >>> from guards.breaker_state import BreakerConfig
    >>> b = OperatedBreaker("acme/a/bot", BreakerConfig())
    >>> b.force_open(0.0, actor="dana", reason="runaway").to_state
    'forced_open'
    >>> b.approve(1.0, actor="dana").to_state
    'half_open'
"""

from __future__ import annotations

from guards.breaker_state import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    HALF_OPEN_PENDING,
    OPEN,
    REFUSING,
    BreakerState,
    Transition,
    trip_reason,
)
from guards.config_types import format_seconds
from guards.errors import Conflict
from guards.money import format_usd
from guards.words import plural

__all__ = ["OperatedBreaker"]


class OperatedBreaker(BreakerState):
    """One breaker's state and what an operator does to it (the rules: :mod:`guards.breaker`)."""

    __slots__ = ()

    def approve(
        self,
        now: float,
        *,
        actor: str,
        trial_calls: int | None = None,
        trial_budget_micros: int | None = None,
    ) -> Transition:
        """Start a trial (also before the cool-down ends, or out of a forced open)."""
        if self.state == HALF_OPEN:  # what the agents' 503 says too: its calls decide
            # (a model's trial counts no calls in: every settle of the model is one)
            admitted = f"{len(self.trial_holds)} admitted, " if self.config.trials_by_id else ""
            raise Conflict(
                f"the breaker for {self.key} is half open: a trial of"
                f" {plural(self.trial_calls, 'call')} is running already ({admitted}"
                f"{self.trial_succeeded} succeeded) and its calls decide; there is nothing"
                " to approve",
                state=self.state,
            )
        if self.state not in REFUSING:
            raise Conflict(
                f"the breaker for {self.key} is {self.state.replace('_', ' ')}; there is"
                " nothing to approve",
                state=self.state,
            )
        calls = trial_calls if trial_calls is not None else self.config.trial_calls
        budget = (
            trial_budget_micros
            if trial_budget_micros is not None
            else self.config.trial_budget_micros
        )
        self._start_trial(calls, budget)
        return self._to(
            now,
            HALF_OPEN,
            reason=(
                f"trial of {plural(calls, 'call')} up to {format_usd(budget, exact=True)}"
                f" approved by {actor}"
            ),
            actor=actor,
        )

    def follow(self, now: float, *, model: str) -> Transition:
        """Start the trial because ``model``'s breaker (``model:<name>``, the model this
        breaker tripped on) closed after its own trial: no person approved it."""
        if self.state not in (OPEN, HALF_OPEN_PENDING):
            raise Conflict(
                f"the breaker for {self.key} is {self.state.replace('_', ' ')}; only an open"
                " breaker follows its model",
                state=self.state,
            )
        self._start_trial(self.config.trial_calls, self.config.trial_budget_micros)
        return self._to(
            now,
            HALF_OPEN,
            reason=(
                f"trial of {plural(self.trial_calls, 'call')} up to"
                f" {format_usd(self.trial_budget_micros, exact=True)}"
                f" started: {model}'s breaker closed after its trial"
                f" ({trip_reason(self.reason)})"
            ),
            actor=model,
        )

    def keep_open(self, now: float, *, actor: str) -> Transition:
        """Refuse a trial (or stop one): open again with the next, longer cool-down.

        Each call re-opens and doubles the cool-down, so a caller that answers a trial
        request (the Keep open button) acts only while the state is ``half_open_pending``.
        The new reason wraps the trip's own reason once, however often it is kept open.
        """
        if self.state not in (OPEN, HALF_OPEN_PENDING, HALF_OPEN):
            raise Conflict(
                f"the breaker for {self.key} is {self.state.replace('_', ' ')}; keep-open"
                " applies to an open breaker, one waiting for a trial, or one in a trial",
                state=self.state,
            )
        cooldown = self.config.cooldown(self.reopens + 1)
        return self._open(
            now,
            trip=self.trip or "manual",
            reason=(
                f"kept open by {actor} for {format_seconds(cooldown)} ({trip_reason(self.reason)})"
            ),
            figures=self.figures,
            reopen=True,
            actor=actor,
            announce=False,
        )

    def force_open(self, now: float, *, actor: str, reason: str) -> Transition:
        """The kill switch: refuse everything until an operator approves or closes."""
        if self.state == FORCED_OPEN:
            raise Conflict(f"the breaker for {self.key} is already forced open", state=self.state)
        self.origin = "manual"
        self.opened_at = now
        self.cooldown_seconds = 0
        self._end_trial()
        return self._to(
            now,
            FORCED_OPEN,
            reason=f"forced open by {actor}: {reason}" if reason else f"forced open by {actor}",
            actor=actor,
            trip="manual",
            figures={},
        )

    def force_close(self, now: float, *, actor: str) -> Transition:
        """Close now and forget the failures and the cool-down history."""
        if self.state == CLOSED:
            raise Conflict(f"the breaker for {self.key} is already closed", state=self.state)
        return self._close(now, reason=f"forced closed by {actor}", actor=actor)
