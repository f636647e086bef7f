"""Settling and releasing holds: a call's real cost charged (an overrun flagged) and the
rest of its hold given back, or the whole hold given back when the call was not made.

:class:`Settlements` is the part of :class:`guards.ledger.Ledger` that ends a hold for
its agent (``/v1/reservations/{id}/settle`` and ``/release``). All methods taking a
``tx`` run inside ``store.write`` (see :mod:`guards.store`).

Example:
    >>> # inside store.write:
    >>> # ledger.settle(tx, token=token, res_id=res_id, req=SettleRequest(...))
"""

from __future__ import annotations

import dataclasses
import hashlib

from guards.client_types import ReleaseAnswer, SettleAnswer
from guards.errors import Conflict, GuardError, InvalidInput, NotFound
from guards.events import Overrun
from guards.holds import Holds
from guards.ledger_rows import RELEASE, SETTLE, by_id, same_model
from guards.prices import PriceTable, UnknownModel
from guards.reservation import OUTCOMES, RESERVATION_COLUMNS, Reservation, SettleRequest
from guards.scopes import Scope
from guards.store import Tx
from guards.tokens import Token, authorize, refuse_expired

__all__ = ["Settlements"]


class Settlements(Holds):
    """Settle and release an agent's holds (reserving them: :class:`guards.ledger.Ledger`)."""

    prices: PriceTable  # what a settle's usage costs

    def _get(self, tx: Tx, token: Token, res_id: str) -> Reservation:
        well_formed = isinstance(res_id, str) and res_id.startswith("res_") and len(res_id) <= 64
        row = None
        if well_formed:
            row = tx.read_one(
                f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = ?",
                (res_id,),
                [by_id(res_id)],
            )
        reservation = Reservation.from_row(row) if row is not None else None
        refuse_expired(  # first: an expired token learns nothing of which ids exist
            tx,
            token,
            reserved_by=reservation.token_id if reservation else None,
            hold_ended=reservation.expires_at if reservation else None,
        )
        if reservation is None:
            raise NotFound(f"no reservation {str(res_id)[:64]!r}")
        # recorded with the real scope; the caller (and its alert) is not told it
        authorize(
            tx,
            token,
            Scope(reservation.scope),
            path=f"/v1/reservations/{res_id}",
            named=f"reservation {res_id}",
        )
        return reservation

    def actual_cost(self, req: SettleRequest) -> int:
        if req.actual_cost_micros is not None:
            return req.actual_cost_micros
        assert req.usage_model is not None
        try:
            return self.prices.cost(
                req.usage_model,
                input_tokens=req.input_tokens or 0,
                output_tokens=req.output_tokens or 0,
                prompt_tokens=req.prompt_tokens,
            )
        except UnknownModel:
            raise InvalidInput(
                "usage.model",
                f"no price for model {req.usage_model!r} (add it under prices: in the policy,"
                " or send actual_cost_micros)",
            ) from None

    def _settled_as(
        self, tx: Tx, token: Token, res_id: str, outcome: str, sent: str
    ) -> Reservation | None:
        """The reservation if it was settled with this outcome and usage (review22 L7)."""
        try:
            done = self._get(tx, token, res_id)
        except GuardError:  # unknown, or not the token's: the settle's own error says it
            return None
        if done.state == "settled" and _same_settle(done, outcome, sent, actual=None):
            return done
        return None

    def settle(self, tx: Tx, *, token: Token, res_id: str, req: SettleRequest) -> SettleAnswer:
        """Charge what the call really cost and release the rest of the hold.

        A late settle (the hold expired) or one over the ceiling is still charged in
        full; what no active hold covered is the overrun, and it is flagged.
        """
        if req.outcome not in OUTCOMES:
            raise InvalidInput("outcome", f"outcome is one of {', '.join(OUTCOMES)}")
        sent = _usage_sent(req)
        try:
            actual = self.actual_cost(req)
        except InvalidInput:  # no price for its model (any more): the same settle again?
            if sent and (done := self._settled_as(tx, token, res_id, req.outcome, sent)):
                return done.settle_answer()  # (its answer was lost, then the price removed)
            raise
        reservation = self._get(tx, token, res_id)
        settle_hash = f"{actual}:{req.outcome}" + (f":{sent}" if sent else "")
        if reservation.state == "settled":
            if _same_settle(reservation, req.outcome, sent, actual=actual):
                return reservation.settle_answer()
            raise Conflict(
                f"{res_id} was already settled: charged {reservation.charged_micros} micros,"
                f" outcome {reservation.outcome}; a reservation settles once (reserve again"
                " for a new call)",
                state="settled",
            )
        if reservation.state == "released":
            raise Conflict(
                f"{res_id} was released, so nothing was spent on it; reserve again for a new call",
                state="released",
            )
        now = tx.clock.now()
        late = reservation.state == "expired"
        active = 0 if late else reservation.held_micros
        covered = min(actual, active)
        overrun = actual - covered
        released = reservation.held_micros - covered if not late else reservation.released_micros
        self._check_spend(
            tx,
            namespace=reservation.scope.partition("/")[0],
            more=actual,
            field="actual_cost_micros" if req.actual_cost_micros is not None else "usage",
        )
        counted = reservation.counted_model  # the hold's: a settle charges its model
        model = reservation.model
        if req.usage_model and not (model and same_model(model, req.usage_model)):
            model = req.usage_model  # what was called (and priced), for the books and breakers
        tx.defer(
            SETTLE,
            (res_id, actual, released, overrun, req.outcome, req.error, settle_hash, now, model),
            [by_id(res_id)],
        )
        self._move(
            tx,
            res_id,
            reservation.scope,
            reservation.periods,
            "settle",
            held=-active,
            spent=actual,
            now=now,
            model=counted,
        )
        done = dataclasses.replace(
            reservation,
            state="settled",
            charged_micros=actual,
            released_micros=released,
            overrun_micros=overrun,
            outcome=req.outcome,
            settle_hash=settle_hash,
            model=model,
            error=req.error,
        )
        if overrun:
            tx.emit(
                Overrun(
                    at=now,
                    scope=reservation.scope,
                    reservation_id=res_id,
                    held_micros=reservation.held_micros,
                    charged_micros=actual,
                    overrun_micros=overrun,
                    late=late,
                )
            )
        if actual:
            self.warnings.check(tx, self, done, now)
        for gate in self.gates:
            gate.after_settle(tx, reservation=done, now=now)
        return done.settle_answer()

    def release(self, tx: Tx, *, token: Token, res_id: str) -> ReleaseAnswer:
        """Give the whole hold back (the call was not made). Repeating it is harmless."""
        reservation = self._get(tx, token, res_id)
        if reservation.state == "settled":
            raise Conflict(
                f"{res_id} was settled already; its unused hold was released then",
                state="settled",
            )
        if reservation.state in ("released", "expired"):
            return {
                "reservation_id": res_id,
                "state": reservation.state,
                "released_micros": reservation.released_micros,
            }
        now = tx.clock.now()
        tx.defer(RELEASE, (res_id, now), [by_id(res_id)])
        self._move(
            tx,
            res_id,
            reservation.scope,
            reservation.periods,
            "release",
            held=-reservation.held_micros,
            spent=0,
            now=now,
            model=reservation.counted_model,
        )
        for gate in self.gates:
            gate.after_release(tx, reservation=reservation, now=now)
        return {
            "reservation_id": res_id,
            "state": "released",
            "released_micros": reservation.held_micros,
        }


def _same_settle(done: Reservation, outcome: str, sent: str, *, actual: int | None) -> bool:
    """Whether a settle sent again is the one ``done`` recorded: the same outcome, and the
    same usage (whatever it prices to now: prices change between a lost answer and its
    resend, audit21 money M1) or the same amount (``actual``, when it could be priced)."""
    charged, _, rest = (done.settle_hash or "").partition(":")
    was, _, usage = rest.partition(":")
    if was != outcome:
        return False
    return (bool(sent) and usage == sent) or (actual is not None and charged == str(actual))


def _usage_sent(req: SettleRequest) -> str:
    """The usage a settle sent, as a short hash ("" for an amount sent as micros)."""
    if req.actual_cost_micros is not None or req.usage_model is None:
        return ""
    usage = (
        f"{req.usage_model.casefold()}|{req.input_tokens}|{req.output_tokens}|{req.prompt_tokens}"
    )
    return "u" + hashlib.sha256(usage.encode()).hexdigest()[:16]
