"""Credits: a settled charge taken back by a correcting entry (``/agent credit``).

An absurd settle (a unit bug reporting $400 for a $0.40 call, a leaked token) is charged
in full, as it must be. A credit then takes back up to what that reservation was charged,
less what was credited before, as TigerBeetle's correcting transfer does: nothing is
edited, an append-only row in ``credits`` (migration 0032) lowers the spent counters of
every level from the namespace down to the reservation's scope (and what the namespace
spent on the hold's model, :mod:`guards.model_budgets`), in the periods its charge
was booked in (the reservation's day, week and month, as the settle raised them, and
``total``), so a budget regains the room the charge used up in its own windows.
:func:`guards.verify.verify` adds credits to the journal's sums.

Nothing caps a credit but the charge: a command sent again is a new credit, and the
sum of a reservation's credits never exceeds its charge (checked inside the one write,
so two credits racing take it back once).

Example:
    >>> # inside store.write:
    >>> # done = credit_charge(tx, counters=ledger.counters, res_id="res_…",
    >>> #                      amount_micros=399_600_000, reason="unit bug", actor="U1")
    >>> # done.net_micros  # what the reservation's charge counts now
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.errors import Conflict, InvalidInput, NotFound
from guards.money import usd_for
from guards.reservation import RESERVATION_COLUMNS, Reservation
from guards.scopes import ancestors_of
from guards.store import Tx
from guards.usage import UsageCache

__all__ = ["MAX_REASON_CHARS", "Credited", "credit_charge", "credited"]

MAX_REASON_CHARS = 200
_CREDITED = "SELECT COALESCE(SUM(amount_micros), 0) FROM credits WHERE reservation_id = ?"
_INSERT = (
    "INSERT INTO credits (at, reservation_id, amount_micros, actor, reason) VALUES (?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class Credited:
    """A credit made: the reservation it took back from, how much now and in all."""

    reservation: Reservation
    amount_micros: int  # taken back by this credit
    credited_micros: int  # taken back in all, this credit included

    @property
    def net_micros(self) -> int:
        """What the reservation's charge counts now."""
        return self.reservation.charged_micros - self.credited_micros


def credited(tx: Tx, res_id: str) -> int:
    """What was taken back of a reservation's charge so far."""
    return int(tx.one(_CREDITED, (res_id,))[0])


def credit_charge(
    tx: Tx,
    *,
    counters: UsageCache,
    res_id: str,
    amount_micros: int | None,
    reason: str,
    actor: str,
) -> Credited:
    """Take back ``amount_micros`` of a settled reservation's charge (None: all that is
    left), audited as ``ledger.credit``. Checks everything before it writes anything.

    Raises:
        InvalidInput: no reason, an amount of $0 or less, more than is left to take back.
        NotFound: no such reservation.
        Conflict: it is not settled (held, released, expired), or nothing is left.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason", "a reason is required (it is kept in the audit log)")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput("reason", f"the reason may be at most {MAX_REASON_CHARS} characters")
    if amount_micros is not None and amount_micros <= 0:
        raise InvalidInput("amount", "the amount must be more than $0 (or `all`)")
    row = tx.one(f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = ?", (res_id,))
    if row is None:
        raise NotFound(f"There is no reservation `{res_id[:64]}`.")
    r = Reservation.from_row(row)
    _check_settled(r)
    before = credited(tx, r.id)
    left = r.charged_micros - before
    usd = usd_for(r.charged_micros, before, left, amount_micros or 0)
    if left <= 0:
        raise Conflict(
            f"Nothing is left to take back of `{r.id}`: all {usd(r.charged_micros)} of its"
            " charge was taken back already.",
            state=r.state,
        )
    amount = left if amount_micros is None else amount_micros
    if amount > left:
        raise InvalidInput(
            "amount",
            f"Only {usd(left)} of the charge of `{r.id}` is left to take back"
            f" ({usd(r.charged_micros)} charged, {usd(before)} taken back before);"
            " nothing changed.",
        )
    tx.execute(_INSERT, (tx.clock.now(), r.id, amount, actor, reason))
    # as the settle raised them: every level, the periods of the hold, total included, and
    # what the namespace spent on the hold's model
    counters.move(
        tx,
        paths=ancestors_of(r.scope),
        periods=r.periods,
        spent=-amount,
        held=0,
        model=r.counted_model,
    )
    tx.audit(
        actor=actor,
        action="ledger.credit",
        target=f"{r.id} {r.scope}",
        before=str(r.charged_micros - before),
        after=str(r.charged_micros - before - amount),
        detail=reason,
    )
    return Credited(r, amount, before + amount)


def _check_settled(r: Reservation) -> None:
    """Only a settle charges: anything else has nothing to take back."""
    if r.state == "settled":
        if not r.charged_micros:
            raise Conflict(
                f"`{r.id}` of `{r.scope}` was settled at $0: nothing to take back.",
                state=r.state,
            )
        return
    if r.state == "held":
        raise Conflict(
            f"`{r.id}` of `{r.scope}` is still held: nothing was charged yet. End the hold"
            f" with `/agent release {r.id}`.",
            state=r.state,
        )
    if r.state == "released":
        raise Conflict(
            f"`{r.id}` of `{r.scope}` was released: nothing was charged, nothing to take back.",
            state=r.state,
        )
    raise Conflict(
        f"`{r.id}` of `{r.scope}` expired without a settle: nothing was charged, nothing to"
        " take back.",
        state=r.state,
    )
