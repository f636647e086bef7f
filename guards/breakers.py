"""The breaker engine: the ledger's gate over the pure machines of :mod:`guards.breaker`.

Which breakers exist:

- one per **agent** (``acme/alice/rss-bot``): trips on failures, on spend rate and on
  repeated attempts past a task's limit; it governs the agent's conversations too;
- one per **namespace** (``acme``): trips on ``breakers.namespace_spend_rate`` when set;
- users and namespaces can be forced open by an operator (a kill switch for a subtree);
- one per **model** (``model:claude-haiku-4-5``): trips when a model fails for
  several agents (``breakers.model_failures``, ``model_min_agents``).

A model breaker that tripped on its own does **not** refuse reservations: the routing
engine falls back to another model when :meth:`Breakers.is_model_open` says so, and
refusing an agent that pinned the model would strand it with nothing to fall back
to. A model breaker an operator **forced open** (the kill switch during a provider
incident) refuses every reservation naming that model (``model`` or
``estimate.model``). Model breakers are listed, alerted on and audited like the
others, and a half-open trial counts the model's next settles.

Every change is a row: the ``breakers`` row holds the state (an open breaker's
cool-down ends at ``opened_at + cooldown_seconds``, so a restart loses no timer),
``breaker_transitions`` one row per transition, events go out with ``tx.emit`` in
the same transaction, and operator actions are audited.

Speed: :meth:`Breakers.before_reserve` runs on every reservation, on the writer
thread. Breakers and spend windows are kept in memory on that thread, so a closed
breaker costs no SQL. A change is made in memory and written to its row in the same
step, so later writes of the same batch see it; when the store rolls writes back
(:meth:`Breakers.forget`, installed by :meth:`Breakers.attach` on
``store.on_rollback``) the memory is dropped and reloads from rows: breakers from
``breakers``, spend windows from recent settled reservations.

This module holds the gate, the timers and the operator actions; its parts are
:mod:`guards.breaker_kinds` (which breakers govern a scope, each kind's config),
:mod:`guards.breaker_records` (memory and rows, transitions and their events),
:mod:`guards.breaker_spend` (spend-rate windows), :mod:`guards.breaker_attempts`
(task attempt caps) and :mod:`guards.breaker_view` (what operators see).

Example:
    >>> # ledger.gates.append(breakers); breakers.attach(store)
    >>> # await store.write(breakers.tick)      # every few seconds
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable

from guards.breaker import CLOSED, FORCED_OPEN, HALF_OPEN, REFUSING, Breaker, Transition
from guards.breaker_attempts import check_attempts, count_attempt
from guards.breaker_kinds import MODEL_PREFIX as MODEL_PREFIX
from guards.breaker_kinds import configs_for, governing, model_key, model_keys, parse_key
from guards.breaker_records import BreakerRecords
from guards.breaker_spend import SpendRates
from guards.breaker_view import BreakerRow, listed, row_of
from guards.config import Policy
from guards.errors import BreakerOpen, Conflict, InvalidInput
from guards.events import SpentWhileOpen, TrialAnswered
from guards.ledger import Reservation
from guards.scopes import Scope
from guards.store import Store, Tx

__all__ = ["BreakerRow", "Breakers", "parse_key"]


LAST_ERROR_CHARS = 200  # of a failed call's error, in the reason of the breaker it trips


def _said(error: str) -> str:
    """A settle's error on one line, clipped: what the breaker's reason quotes."""
    text = " ".join(error.split())
    return text if len(text) <= LAST_ERROR_CHARS else text[: LAST_ERROR_CHARS - 1] + "…"


class Breakers:
    """The breakers of one process; implements the ledger's ``Gate`` protocol."""

    def __init__(self, *, policy: Policy) -> None:
        self.policy = policy
        self.enabled = policy.breakers.enabled
        self.configs = configs_for(policy)
        self._spend = SpendRates(
            {"agent": policy.breakers.spend_rate, "namespace": policy.breakers.namespace_spend_rate}
        )
        self._records = BreakerRecords(self.configs, on_close=self._spend.clear)

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
                    self._model_kill_switch(tx, key, now)
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
            raise BreakerOpen(
                scope=key, state=b.state, reason=reason, retry_after=b.retry_after(now)
            )
        if task_id is not None:
            limit = self.policy.breakers.max_attempts_per_task
            agent = governing(scope.path)[2][0]
            check_attempts(tx, records, agent=agent, task_id=task_id, limit=limit, now=now)

    def _model_kill_switch(self, tx: Tx, key: str, now: float) -> None:
        b = self._records.entries.get(key) or self._records.entry(tx, key, "model")
        if b.state == FORCED_OPEN:
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
        detail = f"last error: {_said(res.error)}" if failed and res.error else ""
        keys = governing(res.scope)
        agent = keys[2][0]
        records = self._records
        not_closed = records.not_closed or records.load_not_closed(tx)
        if res.charged_micros > 0 and not_closed:
            self._spent_while_open(tx, res, keys, not_closed, now)
        # namespaces and users learn only from their trials; the agent and the model, always
        learners = [(key, kind) for key, kind in keys if kind == "agent" or key in not_closed]
        if res.model:
            learners.append((model_key(res.model), "model"))
        for key, kind in learners:
            b = records.entries.get(key) or records.entry(tx, key, kind)
            t = b.record(
                now,
                failed=failed,
                source=agent,
                res_id=res.id,
                charged_micros=res.charged_micros,
                detail=detail,
            )
            if t is not None or b.dirty:
                records.apply(tx, b, kind, (t,), now)
        if res.charged_micros > 0:
            self._spend.observe(tx, records, res, keys, now)

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

    def _half_open(self, tx: Tx, scope: str) -> builtins.list[tuple[Breaker, str]]:
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

    # -- timers -------------------------------------------------------------------------

    def tick(self, tx: Tx) -> int:
        """Move breakers whose cool-down is over on; re-open trials whose calls died.

        Derived from rows (``opened_at + cooldown_seconds``), so it is right after a
        restart; :meth:`before_reserve` applies the same rule lazily. Returns the
        number of transitions.
        """
        if not self.enabled:
            return 0
        now = tx.clock.now()
        moved = 0
        for key, kind in tx.all(
            "SELECT key, kind FROM breakers WHERE state = 'open'"
            " AND opened_at + cooldown_seconds <= ? UNION ALL"  # and the waiting ones:
            " SELECT key, kind FROM breakers WHERE state = 'half_open_pending'",  # (now auto?)
            (now,),
        ):
            b = self._records.entry(tx, key, kind)
            t = b.expire(now)
            if t is not None:
                self._records.apply(tx, b, kind, (t,), now)
                moved += 1
        for key, kind in tx.all("SELECT key, kind FROM breakers WHERE state = 'half_open'"):
            if self._abandoned(tx, self._records.entry(tx, key, kind), kind, now) is not None:
                moved += 1
        return moved

    async def sweep(self, store: Store) -> int:
        """Run :meth:`tick` in its own write (the scheduler's job)."""
        return await store.write(self.tick)

    # -- routing ------------------------------------------------------------------------

    def is_model_open(self, tx: Tx, model: str) -> bool:
        """True while the model's breaker refuses it (open, waiting, forced), or, for a
        dated snapshot, its model's does: route elsewhere."""
        if not self.enabled:
            return False
        return any(self._model_refuses(tx, key) for key in model_keys(model))

    def _model_refuses(self, tx: Tx, key: str) -> bool:
        b = self._records.entries.get(key) or self._records.entry(tx, key, "model")
        if b.state == CLOSED:
            return False
        now = tx.clock.now()
        self._records.apply(tx, b, "model", (b.expire(now),), now)
        return b.state in REFUSING

    # -- operators ----------------------------------------------------------------------

    def _operate(
        self,
        tx: Tx,
        scope: str,
        actor: str,
        *,
        action: str,
        move: Callable[[Breaker, float], Transition],
        decision: str | None = None,
    ) -> BreakerRow:
        """The shape of every operator action: move one breaker, store it, audit it.

        ``move`` makes the transition (the machine refuses one that does not apply with
        :class:`~guards.errors.Conflict`); the audit row is ``breaker.<action>``, and
        ``decision`` (approved, kept open) answers a trial with a ``TrialAnswered`` event.
        """
        if not self.enabled:
            raise Conflict("breakers are disabled in the policy (breakers.enabled: false)")
        if not isinstance(actor, str) or not actor.strip():
            raise InvalidInput("actor", "an operation on a breaker needs the actor who made it")
        key, kind = parse_key(scope)
        now = tx.clock.now()
        b = self._records.entry(tx, key, kind)
        before = b.state
        t = move(b, now)
        self._records.apply(tx, b, kind, (t,), now)
        tx.audit(
            actor=t.actor,
            action=f"breaker.{action}",
            target=b.key,
            before=before,
            after=b.state,
            detail=t.reason,
        )
        if decision is not None:
            tx.emit(TrialAnswered(at=now, scope=b.key, decision=decision, actor=actor))
        return row_of(b, kind, now)

    def approve(
        self,
        tx: Tx,
        scope: str,
        actor: str,
        *,
        trial_calls: int | None = None,
        trial_budget_micros: int | None = None,
    ) -> BreakerRow:
        """Approve a half-open trial (optionally with other trial_calls / trial_budget)."""
        if trial_calls is not None and not 1 <= trial_calls <= 1000:
            raise InvalidInput("trial_calls", "trial_calls is between 1 and 1000")
        if trial_budget_micros is not None and not 1 <= trial_budget_micros <= 10**15:
            raise InvalidInput("trial_budget", "the trial budget is more than $0")
        return self._operate(
            tx,
            scope,
            actor,
            action="approve",
            decision="approved",
            move=lambda b, now: b.approve(
                now, actor=actor, trial_calls=trial_calls, trial_budget_micros=trial_budget_micros
            ),
        )

    def keep_open(self, tx: Tx, scope: str, actor: str) -> BreakerRow:
        """Refuse the trial: open again for the next (doubled) cool-down."""
        return self._operate(
            tx,
            scope,
            actor,
            action="keep_open",
            decision="kept open",
            move=lambda b, now: b.keep_open(now, actor=actor),
        )

    def force_open(self, tx: Tx, scope: str, actor: str, reason: str = "") -> BreakerRow:
        """The kill switch: refuse every reservation under ``scope`` until approved or closed."""
        return self._operate(
            tx,
            scope,
            actor,
            action="force_open",
            move=lambda b, now: b.force_open(now, actor=actor, reason=_clip(reason.strip(), 500)),
        )

    def force_close(self, tx: Tx, scope: str, actor: str) -> BreakerRow:
        """Close now; the failures and the cool-down history are forgotten."""
        return self._operate(
            tx,
            scope,
            actor,
            action="force_close",
            move=lambda b, now: b.force_close(now, actor=actor),
        )

    # -- reading ------------------------------------------------------------------------

    def get(self, tx: Tx, scope: str) -> BreakerRow:
        """One breaker (closed when it never tripped)."""
        key, kind = parse_key(scope)
        b = self._records.entries.get(key) or self._records.entry(tx, key, kind)
        return row_of(b, kind, tx.clock.now())

    def list(
        self, tx: Tx, include_closed: bool = False, *, within: str | None = None
    ) -> builtins.list[BreakerRow]:
        """Breakers that are not closed (every known one with ``include_closed``).

        ``within``: only breakers inside that subtree, the namespace and user breakers
        above it (they refuse its reservations too), and the model breakers (shared by
        every tenant; they steer routing and a forced-open one refuses its model).
        """
        self.tick(tx)
        now = tx.clock.now()
        entries, entry = self._records.entries, self._records.entry
        return [
            row_of(entries.get(key) or entry(tx, key, kind), kind, now)
            for key, kind in listed(tx, include_closed=include_closed, within=within)
        ]


def _clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, ending in "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
