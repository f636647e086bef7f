"""The breaker engine: the ledger's gate over the pure machines of :mod:`guards.breaker`.

Which breakers exist:

- one per **agent** (``acme/alice/rss-bot``): trips on failures, on spend rate and on
  repeated attempts past a task's limit; it governs the agent's conversations too;
- one per **namespace** (``acme``): trips on ``breakers.namespace_spend_rate`` when set;
- users and namespaces can be forced open by an operator (a kill switch for a subtree);
- one per **model** (``model:claude-haiku-4-5``): trips when a model fails for
  several agents (``breakers.model_failures``, ``model_min_agents``).

A model breaker does **not** refuse reservations. The ledger's gate is not told the
model before it reserves, and the routing engine falls back to another model when
:meth:`Breakers.is_model_open` says so; refusing an agent that pinned the model would
strand it with nothing to fall back to. It is listed, alerted on and audited like
the others, and its half-open trial counts the model's next settles.

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

Example:
    >>> # ledger.gates.append(breakers); breakers.attach(store)
    >>> # await store.write(breakers.tick)      # every few seconds
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from typing import Any

from guards.breaker import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    HALF_OPEN_PENDING,
    OPEN,
    REFUSING,
    Breaker,
    BreakerConfig,
    FailureWindow,
    SpendWindow,
    Transition,
)
from guards.config import Policy, SpendRate
from guards.errors import AttemptsExhausted, BreakerOpen, Conflict, InvalidInput
from guards.events import AttemptsExhausted as AttemptsExhaustedEvent
from guards.events import BreakerClosed, BreakerOpened, HalfOpenRequested, TrialAnswered
from guards.ledger import Reservation
from guards.scopes import LEVELS, Scope, ScopeError
from guards.store import Store, Tx

__all__ = ["BreakerRow", "Breakers", "parse_key"]

MODEL_PREFIX = "model:"
_COLUMNS = (
    "state, reason, trip, origin, figures, since, opened_at, cooldown_seconds, reopens,"
    " trial_calls, trial_budget_micros, trial_holds, trial_charged_micros, trial_succeeded,"
    " recent, consecutive, spend_reset_at"
)
_UPSERT = (
    f"INSERT INTO breakers (key, kind, {_COLUMNS}, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET state = excluded.state, reason = excluded.reason,"
    " trip = excluded.trip, origin = excluded.origin, figures = excluded.figures,"
    " since = excluded.since, opened_at = excluded.opened_at,"
    " cooldown_seconds = excluded.cooldown_seconds, reopens = excluded.reopens,"
    " trial_calls = excluded.trial_calls, trial_budget_micros = excluded.trial_budget_micros,"
    " trial_holds = excluded.trial_holds, trial_charged_micros = excluded.trial_charged_micros,"
    " trial_succeeded = excluded.trial_succeeded, recent = excluded.recent,"
    " consecutive = excluded.consecutive, spend_reset_at = excluded.spend_reset_at,"
    " updated_at = excluded.updated_at"
)


# A task's attempts are counted for a week after its last attempt.
ATTEMPTS_RETENTION_SECONDS = 7 * 86400


def parse_key(text: object) -> tuple[str, str]:
    """An operator's scope text to ``(key, kind)``: a conversation means its agent.

    >>> parse_key("acme/alice/bot/c42")
    ('acme/alice/bot', 'agent')
    >>> parse_key("model:claude-haiku-4-5")
    ('model:claude-haiku-4-5', 'model')
    """
    if isinstance(text, str) and text.startswith(MODEL_PREFIX):
        name = text[len(MODEL_PREFIX) :]
        if not name or len(name) > 200 or any(c.isspace() for c in name):
            raise InvalidInput("scope", f"{text[:80]!r}: write a model breaker as model:<name>")
        return text, "model"
    try:
        scope = Scope.parse(text)
    except ScopeError as exc:
        raise InvalidInput("scope", f"scope: {exc} (or model:<name>)") from None
    key = scope.agent() or scope.path
    return key, LEVELS[key.count("/")]


_GOVERNING: dict[str, tuple[tuple[str, str], ...]] = {}


def _governing(path: str) -> tuple[tuple[str, str], ...]:
    """The breakers that govern a reservation's scope: namespace, user, agent."""
    keys = _GOVERNING.get(path)
    if keys is None:
        parts = path.split("/")
        keys = (
            (parts[0], "namespace"),
            (f"{parts[0]}/{parts[1]}", "user"),
            (f"{parts[0]}/{parts[1]}/{parts[2]}", "agent"),
        )
        if len(_GOVERNING) >= 50_000:  # conversations come and go: keep the cache bounded
            _GOVERNING.clear()
        _GOVERNING[path] = keys
    return keys


