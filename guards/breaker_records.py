"""How breakers follow their rows: loaded into memory, changed there, written back at once.

Every change is a row: the ``breakers`` row holds the state (an open breaker's
cool-down ends at ``opened_at + cooldown_seconds``, so a restart loses no timer),
``breaker_transitions`` one row per transition, and events go out with ``tx.emit``
in the same transaction.

:class:`BreakerRecords` keeps the breakers in memory on the writer thread, so a
closed breaker costs no SQL. A change is made in memory and written to its row in
the same step (:meth:`BreakerRecords.apply`), so later writes of the same batch see
it; when the store rolls writes back, :meth:`BreakerRecords.forget` drops the memory
and it reloads from the rows.

Example:
    >>> # records = BreakerRecords(BreakerLimits(policy).config, on_close=spend.clear)
    >>> # b = records.entry(tx, "acme/alice/bot", "agent")
    >>> # records.apply(tx, b, "agent", (b.force_close(now, actor="U01"),), now)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from guards.breaker import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    HALF_OPEN_PENDING,
    MODEL_FIGURE,
    MODEL_SINCE,
    OPEN,
    Breaker,
    BreakerConfig,
    FailureWindow,
    Transition,
)
from guards.breaker_windows import drop_idle
from guards.events import (
    NIGHTSHIFT,
    BreakerClosed,
    BreakerOpened,
    HalfOpenRequested,
    TrialAnswered,
)
from guards.store import Tx

__all__ = ["OUTAGE_LEAD_SECONDS", "BreakerRecords", "part_of_outage"]

AUTOMATIC = "breaker"  # the actor of a transition the breaker made on its own
AUTO_STARTED = "started: the policy starts trials itself now"  # a waiting trial, at a reload
FOLLOWED = "started: its model's breaker closed after its trial"  # breakers.follow_model
KEPT_OPEN = "kept open by "  # the reason of a breaker a person kept open (Keep open)
#: an agent's trip is part of a model's outage when it came while the model's breaker was
#: open, or at most this long before the model's opened: the first agents trip before the
#: model's can (it needs ``breakers.model_min_agents``); one that tripped on its own
#: earlier is not that outage's (review30 H2)
OUTAGE_LEAD_SECONDS = 900
# the audit action of each automatic transition (actor ``nightshift``): the night's
# timeline in `/agent audit` beside what people did
_AUTOMATIC_ACTIONS = {
    (CLOSED, OPEN): "breaker.trip",
    (HALF_OPEN, OPEN): "breaker.trial_failed",
    (OPEN, HALF_OPEN_PENDING): "breaker.trial_requested",
    (OPEN, HALF_OPEN): "breaker.trial",
    (HALF_OPEN_PENDING, HALF_OPEN): "breaker.trial",
    (HALF_OPEN, CLOSED): "breaker.close",
}


def _idle(b: Breaker) -> bool:
    """Nothing in memory that the breaker's row lacks."""
    return b.state == CLOSED and not b.dirty and not b.window.failures


MAX_ENTRIES = 50_000  # breakers kept in memory before the idle ones are dropped

_COLUMNS = (
    "state, reason, trip, origin, figures, since, opened_at, cooldown_seconds, reopens,"
    " trial_calls, trial_budget_micros, trial_holds, trial_charged_micros, trial_succeeded,"
    " recent, consecutive, spend_reset_at, probation_until"
)
_UPSERT = (
    f"INSERT INTO breakers (key, kind, {_COLUMNS}, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET state = excluded.state, reason = excluded.reason,"
    " trip = excluded.trip, origin = excluded.origin, figures = excluded.figures,"
    " since = excluded.since, opened_at = excluded.opened_at,"
    " cooldown_seconds = excluded.cooldown_seconds, reopens = excluded.reopens,"
    " trial_calls = excluded.trial_calls, trial_budget_micros = excluded.trial_budget_micros,"
    " trial_holds = excluded.trial_holds, trial_charged_micros = excluded.trial_charged_micros,"
    " trial_succeeded = excluded.trial_succeeded, recent = excluded.recent,"
    " consecutive = excluded.consecutive, spend_reset_at = excluded.spend_reset_at,"
    " probation_until = excluded.probation_until, updated_at = excluded.updated_at"
)


