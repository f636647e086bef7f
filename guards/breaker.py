"""Circuit breakers as a pure state machine: plain values and ``now`` in, transitions out.

No SQL and no clock here: :mod:`guards.breakers` loads a :class:`Breaker` from its
row, calls one method with the current time, and persists what it returns.

The states::

    closed ──trip: failures / spend / attempts──▶ open ──cool-down over──▶ half_open_pending
      ▲                                            ▲     (approval mode)           │ approve
      │                                            │                               ▼
      └──── every trial call succeeded ──── half_open ◀──── (auto mode) ───────────┘
                                                   │ a trial call failed, or the trial budget hit
                                                   └──▶ open again, cool-down ×2 (capped)
    any state ──force_open──▶ forced_open (kill switch, no timer) ──approve──▶ half_open
    any state ──force_close──▶ closed

Thresholds are inclusive (``>=``), so each figure of the policy is the first value
that trips, and one unit less never does:

- ``consecutive``: the failures in a row reach it;
- ``rate``: at least ``min_calls`` of the last ``window_calls`` are known and
  failures / calls reach it, judged after every outcome (a success that brings the
  window to ``min_calls`` at the limit trips it too);
- spend rate: the micros charged in the sliding window ``(now - per_seconds, now]``
  reach ``max``. "At the threshold" means ``>=``: an agent that has spent exactly
  the allowance starts no more calls. It counts charges, not holds: calls granted
  before the trip still settle (each is told to the breaker's alert as
  :class:`~guards.events.SpentWhileOpen`), and so can one call larger than ``max``;
  capping money before it is spent is the budgets' work.

A trial admits at most ``trial_calls`` reservations whose holds total at most
``trial_budget`` (a call released unused gives its slot back); it closes the breaker
once that many trial calls settled as success, and any failure, timeout, expired
trial hold, or a reservation that would pass the trial budget re-opens it. An agent
that only runs scheduled jobs makes no reservation: while its trial has admitted none,
its job runs started in the trial are its trial calls (:meth:`Breaker.trial_run`).

The cool-down is ``cooldown_seconds × 2^reopens`` capped at ``max_cooldown_seconds``;
``reopens`` counts the re-opens in a row. A forced close sets it back to 0. A trial that
passed puts the breaker on probation for as long as its last cool-down (at least a spend
window): a trip within it is a re-open too (a loop whose calls all succeed passes a small
trial), and only a probation that runs out sets it back to 0. A trial is judged by the
spend rate as well: its calls charged the spend-rate limit on their own re-open it.

The machine is in four modules: :mod:`guards.breaker_windows` (the windows it
counts in), :mod:`guards.breaker_state` (the states, the config, the fields and the
primitive moves), :mod:`guards.breaker_operators` (what an operator may do) and this
one (the rules: when to trip, how a trial goes). Every name is importable from here.

Example:
    >>> b = Breaker("acme/a/bot", BreakerConfig(consecutive=2))
    >>> b.record(0.0, failed=True, source="acme/a/bot") is None
    True
    >>> b.record(1.0, failed=True, source="acme/a/bot").to_state
    'open'
    >>> b.check(2.0, 100).admit
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guards.breaker_operators import OperatedBreaker
from guards.breaker_state import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    HALF_OPEN_PENDING,
    MODEL_FIGURE,
    MODEL_SINCE,
    OPEN,
    REFUSING,
    STATES,
    BreakerConfig,
    Transition,
    trip_reason,
)
from guards.breaker_windows import FailureWindow, SpendWindow
from guards.config_types import format_seconds
from guards.money import usd_for

__all__ = [
    "CLOSED",
    "FORCED_OPEN",
    "HALF_OPEN",
    "HALF_OPEN_PENDING",
    "MODEL_FIGURE",
    "MODEL_SINCE",
    "OPEN",
    "REFUSING",
    "STATES",
    "Breaker",
    "BreakerConfig",
    "Check",
    "FailureWindow",
    "SpendWindow",
    "Transition",
    "trip_reason",
]


@dataclass(frozen=True, slots=True)
class Check:
    """The answer to "may this reservation go through?"."""

    admit: bool
    trial: bool = False
    retry_after: int = 0
    reason: str = ""
    transitions: tuple[Transition, ...] = ()


class Breaker(OperatedBreaker):
    """One breaker's state; every method takes ``now`` and returns what changed."""

    __slots__ = ()

    def _trial_failed(
        self, now: float, reason: str, figures: dict[str, Any], *, model: str | None = None
    ) -> Transition:
        """The trial failed: open again, the cool-down doubled. The model the breaker
        tripped on (``MODEL_FIGURE``) stays named only when the failing call (``model``)
        was on it too: a trial that fails on another model or on its budget is the
        agent's own, not that model's outage (review30 L3). A trial call that hung until
        its hold expired keeps it: a provider that stops answering is its outage too
        (review31 H1)."""
        if model is not None and model == self.figures.get(MODEL_FIGURE):
            kept = {k: self.figures[k] for k in (MODEL_FIGURE, MODEL_SINCE) if k in self.figures}
            figures = {**figures, **kept}
        return self._open(now, trip="trial", reason=reason, figures=figures, reopen=True)

    def expire(self, now: float) -> Transition | None:
        """Leave ``open`` once the cool-down is over: to a trial, or to wait for a human.

        A breaker waiting for a human whose policy now starts trials by itself (the mode
        became ``auto`` at a reload) starts its trial: the operator who switched to
        ``auto`` meant the fleet to recover without them."""
        if self.state == HALF_OPEN_PENDING and self.config.mode(self.origin) == "auto":
            self._start_trial(self.config.trial_calls, self.config.trial_budget_micros)
            why = trip_reason(self.reason)
            return self._to(
                now, HALF_OPEN, reason=f"trial started: the policy starts trials now ({why})"
            )
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        if self.config.mode(self.origin) == "auto":
            self._start_trial(self.config.trial_calls, self.config.trial_budget_micros)
            why = trip_reason(self.reason)
            return self._to(now, HALF_OPEN, reason=f"cool-down over, trial started ({why})")
        return self._to(now, HALF_OPEN_PENDING, reason=self.reason)

    def check(self, now: float, amount_micros: int) -> Check:
        """May a reservation of ``amount_micros`` go through now? Call :meth:`admitted` if so."""
        expired = self.expire(now)
        done = (expired,) if expired else ()
        if self.state == CLOSED:
            return Check(True, transitions=done)
        if self.state == HALF_OPEN:
            if self.trial_full:
                reason = self.trial_waiting()
                return Check(False, retry_after=self.retry_after(now), reason=reason)
            if self.trial_used_up:  # a trial stored before its passing was judged here
                return Check(True, transitions=(*done, self._budget_passed(now)))
            held, charged = self.trial_held_micros, self.trial_charged_micros
            if held + charged + amount_micros > self.trial_budget_micros:
                usd = usd_for(held, charged, amount_micros, self.trial_budget_micros)
                taken = [f"{usd(charged)} charged"] if charged else []
                taken += [f"{usd(held)} held"] if held or not charged else []
                reopened = self._trial_failed(
                    now,
                    (
                        f"trial budget hit: {' + '.join(taken)} + {usd(amount_micros)}"
                        f" asked is over {usd(self.trial_budget_micros)}"
                    ),
                    {
                        "trial_held_micros": held,
                        "trial_charged_micros": charged,
                        "requested_micros": amount_micros,
                        "trial_budget_micros": self.trial_budget_micros,
                    },
                )
                return Check(
                    False,
                    retry_after=self.retry_after(now),
                    reason=self.reason,
                    transitions=(*done, reopened),
                )
            return Check(True, trial=True, transitions=done)
        return Check(False, retry_after=self.retry_after(now), reason=self.reason, transitions=done)

    def admitted(self, res_id: str, amount_micros: int) -> None:
        """A reservation this breaker admitted was granted: count it if it is a trial call."""
        if self.state == HALF_OPEN and self.config.trials_by_id:
            self.trial_holds[res_id] = amount_micros
            self.dirty = True

    def released(self, res_id: str) -> None:
        """A trial reservation was released unused: its slot and budget are free again."""
        if self.state == HALF_OPEN and self.trial_holds.get(res_id) is not None:
            del self.trial_holds[res_id]  # a settled one (None) stays: it was a call
            self.dirty = True

    def abandoned(self, now: float, res_id: str) -> Transition | None:
        """A trial call's hold expired without a settle: the trial failed."""
        if not self.is_trial(res_id):
            return None
        return self._trial_failed(
            now,
            f"trial call {res_id} expired without a settle",
            {"reservation_id": res_id},
            model=self.figures.get(MODEL_FIGURE),  # hung: the outage it tripped in goes on
        )

    def record(
        self,
        now: float,
        *,
        failed: bool,
        source: str,
        res_id: str | None = None,
        charged_micros: int = 0,
        signal: str = "call",
        detail: str = "",
        model: str | None = None,
    ) -> Transition | None:
        """Learn one outcome (``signal`` ``attempts``: a refused attempt past the task limit).

        ``model``: the breaker key of the model the call was on (``model:<name>``); a trip
        keeps the tripping call's in its figures (``model``, and when: ``model_since``):
        the agent's breaker then follows that model's when it tripped in that model's
        outage (:meth:`~guards.breaker_records.BreakerRecords.follow`)."""
        if self.state != CLOSED:
            if self.is_trial(res_id):
                # the call's own error says why the trial failed (audit23 forensics M3)
                why = f"trial call {res_id} failed; {detail}" if failed and detail else None
                return self._trial_outcome(
                    now,
                    failed=failed,
                    res_id=res_id,
                    charged=charged_micros,
                    failure=why,
                    model=model,
                )
            return None
        cfg = self.config
        if cfg.consecutive is None:
            return None
        w = self.window
        if not failed and not w.failures and len(w.items) >= w.cap:
            return None  # the hot path: a healthy agent's full, clean window stays as it is
        self.dirty |= w.add(failed, source)
        if not w.failures or len(w.sources) < cfg.min_sources:
            return None
        # the rate is judged after every outcome, a success too (resilience4j does): the
        # call that brings the window to min_calls at the limit trips it (audit26 L3)
        trip = "attempts" if signal == "attempts" else "failures"
        suffix = f"; {detail}" if detail and failed else ""
        # a success that completes the window names no model: it is no outage's call
        on = {MODEL_FIGURE: model, MODEL_SINCE: now} if model and failed else {}
        if failed and w.consecutive >= cfg.consecutive:
            return self._open(
                now,
                trip=trip,
                reason=f"{w.consecutive} failures in a row (limit {cfg.consecutive}){suffix}",
                figures={"consecutive": w.consecutive, "limit": cfg.consecutive, **on},
                reopen=False,
            )
        calls = len(w.items)
        if calls >= cfg.min_calls and w.failures >= cfg.rate * calls:
            return self._open(
                now,
                trip=trip,
                reason=(
                    f"{w.failures} of the last {calls} calls failed"
                    f" (limit {cfg.rate:.0%} of at least {cfg.min_calls}){suffix}"
                ),
                figures={
                    "failures": w.failures,
                    "calls": calls,
                    "rate": w.failures / calls,
                    "limit": cfg.rate,
                    **on,
                },
                reopen=False,
            )
        return None

    def trial_run(
        self, now: float, *, failed: bool, started: float, detail: str = ""
    ) -> Transition | None:
        """A run that is not a reservation (a scheduled job's), started at ``started``,
        as a trial call: only for an agent whose trial has admitted no reservation (one
        that only runs jobs makes none, and its trial would never end otherwise), and only
        for a run that began in the trial. Reservations decide every other trial."""
        if self.state != HALF_OPEN or self.trial_holds or started < self.since:
            return None
        why = f"a trial run failed ({detail})" if detail else "a trial run failed"
        return self._trial_outcome(now, failed=failed, res_id=None, charged=0, failure=why)

    def _trial_outcome(
        self,
        now: float,
        *,
        failed: bool,
        res_id: str | None,
        charged: int,
        failure: str | None = None,
        model: str | None = None,
    ) -> Transition | None:
        figures = {
            "reservation_id": res_id,
            "trial_calls": self.trial_calls,
            "succeeded": self.trial_succeeded,
        }
        if failed:
            if failure is None:
                failure = f"trial call {res_id} failed" if res_id else "a trial call failed"
            return self._trial_failed(now, failure, figures, model=model)
        if res_id in self.trial_holds:  # settled: its charge takes the budget, not its hold
            self.trial_holds[res_id] = None
        self.trial_charged_micros += charged
        self.trial_succeeded += 1
        self.dirty = True
        spent, cfg = self.trial_charged_micros, self.config
        if spent > self.trial_budget_micros:
            usd = usd_for(spent, self.trial_budget_micros)
            return self._trial_failed(
                now,
                (f"trial budget hit: {usd(spent)} charged, over {usd(self.trial_budget_micros)}"),
                {
                    **figures,
                    "trial_charged_micros": spent,
                    "trial_budget_micros": self.trial_budget_micros,
                },
            )
        if (
            cfg.spend_max_micros is not None
            and spent >= cfg.spend_max_micros
            and self.trial_budget_micros == cfg.trial_budget_micros
            and now - self.since <= cfg.spend_per_seconds
        ):
            # judged by the rule that trips a closed breaker too: the trial's own charges
            # reach the spend-rate limit within a spend window (a loop's calls all
            # succeed) (audit21 F2); not a trial budget a person chose (review22 L5)
            usd = usd_for(spent, cfg.spend_max_micros)
            return self._trial_failed(
                now,
                (
                    f"the trial's calls were charged {usd(spent)}, the spend-rate limit"
                    f" ({usd(cfg.spend_max_micros)} per {format_seconds(cfg.spend_per_seconds)})"
                    " on their own"
                ),
                {
                    **figures,
                    "trial_charged_micros": spent,
                    "limit_micros": cfg.spend_max_micros,
                    "per_seconds": cfg.spend_per_seconds,
                },
            )
        if self.trial_succeeded >= self.trial_calls and self.trial_in_flight == 0:
            n, runs = self.trial_calls, self.trial_runs  # none in flight: both exits wait
            ran = f" ({runs:,} of them {'a job run' if runs == 1 else 'job runs'})"
            calls = "the trial call" if n == 1 else f"all {n:,} trial calls"
            return self._passed(now, calls, ran if 0 < runs < n else "")
        return self._budget_passed(now) if self.trial_used_up else None

    def on_spend(self, now: float, window_total: int) -> Transition | None:
        """Trip when the window's charges reach the spend-rate limit (``>=``)."""
        cfg = self.config
        if self.state != CLOSED or cfg.spend_max_micros is None:
            return None
        if window_total < cfg.spend_max_micros:
            return None
        usd = usd_for(window_total, cfg.spend_max_micros)  # not "$0.10 (limit $0.10)"
        return self._open(
            now,
            trip="spend",
            reason=(
                f"spent {usd(window_total)} in the last"
                f" {format_seconds(cfg.spend_per_seconds)}"
                f" (limit {usd(cfg.spend_max_micros)})"
            ),
            figures={
                "spent_micros": window_total,
                "limit_micros": cfg.spend_max_micros,
                "per_seconds": cfg.spend_per_seconds,
            },
            reopen=False,
        )