@dataclass(frozen=True, slots=True)
class BreakerRow:
    """One breaker as ``GET /v1/breakers`` and ``/agent breakers`` show it."""

    scope: str
    kind: str
    state: str
    reason: str
    trip: str | None
    since: float | None
    retry_after: int | None
    cooldown_ends_at: float | None
    cooldown_seconds: int
    reopens: int
    figures: dict[str, Any]
    trial: dict[str, int] | None
    consecutive_failures: int
    recent_failures: int
    recent_calls: int

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "kind": self.kind,
            "state": self.state,
            "reason": self.reason,
            "trip": self.trip,
            "since": self.since,
            "retry_after": self.retry_after,
            "cooldown_ends_at": self.cooldown_ends_at,
            "cooldown_seconds": self.cooldown_seconds,
            "reopens": self.reopens,
            "figures": self.figures,
            "trial": self.trial,
            "failures": {
                "consecutive": self.consecutive_failures,
                "recent": self.recent_failures,
                "calls": self.recent_calls,
            },
        }


def _configs(policy: Policy) -> dict[str, BreakerConfig]:
    cfg = policy.breakers
    common: dict[str, Any] = {
        "cooldown_seconds": cfg.cooldown_seconds,
        "max_cooldown_seconds": cfg.max_cooldown_seconds,
        "trial_calls": cfg.half_open.trial_calls,
        "trial_budget_micros": cfg.half_open.trial_budget,
    }

    def spend(rate: SpendRate | None) -> dict[str, Any]:
        if rate is None:
            return {}
        return {"spend_max_micros": rate.max, "spend_per_seconds": rate.per_seconds}

    failures_mode = cfg.failures_half_open_mode or cfg.half_open.mode
    f, m = cfg.failures, cfg.model_failures
    return {
        "agent": BreakerConfig(
            consecutive=f.consecutive,
            rate=f.rate,
            window_calls=f.window_calls,
            min_calls=f.min_calls,
            modes={"spend": cfg.half_open.mode, "failures": failures_mode},
            **spend(cfg.spend_rate),
            **common,
        ),
        "namespace": BreakerConfig(
            modes={"spend": cfg.half_open.mode}, **spend(cfg.namespace_spend_rate), **common
        ),
        "user": BreakerConfig(**common),
        "model": BreakerConfig(
            consecutive=m.consecutive,
            rate=m.rate,
            window_calls=m.window_calls,
            min_calls=m.min_calls,
            min_sources=cfg.model_min_agents,
            modes={"failures": cfg.model_half_open_mode},
            trials_by_id=False,
            **common,
        ),
    }