class BreakerRecords:
    """The breakers of one process in memory, each written to its row as it changes."""

    def __init__(
        self,
        config_of: Callable[[str, str], BreakerConfig],
        *,
        on_close: Callable[[str], None],
        follow_model: bool = False,
    ) -> None:
        self.config_of = config_of  # a breaker's config by key and kind (its scope's limits)
        self.on_close = on_close  # told a breaker's key when it closes (its spend starts over)
        self.follow_model = follow_model  # policy breakers.follow_model
        self.entries: dict[str, Breaker] = {}
        self.not_closed: set[str] | None = None  # every key not closed, once loaded
        self._evict_at = MAX_ENTRIES

    def forget(self) -> None:
        """Drop every breaker from memory; they reload from rows."""
        self.entries.clear()
        self.not_closed = None

    def load_not_closed(self, tx: Tx) -> set[str]:
        """The keys of the breakers not closed: read once, then kept by :meth:`apply`."""
        if self.not_closed is None:
            rows = tx.all("SELECT key FROM breakers WHERE state != 'closed'")
            self.not_closed = {key for (key,) in rows}
        return self.not_closed

    def entry(self, tx: Tx, key: str, kind: str) -> Breaker:
        """The breaker ``key`` from memory, or from its row (closed when it has none)."""
        breaker = self.entries.get(key)
        if breaker is None:
            if len(self.entries) >= self._evict_at:
                # What goes is a closed breaker without failures in its window, as a
                # restart would leave it (FailureWindow.add); it reloads from its row.
                self._evict_at = drop_idle(self.entries, _idle, MAX_ENTRIES)
            row = tx.one(f"SELECT {_COLUMNS} FROM breakers WHERE key = ?", (key,))
            breaker = self.entries[key] = self._from_row(key, kind, row)
            _settled_in_flight(tx, breaker)
        return breaker

    def _from_row(self, key: str, kind: str, row: Any) -> Breaker:
        config = self.config_of(key, kind)
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
            probation_until=row[17],
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
                b.probation_until,
                now,
            ),
        )
        b.dirty = False

    def apply(
        self, tx: Tx, b: Breaker, kind: str, transitions: tuple[Transition | None, ...], now: float
    ) -> None:
        """Store the breaker if it changed, one row per transition, and their events."""
        followed = None
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
            if t.to_state == CLOSED:
                self.on_close(t.key)
            if t.actor == AUTOMATIC:  # an operator's move is audited by the operation
                tx.audit(
                    actor=NIGHTSHIFT,
                    action=_AUTOMATIC_ACTIONS.get(
                        (t.from_state, t.to_state), f"breaker.{t.to_state}"
                    ),
                    target=t.key,
                    before=t.from_state,
                    after=t.to_state,
                    detail=t.reason,
                )
            if t.announce:
                self._announce(tx, b, t)
            if t.actor == AUTOMATIC and (t.from_state, t.to_state) == (
                HALF_OPEN_PENDING,
                HALF_OPEN,
            ):
                # nobody approved: the policy starts trials itself now; the request is answered
                tx.emit(TrialAnswered(at=now, scope=t.key, decision=AUTO_STARTED, actor=NIGHTSHIFT))
            passed = (t.from_state, t.to_state) == (HALF_OPEN, CLOSED)
            if kind == "model" and t.actor == AUTOMATIC and passed:
                followed = t.key  # the model's own trial passed: its outage is over
        if b.dirty:
            self._save(tx, b, kind, now)
        not_closed = self.load_not_closed(tx)
        if b.state == CLOSED:
            not_closed.discard(b.key)
        else:
            not_closed.add(b.key)
        if followed is not None and self.follow_model:
            self.follow(tx, followed, now)

    def follow(self, tx: Tx, model: str, now: float) -> list[str]:
        """Start the trial of every agent breaker that tripped on ``model``'s failures in
        its outage (:func:`part_of_outage`) and is still open or waits for a person, as an
        approval would: the model's own trial passed, so the provider answers again
        (policy ``breakers.follow_model``). An agent whose trials start on their own
        (``half_open.mode: auto``) starts it now too, rather than at the end of a longer
        cool-down of its own, when its held alert would be posted for an outage that is
        over (review30 M1). Each is audited with the model as its actor, and its trial
        request is answered. A kill switch (forced open) and a breaker a person kept open are
        a person's: left alone.
        Returns the agents' keys."""
        rows = tx.all(
            "SELECT a.key FROM breakers a JOIN breakers m ON m.key = ?"
            " WHERE a.kind = 'agent' AND a.state IN (?, ?)"
            " AND json_extract(a.figures, '$.' || ?) = m.key"
            f" AND {part_of_outage('a', 'm')} ORDER BY a.key",
            (model, OPEN, HALF_OPEN_PENDING, MODEL_FIGURE),
        )
        started = []
        for (key,) in rows:
            b = self.entry(tx, key, "agent")
            if b.state not in (OPEN, HALF_OPEN_PENDING) or b.reason.startswith(KEPT_OPEN):
                continue  # (kept open by a person: their answer stands, review31 L4)
            before = b.state
            t = b.follow(now, model=model)
            self.apply(tx, b, "agent", (t,), now)
            tx.audit(
                actor=model,
                action="breaker.follow_model",
                target=key,
                before=before,
                after=b.state,
                detail=t.reason,
            )
            tx.emit(TrialAnswered(at=now, scope=key, decision=FOLLOWED, actor=model))
            started.append(key)
        return started

    def _announce(self, tx: Tx, b: Breaker, t: Transition) -> None:
        actor = None if t.actor == AUTOMATIC else t.actor
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


