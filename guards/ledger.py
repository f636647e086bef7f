"""The budget ledger: two-phase holds (reserve → settle/release/expire) over the hierarchy.

A reservation holds its ceiling at **every** level of its scope (namespace, user,
agent, conversation) and every window (day, week, month, total) in one atomic
step, or at none; when it names a model, its namespace's budget for that model
(``budgets.models``, :mod:`guards.model_budgets`) is checked and moved in the same
step. ``spent + held <= limit`` holds at every level and window, and for every model
with a budget, except for money a settle reports as already spent (charged in full,
flagged as overrun).

Money follows the hold: a charge lands in the periods (day, week, month of the
namespace's time zone) in which its hold was taken, so a settle just after
midnight cannot overspend the new day.

Every change is a journal row (``held_delta``, ``spent_delta``); the daily usage
counters are a cache of the journal that :func:`guards.verify.verify` recomputes.

All methods taking a ``tx`` run inside ``store.write``, one at a time (see :mod:`guards.store`).

Example:
    >>> # inside store.write:
    >>> # ledger.reserve(tx, token=token, req=ReserveRequest(scope="acme/a/bot", ...))
"""

from __future__ import annotations

import dataclasses
import math

from guards.client_types import ReservationAnswer
from guards.config import Policy
from guards.credits import Credited, credit_charge
from guards.errors import AttemptsExhausted, BreakerOpen, BudgetExceeded, Conflict, InvalidInput
from guards.ledger_rows import INSERT_HOLD, by_id, by_key, reservation_id
from guards.model_budgets import counted_model
from guards.prices import PriceTable, UnknownModel
from guards.reservation import (
    RESERVATION_COLUMNS,
    Estimate,
    Gate,
    Reservation,
    ReserveRequest,
    SettleRequest,
)
from guards.scopes import Scope
from guards.settlements import Settlements
from guards.store import Tx
from guards.tokens import Token, authorize
from guards.usage import Usage, periods_at

__all__ = [
    "Estimate",
    "Gate",
    "Ledger",
    "Reservation",
    "ReserveRequest",
    "SettleRequest",
    "Usage",
    "periods_at",
]


MAX_KNOWN_SCOPES = 100_000  # scope rows known to exist, kept to skip their INSERT OR IGNORE
# Calls refused before they started, per agent, day and reason (migration 0029).
# ``first_at`` (0049): when the row's first refusal came, kept by the later ones.
UPSERT_REFUSED = (
    "INSERT INTO refusals_daily (scope, day, reason, calls, asked_micros, first_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (scope, day, reason) DO UPDATE SET calls = calls + excluded.calls,"
    " asked_micros = asked_micros + excluded.asked_micros"
)
# The reservation a token's idempotency key names (issue 2: idempotency per token + key).
USED_KEY = (
    f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE token_id = ? AND idempotency_key = ?"
)
REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (BudgetExceeded, "budget"),
    (BreakerOpen, "breaker"),
    (AttemptsExhausted, "attempts"),
)


