"""Holds outside an agent's own calls: their expiry, an operator ending one, the list of
those counting at a scope, and their ends moved with a step of the wall clock; and the
one move of money every operation makes (a journal row and the usage sums).

:class:`Holds` is the part of :class:`guards.ledger.Ledger` that the agent API does not
drive: the store runs :meth:`Holds.expire_due` as each write batch begins, ``/agent
holds`` and ``/agent release`` call the others.

Example:
    >>> # inside store.write:
    >>> # holds, count, total = ledger.held_under(tx, Scope("acme/alice"), limit=20)
"""

from __future__ import annotations

from guards.budget_checks import BudgetChecks
from guards.errors import NotFound
from guards.events import HoldExpired
from guards.money import format_usd
from guards.reservation import RESERVATION_COLUMNS, Gate, Reservation
from guards.scopes import Scope, ancestors_of, subtree
from guards.store import Tx
from guards.tx import Bulk

__all__ = ["HELD_COUNT_SQL", "HELD_ROWS_SQL", "JOURNAL", "Holds"]

# A journal row, written with the batch's others as it commits (rank 2: after the
# reservations it names are in).
JOURNAL = Bulk(
    2, "INSERT INTO journal (at, reservation_id, kind, held_delta, spent_delta) VALUES ", 5
)

# The holds counting now at a scope and below: (now, scope, *subtree(scope), [limit]).
# Read off the open holds (the partial index reservations_due): the planner's own choice,
# the scope index, walks every reservation the subtree ever settled, 3 s at 745k
# (audit26 volume F1). Open holds are few at any age.
_HELD_UNDER = (
    " FROM reservations INDEXED BY reservations_due WHERE state = 'held' AND expires_at > ?"
    " AND (scope = ? OR (scope > ? AND scope < ?))"
)
HELD_COUNT_SQL = f"SELECT COUNT(*), COALESCE(SUM(held_micros), 0){_HELD_UNDER}"
HELD_ROWS_SQL = (
    f"SELECT {RESERVATION_COLUMNS}{_HELD_UNDER} ORDER BY held_micros DESC, expires_at DESC LIMIT ?"
)


class Holds(BudgetChecks):
    """Expire, end and list holds; journal every move of money."""

    gates: list[Gate]  # told of a hold that ended (the breakers' trial slots)

    def _move(
        self,
        tx: Tx,
        res_id: str,
        scope: str,
        periods: tuple[str, str, str],
        kind: str,
        *,
        held: int,
        spent: int,
        now: float,
        model: str | None,
    ) -> None:
        """Journal one change of money and apply it to every level and window, and to
        what the namespace spends on ``model`` (the name the hold counted, if any)."""
        tx.defer(JOURNAL, (now, res_id, kind, held, spent))
        self.counters.move(
            tx, paths=ancestors_of(scope), periods=periods, spent=spent, held=held, model=model
        )

    def end_hold(self, tx: Tx, *, res_id: str, actor: str) -> Reservation:
        """An operator ends a hold now, as its TTL would (``/agent release``): a stuck
        call's hold that keeps its siblings from their budget. A settle that comes later
        is still charged in full, flagged late: the call may yet have spent. Audited.
        Returns the reservation as it was.

        Raises:
            NotFound: no such reservation.
        """
        row = tx.one(f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = ?", (res_id,))
        if row is None:
            raise NotFound(f"no reservation {res_id[:64]!r}")
        reservation = Reservation.from_row(row)
        if reservation.state == "held":  # (holds past their TTL expired as the batch began)
            r = reservation
            now = tx.clock.now()
            self._expire(tx, r.id, r.scope, r.held_micros, r.periods, now, r.counted_model)
            # its answers say it ended now (a replay showed the TTL's end still to come)
            tx.execute("UPDATE reservations SET expires_at = ? WHERE id = ?", (now, r.id))
            for gate in self.gates:  # a trial call's slot is freed, as by a release
                gate.after_release(tx, reservation=r, now=now)
            tx.audit(
                actor=actor,
                action="reservation.end",
                target=r.scope,
                # in dollars, as every other audit amount (audit23 forensics L3)
                before=f"{r.id} held {format_usd(r.held_micros)}",
                after="ended by hand (as if expired: nothing charged)",
            )
        return reservation

    def held_under(self, tx: Tx, scope: Scope, *, limit: int) -> tuple[list[Reservation], int, int]:
        """The holds counting now at ``scope`` and below, the largest first (at most
        ``limit``), with how many there are and their sum."""
        now = tx.clock.now()
        under = subtree(scope.path)
        count, total = tx.one(HELD_COUNT_SQL, (now, scope.path, *under))
        rows = tx.all(HELD_ROWS_SQL, (now, scope.path, *under, limit))
        return [Reservation.from_row(r) for r in rows], int(count), int(total)

    def clock_stepped(self, tx: Tx, seconds: float) -> None:
        """Move every open hold's start and end by ``seconds`` (the wall clock stepped that
        much): a hold keeps its TTL in real time, a step forward does not end the calls in
        flight, and how long a call has held (``/agent holds``, a hanging call, its
        duration) is told in real time too."""
        tx.execute(
            "UPDATE reservations SET created_at = created_at + ?, expires_at = expires_at + ?"
            " WHERE state = 'held'",
            (seconds, seconds),
        )

    def expire_due(self, tx: Tx) -> int:
        """Expire every hold past its TTL (runs at the start of every write batch)."""
        now = tx.clock.now()
        rows = tx.all(
            "SELECT id, scope, held_micros, period_day, period_week, period_month, counted_model"
            " FROM reservations WHERE state = 'held' AND expires_at <= ? ORDER BY expires_at"
            " LIMIT 1000",
            (now,),
        )
        for res_id, scope, held, day, week, month, model in rows:
            self._expire(tx, res_id, scope, held, (day, week, month), now, model)
            tx.emit(HoldExpired(at=now, scope=scope, reservation_id=res_id, held_micros=held))
        return len(rows)

    def _expire(
        self,
        tx: Tx,
        res_id: str,
        scope: str,
        held: int,
        periods: tuple[str, str, str],
        now: float,
        model: str | None,
    ) -> None:
        tx.execute(
            "UPDATE reservations SET state = 'expired', released_micros = held_micros,"
            " expired_at = ? WHERE id = ?",
            (now, res_id),
        )
        self._move(tx, res_id, scope, periods, "expire", held=-held, spent=0, now=now, model=model)