class Breakers:
    """The breakers of one process; implements the ledger's ``Gate`` protocol."""

    def __init__(self, *, policy: Policy) -> None:
        self.policy = policy
        self.enabled = policy.breakers.enabled
        self.configs = _configs(policy)
        self._entries: dict[str, Breaker] = {}
        self._not_closed: set[str] | None = None  # every key not closed, once loaded
        self._spend: dict[str, SpendWindow] | None = None
        self._rates: dict[str, SpendRate | None] = {
            "agent": policy.breakers.spend_rate,
            "namespace": policy.breakers.namespace_spend_rate,
        }

    # -- memory that follows the database -----------------------------------------------

    def attach(self, store: Store) -> None:
        """Forget the in-memory state whenever the store rolls writes back."""
        store.on_rollback.append(self.forget)

    def forget(self) -> None:
        """Drop every breaker and spend window from memory; they reload from rows."""
        self._entries.clear()
        self._not_closed = None
        self._spend = None

    def _load_not_closed(self, tx: Tx) -> set[str]:
        if self._not_closed is None:
            rows = tx.all("SELECT key FROM breakers WHERE state != 'closed'")
            self._not_closed = {key for (key,) in rows}
        return self._not_closed

    def _entry(self, tx: Tx, key: str, kind: str) -> Breaker:
        breaker = self._entries.get(key)
        if breaker is None:
            row = tx.one(f"SELECT {_COLUMNS} FROM breakers WHERE key = ?", (key,))
            breaker = self._entries[key] = self._from_row(key, kind, row)
        return breaker

    def _from_row(self, key: str, kind: str, row: Any) -> Breaker:
        config = self.configs[kind]
        if row is None:
            return Breaker(key, config)
        return Breaker(
            key,
            config,
            state=row[0],
            reason=row[1],
            trip=row[2],
            origin=row[3],
            figures=json.loads(row[4]),
            since=row[5],
            opened_at=row[6],
            cooldown_seconds=row[7],
            reopens=row[8],
            trial_calls=row[9],
            trial_budget_micros=row[10],
            trial_holds=json.loads(row[11]),
            trial_charged_micros=row[12],
            trial_succeeded=row[13],
            window=FailureWindow.decode(max(config.window_calls, 1), row[14], row[15]),
            spend_reset_at=row[16],
        )

    def _save(self, tx: Tx, b: Breaker, kind: str, now: float) -> None:
        tx.execute(
            _UPSERT,
            (
                b.key,
                kind,
                b.state,
                b.reason,
                b.trip,
                b.origin,
                json.dumps(b.figures),
                b.since,
                b.opened_at,
                b.cooldown_seconds,
                b.reopens,
                b.trial_calls,
                b.trial_budget_micros,
                json.dumps(b.trial_holds),
                b.trial_charged_micros,
                b.trial_succeeded,
                b.window.encode(),
                b.window.consecutive,
                b.spend_reset_at,
                now,
            ),
        )
        b.dirty = False

    def _apply(
        self, tx: Tx, b: Breaker, kind: str, transitions: tuple[Transition | None, ...], now: float
    ) -> None:
        """Store the breaker if it changed, one row per transition, and their events."""
        for t in transitions:
            if t is None:
                continue
            tx.execute(
                "INSERT INTO breaker_transitions"
                " (scope, from_state, to_state, reason, trip, figures, actor, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    t.key,
                    t.from_state,
                    t.to_state,
                    t.reason,
                    t.trip,
                    json.dumps(dict(t.figures)),
                    t.actor,
                    t.at,
                ),
            )
            if t.to_state == CLOSED and self._spend is not None and t.key in self._spend:
                self._spend[t.key].clear()
            if t.announce:
                self._announce(tx, b, t)
        if b.dirty:
            self._save(tx, b, kind, now)
        not_closed = self._load_not_closed(tx)
        if b.state == CLOSED:
            not_closed.discard(b.key)
        else:
            not_closed.add(b.key)

    def _announce(self, tx: Tx, b: Breaker, t: Transition) -> None:
        actor = None if t.actor == "breaker" else t.actor
        if t.to_state in (OPEN, FORCED_OPEN) and t.trip is not None:
            tx.emit(
                BreakerOpened(
                    at=t.at,
                    scope=t.key,
                    trip=t.trip,
                    reason=t.reason,
                    figures=dict(t.figures),
                    cooldown_seconds=t.cooldown_seconds,
                    actor=actor,
                )
            )
        elif t.to_state == HALF_OPEN_PENDING:
            tx.emit(
                HalfOpenRequested(
                    at=t.at,
                    scope=t.key,
                    reason=t.reason,
                    trial_calls=b.config.trial_calls,
                    trial_budget_micros=b.config.trial_budget_micros,
                )
            )
        elif t.to_state == CLOSED:
            tx.emit(BreakerClosed(at=t.at, scope=t.key, reason=t.reason, actor=actor))

    # -- the gate -----------------------------------------------------------------------

    def before_reserve(
        self, tx: Tx, *, scope: Scope, task_id: str | None, amount_micros: int, now: float
    ) -> None:
        """Refuse (503) while a governing breaker is open, or (429) an attempt past the limit."""
        if not self.enabled:
            return
        not_closed = self._not_closed or self._load_not_closed(tx)
        for key, kind in _governing(scope.path) if not_closed else ():
            if key not in not_closed:
                continue
            b = self._entries.get(key) or self._entry(tx, key, kind)
            check = b.check(now, amount_micros)
            self._apply(tx, b, kind, check.transitions, now)
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
            self._check_attempts(tx, scope, task_id, now)

    def _check_attempts(self, tx: Tx, scope: Scope, task_id: str, now: float) -> None:
        limit = self.policy.breakers.max_attempts_per_task
        agent = _governing(scope.path)[2][0]
        row = tx.one(
            "SELECT attempts, refused FROM breaker_attempts WHERE agent = ? AND task_id = ?",
            (agent, task_id),
        )
        if row is None or row[0] < limit:
            return
        attempts, refused = row[0], row[1] + 1
        tx.execute(
            "UPDATE breaker_attempts SET refused = ?, last_at = ? WHERE agent = ? AND task_id = ?",
            (refused, now, agent, task_id),
        )
        if refused == 1:
            tx.emit(
                AttemptsExhaustedEvent(
                    at=now, scope=agent, task_id=task_id, attempts=attempts, limit=limit
                )
            )
        # Asking again past the limit is a failure signal: an agent looping on a task.
        b = self._entry(tx, agent, "agent")
        t = b.record(
            now,
            failed=True,
            source=agent,
            signal="attempts",
            detail=f"task {task_id} asked past its {limit} attempts",
        )
        self._apply(tx, b, "agent", (t,), now)
        raise AttemptsExhausted(scope=agent, task_id=task_id, attempts=attempts, limit=limit)

    def after_reserve(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        """Count a trial call where a breaker is half open; count the task's attempt."""
        if not self.enabled:
            return
        for b, kind in self._half_open(tx, reservation.scope):
            b.admitted(reservation.id, reservation.held_micros)
            self._apply(tx, b, kind, (), now)
        if reservation.task_id is not None:
            tx.execute(
                "INSERT INTO breaker_attempts (agent, task_id, attempts, first_at, last_at)"
                " VALUES (?, ?, 1, ?, ?) ON CONFLICT (agent, task_id) DO UPDATE SET"
                " attempts = attempts + 1, last_at = excluded.last_at",
                (_governing(reservation.scope)[2][0], reservation.task_id, now, now),
            )

    def after_settle(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        """Learn the outcome (failures, trials) and the charge (spend rate)."""
        if not self.enabled:
            return
        res = reservation
        failed = res.outcome != "success"
        keys = _governing(res.scope)
        agent = keys[2][0]
        not_closed = self._not_closed or self._load_not_closed(tx)
        for key, kind in keys:
            if kind != "agent" and key not in not_closed:
                continue  # namespaces and users learn only from their trials
            b = self._entries.get(key) or self._entry(tx, key, kind)
            t = b.record(
                now, failed=failed, source=agent, res_id=res.id, charged_micros=res.charged_micros
            )
            if t is not None or b.dirty:
                self._apply(tx, b, kind, (t,), now)
        if res.model:
            key = MODEL_PREFIX + res.model
            b = self._entries.get(key) or self._entry(tx, key, "model")
            t = b.record(
                now, failed=failed, source=agent, res_id=res.id, charged_micros=res.charged_micros
            )
            if t is not None or b.dirty:
                self._apply(tx, b, "model", (t,), now)
        if res.charged_micros > 0:
            self._observe_spend(tx, res, keys, now)

    def record_outcome(
        self, tx: Tx, agent: str, *, failed: bool, now: float, detail: str = ""
    ) -> None:
        """Learn an outcome that is not a reservation's (e.g. a scheduled job's run).

        It moves the agent's failure window like a settle does and may trip the
        breaker; only a closed breaker learns from it (trials are decided by calls).
        """
        if not self.enabled:
            return
        key, kind = parse_key(agent)
        if kind != "agent":
            raise InvalidInput("scope", f"{agent!r} is not an agent scope")
        b = self._entries.get(key) or self._entry(tx, key, kind)
        if b.state != CLOSED:
            return
        t = b.record(now, failed=failed, source=key, detail=detail if failed else "")
        if t is not None or b.dirty:
            self._apply(tx, b, kind, (t,), now)

    def _observe_spend(
        self, tx: Tx, res: Reservation, keys: tuple[tuple[str, str], ...], now: float
    ) -> None:
        windows: dict[str, SpendWindow] | None = None
        for key, kind in (keys[2], keys[0]):
            rate = self._rates[kind]
            if rate is None:
                continue
            if windows is None:
                windows = self._spend_windows(tx, now, exclude=res.id)
            b = self._entries.get(key) or self._entry(tx, key, kind)
            if b.spend_reset_at is not None and now <= b.spend_reset_at:
                continue
            window = windows.get(key)
            if window is None:
                window = windows[key] = SpendWindow(rate.per_seconds)
            window.add(now, res.charged_micros)
            t = b.on_spend(now, window.total_at(now))
            if t is not None:
                self._apply(tx, b, kind, (t,), now)

    def _spend_windows(self, tx: Tx, now: float, *, exclude: str) -> dict[str, SpendWindow]:
        """The in-memory windows, rebuilt from recent settled reservations on first use."""
        if self._spend is not None:
            return self._spend
        rates = [(i, r) for i, r in ((2, self._rates["agent"]), (0, self._rates["namespace"])) if r]
        horizon = now - max(r.per_seconds for _, r in rates)
        resets = dict(
            tx.all("SELECT key, spend_reset_at FROM breakers WHERE spend_reset_at > ?", (horizon,))
        )
        windows: dict[str, SpendWindow] = {}
        for scope, at, micros in tx.all(
            "SELECT scope, finished_at, charged_micros FROM reservations"
            " WHERE state = 'settled' AND finished_at > ? AND charged_micros > 0 AND id != ?"
            " ORDER BY finished_at",
            (horizon, exclude),
        ):
            keys = _governing(scope)
            for index, rate in rates:
                key = keys[index][0]
                if at <= now - rate.per_seconds or at <= resets.get(key, float("-inf")):
                    continue
                window = windows.get(key)
                if window is None:
                    window = windows[key] = SpendWindow(rate.per_seconds)
                window.add(at, micros)
        self._spend = windows
        return windows

    def after_release(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        """A released trial call frees its slot (the call was not made)."""
        if not self.enabled:
            return
        for b, kind in self._half_open(tx, reservation.scope):
            b.released(reservation.id)
            self._apply(tx, b, kind, (), now)

    def _half_open(self, tx: Tx, scope: str) -> builtins.list[tuple[Breaker, str]]:
        """The breakers governing ``scope`` that are running a trial."""
        not_closed = self._not_closed or self._load_not_closed(tx)
        if not not_closed:
            return []
        found = []
        for key, kind in _governing(scope):
            if key in not_closed:
                b = self._entries.get(key) or self._entry(tx, key, kind)
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
        self._apply(tx, b, kind, (t,), now)
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
            " AND opened_at + cooldown_seconds <= ?",
            (now,),
        ):
            b = self._entry(tx, key, kind)
            t = b.expire(now)
            if t is not None:
                self._apply(tx, b, kind, (t,), now)
                moved += 1
        for key, kind in tx.all("SELECT key, kind FROM breakers WHERE state = 'half_open'"):
            if self._abandoned(tx, self._entry(tx, key, kind), kind, now) is not None:
                moved += 1
        return moved

    def prune(self, tx: Tx, *, older_than_seconds: int = ATTEMPTS_RETENTION_SECONDS) -> int:
        """Forget task attempt counts nobody has touched for a while (an hourly job)."""
        cur = tx.execute(
            "DELETE FROM breaker_attempts WHERE last_at < ?",
            (tx.clock.now() - older_than_seconds,),
        )
        return cur.rowcount

    async def sweep(self, store: Store) -> int:
        """Run :meth:`tick` in its own write (the scheduler's job)."""
        return await store.write(self.tick)

    # -- routing ------------------------------------------------------------------------

    def is_model_open(self, tx: Tx, model: str) -> bool:
        """True while the model's breaker refuses it (open, waiting, forced): route elsewhere."""
        if not self.enabled:
            return False
        key = MODEL_PREFIX + model
        b = self._entries.get(key) or self._entry(tx, key, "model")
        if b.state == CLOSED:
            return False
        now = tx.clock.now()
        self._apply(tx, b, "model", (b.expire(now),), now)
        return b.state in REFUSING

    # -- operators ----------------------------------------------------------------------

    def _operate(self, tx: Tx, scope: str, actor: str) -> tuple[Breaker, str, float]:
        if not self.enabled:
            raise Conflict("breakers are disabled in the policy (breakers.enabled: false)")
        if not isinstance(actor, str) or not actor.strip():
            raise InvalidInput("actor", "an operation on a breaker needs the actor who made it")
        key, kind = parse_key(scope)
        now = tx.clock.now()
        return self._entry(tx, key, kind), kind, now

    def _audit(self, tx: Tx, action: str, b: Breaker, before: str, t: Transition) -> None:
        tx.audit(
            actor=t.actor,
            action=f"breaker.{action}",
            target=b.key,
            before=before,
            after=b.state,
            detail=t.reason,
        )

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
        b, kind, now = self._operate(tx, scope, actor)
        before = b.state
        t = b.approve(
            now, actor=actor, trial_calls=trial_calls, trial_budget_micros=trial_budget_micros
        )
        self._apply(tx, b, kind, (t,), now)
        self._audit(tx, "approve", b, before, t)
        tx.emit(TrialAnswered(at=now, scope=b.key, decision="approved", actor=actor))
        return self._row(b, kind, now)

    def keep_open(self, tx: Tx, scope: str, actor: str) -> BreakerRow:
        """Refuse the trial: open again for the next (doubled) cool-down."""
        b, kind, now = self._operate(tx, scope, actor)
        before = b.state
        t = b.keep_open(now, actor=actor)
        self._apply(tx, b, kind, (t,), now)
        self._audit(tx, "keep_open", b, before, t)
        tx.emit(TrialAnswered(at=now, scope=b.key, decision="kept open", actor=actor))
        return self._row(b, kind, now)

    def force_open(self, tx: Tx, scope: str, actor: str, reason: str = "") -> BreakerRow:
        """The kill switch: refuse every reservation under ``scope`` until approved or closed."""
        b, kind, now = self._operate(tx, scope, actor)
        before = b.state
        t = b.force_open(now, actor=actor, reason=reason.strip()[:500])
        self._apply(tx, b, kind, (t,), now)
        self._audit(tx, "force_open", b, before, t)
        return self._row(b, kind, now)

    def force_close(self, tx: Tx, scope: str, actor: str) -> BreakerRow:
        """Close now; the failures and the cool-down history are forgotten."""
        b, kind, now = self._operate(tx, scope, actor)
        before = b.state
        t = b.force_close(now, actor=actor)
        self._apply(tx, b, kind, (t,), now)
        self._audit(tx, "force_close", b, before, t)
        return self._row(b, kind, now)

    # -- reading ------------------------------------------------------------------------

    def _row(self, b: Breaker, kind: str, now: float) -> BreakerRow:
        trial = None
        if b.state == HALF_OPEN:
            trial = {
                "calls": b.trial_calls,
                "admitted": len(b.trial_holds),
                "succeeded": b.trial_succeeded,
                "budget_micros": b.trial_budget_micros,
                "held_micros": b.trial_held_micros,
                "charged_micros": b.trial_charged_micros,
            }
        return BreakerRow(
            scope=b.key,
            kind=kind,
            state=b.state,
            reason=b.reason,
            trip=b.trip if b.state != CLOSED else None,
            since=b.since or None,
            retry_after=b.retry_after(now) if b.state != CLOSED else None,
            cooldown_ends_at=b.deadline(),
            cooldown_seconds=b.cooldown_seconds,
            reopens=b.reopens,
            figures=dict(b.figures) if b.state != CLOSED else {},
            trial=trial,
            consecutive_failures=b.window.consecutive,
            recent_failures=b.window.failures,
            recent_calls=len(b.window.items),
        )

    def get(self, tx: Tx, scope: str) -> BreakerRow:
        """One breaker (closed when it never tripped)."""
        key, kind = parse_key(scope)
        b = self._entries.get(key) or self._entry(tx, key, kind)
        return self._row(b, kind, tx.clock.now())

    def list(
        self, tx: Tx, include_closed: bool = False, *, within: str | None = None
    ) -> builtins.list[BreakerRow]:
        """Breakers that are not closed (every known one with ``include_closed``).

        ``within``: only breakers inside that subtree, and the namespace and user
        breakers above it (they refuse its reservations too); no model breakers.
        """
        self.tick(tx)
        now = tx.clock.now()
        if include_closed:
            rows = tx.all("SELECT key, kind FROM breakers ORDER BY key")
        else:
            rows = tx.all("SELECT key, kind FROM breakers WHERE state != 'closed' ORDER BY key")
        found = {key: kind for key, kind in rows}
        if include_closed:
            for (path,) in tx.all("SELECT path FROM scopes WHERE depth = 3"):
                found.setdefault(path, "agent")
        if within is not None:
            node = Scope.parse(within)
            found = {
                key: kind
                for key, kind in found.items()
                if kind != "model" and (Scope(key).within(node.path) or node.within(key))
            }
        return [
            self._row(self._entries.get(key) or self._entry(tx, key, kind), kind, now)
            for key, kind in sorted(found.items())
        ]
