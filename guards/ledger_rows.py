"""The rows a reserve, a settle and a release write, and what a read of a reservation
names (a deferred row touching it makes the read wait for it): :class:`guards.ledger.Ledger`.
"""

from __future__ import annotations

import secrets

from guards.prices import undated
from guards.tx import Bulk

__all__ = [
    "INSERT_HOLD",
    "RELEASE",
    "SETTLE",
    "by_id",
    "by_key",
    "first_reservation_id",
    "reservation_id",
    "same_model",
]

# The rows a reserve, a settle and a release write, with the batch's others as it commits
# (a read of one in the same batch names it: see Tx.read_one).
INSERT_HOLD = Bulk(
    0,
    "INSERT INTO reservations (id, token_id, idempotency_key, request_hash, scope, task_id,"
    " model, state, held_micros, period_day, period_week, period_month, created_at,"
    " expires_at, route_id, counted_model) SELECT column1, column2, column3, column4,"
    " column5, column6, column7, 'held', column8, column9, column10, column11, column12,"
    " column13, column14, column15 FROM (VALUES ",
    15,
    ")",
)
SETTLE = Bulk(
    1,
    "UPDATE reservations SET state = 'settled', charged_micros = u.column2,"
    " released_micros = u.column3, overrun_micros = u.column4, outcome = u.column5,"
    " error = u.column6, settle_hash = u.column7, finished_at = u.column8,"
    " model = u.column9 FROM (VALUES ",
    9,
    ") AS u WHERE reservations.id = u.column1",
)
RELEASE = Bulk(
    1,
    "UPDATE reservations SET state = 'released', released_micros = held_micros,"
    " finished_at = u.column2 FROM (VALUES ",
    2,
    ") AS u WHERE reservations.id = u.column1",
)


def by_id(res_id: str) -> tuple[str, str]:
    """What a read of a reservation by its id names (a deferred row touching it waits)."""
    return ("id", res_id)


def by_key(token_id: str, key: str) -> tuple[str, str, str]:
    """What a read of a reservation by its idempotency key names: its token's use of it."""
    return ("token", token_id, key)


def reservation_id(now: float) -> str:
    """``res_`` + the time in milliseconds + 40 random bits.

    The time first puts new rows at the end of the index; the random bits make ids
    unguessable. No count in it: a tenant reading its own ids learns nothing of how
    many calls the others make.
    """
    return f"res_{max(0, int(now * 1000)):011x}{secrets.token_hex(5)}"


def first_reservation_id(at: float) -> str:
    """The least id of a reservation made at ``at`` or later: ids sort by the time they
    carry, so ``id >= first_reservation_id(t0) AND id < first_reservation_id(t1)`` reads
    the reservations of a span of time through the primary key (no index on the time).

    >>> first_reservation_id(1.5) < reservation_id(1.5) < first_reservation_id(1.501)
    True
    """
    return f"res_{max(0, int(at * 1000)):011x}"


def same_model(a: str, b: str) -> bool:
    """Whether two names are one model (``claude-haiku-4-5`` and its dated snapshot, in
    any case): a settle naming the model reserved keeps the reservation's name."""
    return undated(a) == undated(b)
