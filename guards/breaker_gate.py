"""The breakers' gate on the ledger: what a reservation, a settle and a release do to them.

:class:`BreakerGate` holds the breakers of one process in memory (following their rows,
:mod:`guards.breaker_records`) and implements the ledger's ``Gate`` protocol: refuse a
reservation a governing breaker refuses, count trial calls and task attempts, learn
each settle's outcome and charge. :class:`guards.breakers.Breakers` builds on it with
the timers and the operator actions; the engine is described in :mod:`guards.breakers`.

Example:
    >>> # ledger.gates.append(breakers)   # a Breakers, which is a BreakerGate
    >>> # breakers.attach(store)           # forget the memory when writes roll back
"""

from __future__ import annotations

import json
import math

from guards.breaker import CLOSED, FORCED_OPEN, HALF_OPEN, REFUSING, Breaker, Transition
from guards.breaker_attempts import check_attempts, count_attempt
from guards.breaker_kinds import BreakerLimits, governing, model_key, model_keys, parse_key
from guards.breaker_records import BreakerRecords
from guards.breaker_said import last_error
from guards.breaker_spend import SpendRates
from guards.config import Policy
from guards.config_types import format_seconds
from guards.errors import BreakerOpen, InvalidInput
from guards.events import SpentWhileOpen
from guards.ledger import Reservation
from guards.scopes import Scope
from guards.store import Store, Tx

__all__ = ["UPSERT_MODEL_REFUSED", "BreakerGate"]

# A call a model's kill switch refused, counted per breaker, forced-open spell (its
# ``since``) and agent (migration 0048): a refused call leaves no reservation, and this
# is how a namespace's digest knows the outage met its calls.
UPSERT_MODEL_REFUSED = (
    "INSERT INTO model_breaker_refusals (key, since, agent, calls) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (key, since, agent) DO UPDATE SET calls = calls + excluded.calls"
)