def part_of_outage(agent: str, model: str) -> str:
    """A SQL condition on two rows of ``breakers`` (their aliases): the agent's trip on
    the model (its ``model_since`` figure; its ``opened_at`` for a trip recorded before
    that figure) came in the model's open episode, which starts at the model's last
    transition out of ``closed``, or at most :data:`OUTAGE_LEAD_SECONDS` before it.

    Example:
        >>> part_of_outage("a", "m")[:40]
        "COALESCE(json_extract(a.figures, '$.mode"
    """
    return (
        f"COALESCE(json_extract({agent}.figures, '$.{MODEL_SINCE}'), {agent}.opened_at)"
        f" >= COALESCE((SELECT MAX(t.at) FROM breaker_transitions t WHERE t.scope = {model}.key"
        f" AND t.from_state = '{CLOSED}'), {model}.opened_at) - {OUTAGE_LEAD_SECONDS}"
    )


def _settled_in_flight(tx: Tx, b: Breaker) -> None:
    """Mark settled the trial calls a row stored before settled calls were marked (None)
    still holds: before 46c14db a settled call kept its hold, then it became 0, both read
    as in flight now, and the hold counted on top of its charge (review28 R2 L1: a trial
    running across the upgrade failed a call its budget had room for). Its reservation
    says whether it settled; one expired stays, for the trial to fail on."""
    if b.state != HALF_OPEN or not any(v is not None for v in b.trial_holds.values()):
        return
    rows = tx.all(
        "SELECT id FROM reservations WHERE state = 'settled'"
        " AND id IN (SELECT value FROM json_each(?))",
        (json.dumps([k for k, v in b.trial_holds.items() if v is not None]),),
    )
    for (res_id,) in rows:
        b.trial_holds[str(res_id)] = None
