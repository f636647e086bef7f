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

This module holds the timers and the operator actions, over the gate of
:mod:`guards.breaker_gate` (what reservations, settles and releases do); its parts are
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
from collections.abc import Callable
from dataclasses import replace

from guards.breaker import CLOSED, HALF_OPEN, REFUSING, Breaker, Transition
from guards.breaker_gate import BreakerGate
from guards.breaker_kinds import MODEL_PREFIX as MODEL_PREFIX
from guards.breaker_kinds import model_keys, parse_key
from guards.breaker_view import BreakerRow, listed, row_of
from guards.errors import Conflict, InvalidInput
from guards.events import TrialAnswered
from guards.store import Store, Tx
from guards.words import clip_chars

__all__ = ["BreakerRow", "Breakers", "parse_key"]


class Breakers(BreakerGate):
    """The breakers of one process; implements the ledger's ``Gate`` protocol."""

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
            size = _own_size(b) if decision == "approved" else {}
            tx.emit(TrialAnswered(at=now, scope=b.key, decision=decision, actor=actor, **size))
        return self._row(tx, b, kind, now)

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
            move=lambda b, now: b.force_open(
                now, actor=actor, reason=clip_chars(reason.strip(), 500)
            ),
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
        return self._row(tx, b, kind, tx.clock.now())

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
            self._row(tx, entries.get(key) or entry(tx, key, kind), kind, now)
            for key, kind in listed(tx, include_closed=include_closed, within=within)
        ]

    def _row(self, tx: Tx, b: Breaker, kind: str, now: float) -> BreakerRow:
        """``b``'s row; a full trial's ``retry_after`` as its 503 gives it (sooner when a
        trial call's hold runs out first), so a list and a refusal agree. A trial whose
        budget is all held is not shortened so: its next call fails it at once."""
        row = row_of(b, kind, now)
        if b.state == HALF_OPEN and b.trial_full and row.retry_after:
            return replace(row, retry_after=self._trial_retry_after(tx, b, now, row.retry_after))
        return row


def _own_size(b: Breaker) -> dict[str, int]:
    """The size of the trial ``b`` runs when the approver gave it one other than its
    policy's (``half_open.trial_calls`` / ``trial_budget``, or its prefix's): its alert
    says it ("trial of 1 call within $0.10 approved by …"); nothing for the policy's."""
    size = {"trial_calls": b.trial_calls, "trial_budget_micros": b.trial_budget_micros}
    cfg = b.config
    if (b.trial_calls, b.trial_budget_micros) == (cfg.trial_calls, cfg.trial_budget_micros):
        return {}
    return size