class Ledger(Settlements):
    """Reserve, settle and release holds (settle and release:
    :class:`~guards.settlements.Settlements`; expiry and listing: :class:`~guards.holds.Holds`;
    usage questions: :class:`~guards.budgets.Budgets`)."""

    def __init__(self, *, policy: Policy, prices: PriceTable | None = None) -> None:
        super().__init__(policy=policy)
        self.prices = prices or PriceTable()
        self.gates: list[Gate] = []
        self._known_scopes: set[str] = set()

    def forget(self) -> None:
        """Drop every in-memory cache (writes were rolled back); they reload from the database."""
        super().forget()
        self._known_scopes.clear()

    def credit(
        self, tx: Tx, *, res_id: str, amount_micros: int | None, reason: str, actor: str
    ) -> Credited:
        """Take back a settled charge (``/agent credit``): :func:`guards.credits.credit_charge`."""
        return credit_charge(
            tx,
            counters=self.counters,
            res_id=res_id,
            amount_micros=amount_micros,
            reason=reason,
            actor=actor,
        )

    # -- reserve ------------------------------------------------------------------------

    def _ensure_scopes(self, tx: Tx, scope: Scope, now: float) -> None:
        if scope.path in self._known_scopes:
            return
        paths = scope.ancestors()
        tx.executemany(
            "INSERT OR IGNORE INTO scopes (path, parent, depth, created_at) VALUES (?, ?, ?, ?)",
            [(p, paths[i - 1] if i else None, i + 1, now) for i, p in enumerate(paths)],
        )
        known = self._known_scopes
        if len(known) >= MAX_KNOWN_SCOPES:  # conversations come and go: start over
            known.clear()
        tx.after_commit.append(lambda: known.update(paths))

    def ceiling(self, req: ReserveRequest) -> int:
        """The amount to hold: the given ceiling, or the estimate priced and rounded up."""
        if req.max_cost_micros is not None:
            return req.max_cost_micros
        assert req.estimate is not None
        try:
            return self.prices.cost(
                req.estimate.model,
                input_tokens=req.estimate.input_tokens,
                output_tokens=req.estimate.max_output_tokens,
            )
        except UnknownModel:
            raise InvalidInput(
                "estimate.model",
                f"no price for model {req.estimate.model!r}; known: "
                f"{', '.join(self.prices.models())} (add it under prices: in the policy,"
                " or send max_cost_micros)",
            ) from None

    def check_ttl(self, ttl_seconds: int | None) -> int:
        """The hold's TTL (the policy's default for None), or InvalidInput past the
        policy's ``reservations.max_ttl_seconds``."""
        most = self.policy.reservations.max_ttl_seconds
        ttl = ttl_seconds or self.policy.reservations.ttl_seconds
        if ttl > most:
            raise InvalidInput(
                "ttl_seconds",
                f"ttl_seconds may be at most {most} (the policy's reservations.max_ttl_seconds)",
            )
        return ttl

    def _same_ask(self, req: ReserveRequest, existing: Reservation) -> bool:
        """Whether ``req`` asks what ``existing`` was asked in another form: the default
        TTL said aloud, or left out, when that is the TTL it was held for (audit21 money
        M2: the default was folded in before the fingerprint, so a reload that changed it
        made a byte-identical retry a 409; review22 L6: in either direction alike)."""
        default = self.policy.reservations.ttl_seconds
        held_for = round(existing.expires_at - existing.created_at)  # the TTL it was given
        if (req.ttl_seconds or default) != held_for:  # another TTL is another request
            return False
        other = dataclasses.replace(req, ttl_seconds=held_for if req.ttl_seconds is None else None)
        return existing.request_hash == other.fingerprint()

    def reserve(
        self, tx: Tx, *, token: Token, req: ReserveRequest
    ) -> tuple[bool, ReservationAnswer]:
        """Hold the ceiling at every level, or refuse. Returns (created, answer).

        Raises:
            BudgetExceeded: a level's window cannot take the hold (names the tightest one).
            Conflict: the idempotency key was used for a different request.
        """
        scope = Scope.parse(req.scope, min_depth=3)
        authorize(tx, token, scope, path="/v1/reservations")
        fingerprint = req.fingerprint()  # as sent: a reload's new default TTL changes nothing
        # A key names one call of its token (unique per token, as the table says): the
        # same key from another token is another call, even in the same scope.
        params = (token.id, req.idempotency_key)
        row = tx.read_one(USED_KEY, params, [by_key(token.id, req.idempotency_key)])
        if row is not None and tx.waits_for(by_id(row[0])):
            # its settle or release is deferred in this batch: read it as that left it
            row = tx.read_one(USED_KEY, params, [by_id(row[0])])
        if row is not None:
            existing = Reservation.from_row(row)
            if existing.scope != scope.path:
                raise Conflict(
                    f"idempotency_key {req.idempotency_key!r} was used by this token for a call"
                    f" in {existing.scope} ({existing.id}); a key names one call of a token:"
                    " use a new key for a new call",
                    state=existing.state,
                )
            if existing.request_hash != fingerprint and not self._same_ask(req, existing):
                raise Conflict(
                    f"idempotency_key {req.idempotency_key!r} was used for a different request"
                    f" ({existing.id}); use a new key for a new call",
                    state=existing.state,
                )
            return False, existing.answer()
        amount = self.ceiling(req)
        if amount <= 0 and req.estimate is not None and self.prices.free(req.estimate.model):
            amount = 1  # a free model's call (a local one) still reserves: breakers, routing
        if amount <= 0:
            if req.estimate is not None:
                raise InvalidInput(
                    "estimate",
                    "estimate: this estimate prices to $0; an estimate must cost at least"
                    " 1 micro-dollar (send its tokens, or max_cost_micros)",
                )
            raise InvalidInput("max_cost_micros", "the ceiling must be at least 1 micro-dollar")
        ttl = self.check_ttl(req.ttl_seconds)
        now = tx.clock.now()
        model = req.model or (req.estimate.model if req.estimate else None)
        named = {m.strip().lower() for m in (req.model, req.estimate and req.estimate.model) if m}
        counted = counted_model(model)  # what the namespace's budget for it counts
        periods = self.periods(scope.namespace, now)
        try:
            for gate in self.gates:
                gate.before_reserve(
                    tx,
                    scope=scope,
                    task_id=req.task_id,
                    amount_micros=amount,
                    now=now,
                    models=tuple(sorted(named)),
                )
            self._check_budget(
                tx, scope=scope, periods=periods, amount=amount, now=now, model=counted
            )
            self._check_room(tx, namespace=scope.namespace, amount=amount, now=now)
        except (BudgetExceeded, BreakerOpen, AttemptsExhausted) as refused:
            # kept (a refusal keeps what it records): what the guards stopped, for the digest
            reason = next(r for kind, r in REFUSALS if isinstance(refused, kind))
            agent = scope.agent() or scope.path
            first = (math.floor(now),)  # the row's first refusal of the day, if it is
            tx.add(UPSERT_REFUSED, (agent, periods[0], reason), (1, amount), first)
            raise
        self._ensure_scopes(tx, scope, now)
        res_id = reservation_id(now)
        tx.defer(
            INSERT_HOLD,
            (
                res_id,
                token.id,
                req.idempotency_key,
                fingerprint,
                scope.path,
                req.task_id,
                model,
                amount,
                *periods,
                now,
                now + ttl,
                req.route_id,
                counted,
            ),
            [by_id(res_id), by_key(token.id, req.idempotency_key)],
        )
        self._move(
            tx, res_id, scope.path, periods, "hold", held=amount, spent=0, now=now, model=counted
        )
        reservation = Reservation(
            id=res_id,
            token_id=token.id,
            scope=scope.path,
            task_id=req.task_id,
            model=model,
            state="held",
            held_micros=amount,
            charged_micros=0,
            released_micros=0,
            overrun_micros=0,
            outcome=None,
            settle_hash=None,
            request_hash=fingerprint,
            periods=periods,
            created_at=now,
            expires_at=now + ttl,
            expired_at=None,
            route_id=req.route_id,
            counted_model=counted,
        )
        for gate in self.gates:
            gate.after_reserve(tx, reservation=reservation, now=now)
        return True, reservation.answer()
