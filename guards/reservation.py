"""What the ledger holds and is asked: requests, reservations, and the gate protocol.

A reservation is a two-phase hold: ``held`` until it is settled (charged what the
call really cost, the rest released), released (nothing spent), or expired (its
TTL passed: it stops counting against budgets at that instant). ``Gate`` is how
other engines (breakers, routing, the digest) take part in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, get_args

from guards.client_types import ReservationAnswer, SettleAnswer
from guards.scopes import Scope
from guards.store import Tx

__all__ = [
    "OUTCOMES",
    "RESERVATION_COLUMNS",
    "Estimate",
    "Gate",
    "Outcome",
    "Reservation",
    "ReserveRequest",
    "SettleRequest",
    "iso",
]

#: how a settled call went, as the agent says (``success`` when it says nothing)
Outcome = Literal["success", "failure", "timeout"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
RESERVATION_COLUMNS = (
    "id, token_id, scope, task_id, model, state, held_micros, charged_micros, released_micros,"
    " overrun_micros, outcome, settle_hash, request_hash, period_day, period_week, period_month,"
    " created_at, expires_at, expired_at, route_id, counted_model"
)


@dataclass(frozen=True, slots=True)
class Estimate:
    model: str
    input_tokens: int
    max_output_tokens: int


@dataclass(frozen=True, slots=True)
class ReserveRequest:
    scope: str
    idempotency_key: str
    max_cost_micros: int | None = None
    estimate: Estimate | None = None
    task_id: str | None = None
    ttl_seconds: int | None = None
    model: str | None = None
    route_id: str | None = None

    def fingerprint(self) -> str:
        """A hash of what was asked, to tell a replay from a reused key."""
        est = self.estimate
        parts = [
            self.scope,
            self.max_cost_micros,
            (est.model, est.input_tokens, est.max_output_tokens) if est else None,
            self.task_id,
            self.ttl_seconds,
            self.model,
            self.route_id,
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SettleRequest:
    outcome: str
    actual_cost_micros: int | None = None
    usage_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    # the prompt's length with every cached token counted, when input_tokens weighs them
    prompt_tokens: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    token_id: str
    scope: str
    task_id: str | None
    model: str | None
    state: str
    held_micros: int
    charged_micros: int
    released_micros: int
    overrun_micros: int
    outcome: str | None
    settle_hash: str | None
    request_hash: str
    periods: tuple[str, str, str]
    created_at: float
    expires_at: float
    expired_at: float | None
    route_id: str | None
    # the name its hold counted under in the namespace's budget for a model (None: not
    # counted, as a call naming none, or reserved by a server older than budgets per
    # model): every move of its money uses this, never ``model``, which a settle rewrites
    counted_model: str | None
    error: str | None = None  # what a failed settle said (not read back from the row)

    @classmethod
    def from_row(cls, row: Any) -> Reservation:
        return cls(
            id=row[0],
            token_id=row[1],
            scope=row[2],
            task_id=row[3],
            model=row[4],
            state=row[5],
            held_micros=row[6],
            charged_micros=row[7],
            released_micros=row[8],
            overrun_micros=row[9],
            outcome=row[10],
            settle_hash=row[11],
            request_hash=row[12],
            periods=(row[13], row[14], row[15]),
            created_at=row[16],
            expires_at=row[17],
            expired_at=row[18],
            route_id=row[19],
            counted_model=row[20],
        )

    def answer(self) -> ReservationAnswer:
        """The reserve answer, the same on every replay."""
        return {
            "reservation_id": self.id,
            "scope": self.scope,
            "held_micros": self.held_micros,
            "expires_at": iso(self.expires_at),
            "state": self.state,
        }

    def settle_answer(self) -> SettleAnswer:
        return {
            "reservation_id": self.id,
            "state": self.state,
            "outcome": self.outcome,
            "charged_micros": self.charged_micros,
            "released_micros": self.released_micros,
            "overrun_micros": self.overrun_micros,
            "late": self.expired_at is not None,
        }


class Gate(Protocol):
    """Something that may refuse a reservation (breakers, attempt caps) and learns from settles.

    ``models`` are the models the reservation names (``model`` and ``estimate.model``).

    ``before_reserve`` raises a GuardError to refuse (what it wrote is kept);
    the ``after_*`` methods run in the same transaction as the change they follow.
    A class that subclasses it keeps the methods it does not need as they are here:
    nothing refused, nothing learnt.
    """

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
        return None

    def after_reserve(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        return None

    def after_settle(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        return None

    def after_release(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        return None


def iso(ts: float) -> str:
    """POSIX seconds as ISO 8601 UTC with a ``Z``."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")