class BreakerGate:
    """The breakers of one process, as the ledger's ``Gate``: before and after each write."""

    def __init__(self, *, policy: Policy) -> None:
        self.policy = policy
        self.enabled = policy.breakers.enabled
        self.limits = BreakerLimits(policy)  # each breaker's, by `breakers.scopes` prefix
        self._spend = SpendRates(self.limits)
        self._records = BreakerRecords(
            self.limits.config,
            on_close=self._spend.clear,
            follow_model=policy.breakers.follow_model,
        )

    # -- memory that follows the database -----------------------------------------------

    def attach(self, store: Store) -> None:
        """Forget the in-memory state whenever the store rolls writes back."""
        store.on_rollback.append(self.forget)

    def clock_stepped_back(self, seconds: float) -> None:
        """The wall clock went back ``seconds`` (:class:`bot.clock_watch.ClockWatch`): the
        spend windows keep their charges' real age, rather than count them for the step
        too and trip on spend long gone."""
        self._spend.clock_stepped_back(seconds)

    def clock_stepped(self, tx: Tx, seconds: float) -> None:
        """Move every cool-down's start by ``seconds`` (the wall clock stepped that much,
        :class:`bot.clock_watch.ClockWatch`): a cool-down keeps its length in real time."""
        tx.execute(
            "UPDATE breakers SET opened_at = opened_at + ? WHERE opened_at IS NOT NULL",
            (seconds,),
        )
        for breaker in self._records.entries.values():
            if breaker.opened_at is not None:
                breaker.opened_at += seconds

    def forget(self) -> None:
        """Drop every breaker and spend window from memory; they reload from rows."""
        self._records.forget()
        self._spend.forget()

    # -- the gate -----------------------------------------------------------------------

    def before_reserve(
        self,
        tx: Tx,
        *,
        scope: Scope,
        task_id: str | None,
        amount_micros: int,
        now: float,
        models: tuple[str, ...] = (),
    ) -> None:
        """Refuse (503) while a governing breaker is open, or the model's is forced open;
        or (429) an attempt past the limit."""
        if not self.enabled:
            return
        records = self._records
        not_closed = records.not_closed or records.load_not_closed(tx)
        for model in models:  # both `model` and `estimate.model`: either may be the call's
            for key in model_keys(model):
                if key in not_closed:
                    self._model_kill_switch(tx, key, now, agent=scope.agent() or scope.path)
        for key, kind in governing(scope.path) if not_closed else ():
            if key not in not_closed:
                continue
            b = records.entries.get(key) or records.entry(tx, key, kind)
            check = b.check(now, amount_micros)
            records.apply(tx, b, kind, check.transitions, now)
            if check.admit:
                continue
            reason = check.reason
            if b.state == HALF_OPEN:  # the trial is full: did one of its calls die?
                abandoned = self._abandoned(tx, b, kind, now)
                if abandoned is not None:
                    reason = abandoned.reason
            retry_after = b.retry_after(now)
            if b.state == HALF_OPEN:
                retry_after = self._trial_retry_after(tx, b, now, retry_after)
            raise BreakerOpen(scope=key, state=b.state, reason=reason, retry_after=retry_after)
        if task_id is not None:
            agent = governing(scope.path)[2][0]
            limit = self.limits.max_attempts(agent)
            check_attempts(tx, records, agent=agent, task_id=task_id, limit=limit, now=now)

    def _model_kill_switch(self, tx: Tx, key: str, now: float, *, agent: str) -> None:
        b = self._records.entries.get(key) or self._records.entry(tx, key, "model")
        if b.state == FORCED_OPEN:
            # kept (a refusal keeps what it records), added up as the batch commits
            tx.add(UPSERT_MODEL_REFUSED, (key, b.since, agent), (1,))
            raise BreakerOpen(
                scope=key, state=b.state, reason=b.reason, retry_after=b.retry_after(now)
            )

    def after_reserve(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        """Count a trial call where a breaker is half open; count the task's attempt."""
        if not self.enabled:
            return
        for b, kind in self._half_open(tx, reservation.scope):
            b.admitted(reservation.id, reservation.held_micros)
            self._records.apply(tx, b, kind, (), now)
        if reservation.task_id is not None:
            agent = governing(reservation.scope)[2][0]
            count_attempt(tx, agent=agent, task_id=reservation.task_id, now=now)

    def after_settle(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        """Learn the outcome (failures, trials) and the charge (spend rate)."""
        if not self.enabled:
            return
        res = reservation
        failed = res.outcome != "success"
        # what the failed call said, for the breaker's reason (the person paged sees why)
        detail = last_error(res.error) if failed and res.error else ""
        keys = governing(res.scope)
        agent = keys[2][0]
        records = self._records
        not_closed = records.not_closed or records.load_not_closed(tx)
        if res.charged_micros > 0 and not_closed:
            self._spent_while_open(tx, res, keys, not_closed, now)
        # namespaces and users learn only from their trials; the agent and the model, always
        learners = [(key, kind) for key, kind in keys if kind == "agent" or key in not_closed]
        on = model_key(res.model) if res.model else None
        if on is not None:
            learners.append((on, "model"))
        took = now - res.created_at
        for key, kind in learners:
            b = records.entries.get(key) or records.entry(tx, key, kind)
            slow = b.config.slow_after
            is_slow = not failed and 0 < slow <= took  # (a failed call says its own error)
            t = b.record(
                now,
                failed=failed or is_slow,
                source=agent,
                res_id=res.id,
                charged_micros=res.charged_micros,
                detail=slow_detail(took, slow, self._failures_key(b, kind)) if is_slow else detail,
                model=on if kind == "agent" else None,  # what an outage's agents follow
            )
            if t is not None or b.dirty:
                records.apply(tx, b, kind, (t,), now)
        if res.charged_micros > 0:
            self._spend.observe(tx, records, res, keys, now)

    def _failures_key(self, b: Breaker, kind: str) -> str:
        """The policy section ``b``'s ``slow_after`` comes from, for its reason: a scope
        prefix's only when it sets another value than the top level's (one left out is
        the top level's: recheck23 L2)."""
        if kind == "model":
            return "breakers.model_failures"
        source = b.config.limits_from
        if source == "breakers" or b.config.slow_after == self.limits.top(kind).slow_after:
            return "breakers.failures"
        return f"breakers.scopes.{source}.failures"

    def _spent_while_open(
        self,
        tx: Tx,
        res: Reservation,
        keys: tuple[tuple[str, str], ...],
        not_closed: set[str],
        now: float,
    ) -> None:
        """A charge that lands on a breaker already refusing (granted before it opened):
        said to the breaker's alert, which shows what the trip did not stop."""
        for key, kind in keys:
            if key not in not_closed:
                continue
            b = self._records.entries.get(key) or self._records.entry(tx, key, kind)
            if b.state in REFUSING:
                tx.emit(
                    SpentWhileOpen(
                        at=now, scope=key, reservation_id=res.id, charged_micros=res.charged_micros
                    )
                )

    def record_outcome(
        self,
        tx: Tx,
        agent: str,
        *,
        failed: bool,
        now: float,
        detail: str = "",
        started: float | None = None,
    ) -> None:
        """Learn an outcome that is not a reservation's (e.g. a scheduled job's run that
        began at ``started``).

        It moves a closed breaker's failure window like a settle does, and may trip it;
        during a trial it may be a trial call (:meth:`Breaker.trial_run`).
        """
        if not self.enabled:
            return
        key, kind = parse_key(agent)
        if kind != "agent":
            raise InvalidInput("scope", f"{agent!r} is not an agent scope")
        b = self._records.entries.get(key) or self._records.entry(tx, key, kind)
        if b.state == HALF_OPEN:
            t = b.trial_run(
                now, failed=failed, started=now if started is None else started, detail=detail
            )
        elif b.state != CLOSED:
            return
        else:
            t = b.record(now, failed=failed, source=key, detail=detail if failed else "")
        if t is not None or b.dirty:
            self._records.apply(tx, b, kind, (t,), now)

    def after_release(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        """A released trial call frees its slot (the call was not made)."""
        if not self.enabled:
            return
        for b, kind in self._half_open(tx, reservation.scope):
            b.released(reservation.id)
            self._records.apply(tx, b, kind, (), now)

    def _half_open(self, tx: Tx, scope: str) -> list[tuple[Breaker, str]]:
        """The breakers governing ``scope`` that are running a trial."""
        not_closed = self._records.not_closed or self._records.load_not_closed(tx)
        if not not_closed:
            return []
        found = []
        for key, kind in governing(scope):
            if key in not_closed:
                b = self._records.entries.get(key) or self._records.entry(tx, key, kind)
                if b.state == HALF_OPEN:
                    found.append((b, kind))
        return found

    def _trial_retry_after(self, tx: Tx, b: Breaker, now: float, hint: int) -> int:
        """When a refused caller should look again while a full trial runs: the ``hint``
        (its calls may report any time), or sooner when one of their holds runs out first:
        the trial has failed then and the breaker is open (audit26 A3 L1)."""
        row = tx.one(
            "SELECT MIN(expires_at) FROM reservations WHERE state = 'held'"
            " AND id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(b.trial_holds)),),
        )
        if row is None or row[0] is None:
            return hint
        return max(1, min(hint, math.ceil(float(row[0]) - now)))

    def _abandoned(self, tx: Tx, b: Breaker, kind: str, now: float) -> Transition | None:
        """Re-open when a trial call's hold expired without a settle."""
        if b.state != HALF_OPEN or not b.trial_holds:
            return None
        row = tx.one(
            "SELECT id FROM reservations WHERE state = 'expired'"
            " AND id IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT 1",
            (json.dumps(list(b.trial_holds)),),
        )
        if row is None:
            return None
        t = b.abandoned(now, row[0])
        self._records.apply(tx, b, kind, (t,), now)
        return t


def slow_detail(took: float, slow_after: int, section: str) -> str:
    """Why a call that succeeded counts as failed: how long it took against the limit.

    >>> slow_detail(190.7, 120, "breakers.failures")
    'the call took 3m10s (breakers.failures.slow_after is 2m)'
    """
    limit = format_seconds(slow_after)
    return f"the call took {format_seconds(int(took))} ({section}.slow_after is {limit})"
