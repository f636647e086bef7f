"""``nightshift ledger verify``: recompute every total from the journal and compare.

Checks, for every reservation, that the journal's held and spent money matches its
state, that only a settled one is charged, that ``held = charged - overrun +
released`` once it is over, and that its credits (``/agent credit``, :mod:`guards.credits`)
never take back more than it was charged, nor from one a settle did not charge; and for
every scope and day, that the stored counters equal the journal's sums less the credits
(a credit lowers spent money on the day its reservation's hold was taken, as the settle
raised it); and for every namespace, model and day, that what ``model_usage_daily``
says the namespace spent and holds on the model equals the same sums over the
reservations that counted that model (``counted_model``: the hold's, undated).

It reads in one transaction, so a server writing meanwhile does not matter: WAL gives
the check one consistent snapshot of the file.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

from guards.scopes import Scope

__all__ = ["VerifyReport", "verify"]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    reservations: int
    journal_rows: int
    usage_rows: int
    problems: list[str]
    model_usage_rows: int = 0  # rows of model_usage_daily checked

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(conn: sqlite3.Connection) -> VerifyReport:
    """Recompute every usage counter and every reservation's money from the journal.

    Reads one snapshot (a read transaction), so it may run beside a running server.
    """
    conn.execute("BEGIN")  # deferred: the first SELECT fixes the snapshot, no lock is taken
    try:
        return _verify(conn)
    finally:
        conn.execute("COMMIT")


# Every reservation with its journal rows (found on their index), in the order of its id:
# read as a stream, so that a year of calls is checked in constant memory (audit25 year
# F3: every call was kept in memory, 1.6 KB each), and summed here (SQLite's SUM stops
# the check past 2^63, where a broken ledger must be reported: review25 M1).
_RESERVATIONS = (
    "SELECT r.id, r.state, r.held_micros, r.charged_micros, r.released_micros,"
    " r.overrun_micros, j.held_delta, j.spent_delta"
    " FROM reservations r LEFT JOIN journal j ON j.reservation_id = r.id ORDER BY r.id"
)
_ORPHANS = (
    "SELECT j.reservation_id FROM journal j LEFT JOIN reservations r"
    " ON r.id = j.reservation_id WHERE r.id IS NULL"
)
# The journal's rows by the day their hold was taken, and the stored counters in the same
# order: compared one day at a time (summed here: Python's integers do not overflow, and a
# counter past 2^63 must be caught, not stop the check).
_JOURNAL_DAYS = (
    "SELECT r.period_day, r.scope, j.spent_delta, j.held_delta"
    " FROM journal j JOIN reservations r ON r.id = j.reservation_id ORDER BY r.period_day"
)
_STORED_DAYS = "SELECT day, scope, spent_micros, held_micros FROM usage_daily ORDER BY day"
# Every credit with its reservation's day and scope (NULL: no such reservation). Credits are
# made by hand, a few a month: read whole, and summed here (past 2^63 must be reported).
_CREDITS = (
    "SELECT c.reservation_id, c.amount_micros, r.period_day, r.scope"
    " FROM credits c LEFT JOIN reservations r ON r.id = c.reservation_id"
)


def _verify(conn: sqlite3.Connection) -> VerifyReport:
    problems: list[str] = []
    credited: dict[str, int] = defaultdict(int)  # by reservation
    credit_days: dict[str, list[tuple[str, int]]] = defaultdict(list)  # day: (scope, amount)
    for res_id, amount, day, scope in conn.execute(_CREDITS):
        if day is None:
            problems.append(f"credit for {res_id}: no such reservation")
            continue
        credited[res_id] += amount
        credit_days[day].append((scope, amount))
    reservations = 0
    for _, group in groupby(conn.execute(_RESERVATIONS), key=itemgetter(0)):
        rows = list(group)  # its few journal rows (one with None: it has none)
        net_held = sum(row[6] or 0 for row in rows)
        net_spent = sum(row[7] or 0 for row in rows)
        reservations += 1
        res_id, state, held, charged, released, overrun = rows[0][:6]
        problems += _reservation_problems(
            res_id, state, held, charged, released, overrun, net_held, net_spent
        )
        problems += _credit_problems(res_id, state, charged, credited.get(res_id, 0))
    journal_rows = int(next(iter(conn.execute("SELECT COUNT(*) FROM journal")))[0])
    problems += [f"journal row for {r[0]}: no such reservation" for r in conn.execute(_ORPHANS)]
    usage_rows = 0
    journal = groupby(conn.execute(_JOURNAL_DAYS), key=itemgetter(0))
    stored = groupby(conn.execute(_STORED_DAYS), key=itemgetter(0))
    want_day, want_rows = next(journal, (None, iter(())))
    have_day, have_rows = next(stored, (None, iter(())))
    days_credited = iter(sorted(credit_days))
    credit_day = next(days_credited, None)
    while want_day is not None or have_day is not None or credit_day is not None:
        day = min(d for d in (want_day, have_day, credit_day) if d is not None)
        want: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        if credit_day == day:
            for scope, amount in credit_days[day]:
                for path in Scope(scope).ancestors():
                    want[path][0] -= amount
            credit_day = next(days_credited, None)
        if want_day == day:
            for _, scope, spent, held in want_rows:
                for path in Scope(scope).ancestors():
                    cell = want[path]
                    cell[0] += spent
                    cell[1] += held
            want_day, want_rows = next(journal, (None, iter(())))
        have: dict[str, list[Any]] = {}
        if have_day == day:
            have = {scope: [spent, held] for _, scope, spent, held in have_rows}
            usage_rows += len(have)
            have_day, have_rows = next(stored, (None, iter(())))
        problems += _day_problems(day, want, have)
    model_rows, model_problems = _model_usage_problems(conn)
    problems += model_problems
    return VerifyReport(reservations, journal_rows, usage_rows, problems, model_rows)


# What each namespace spent and holds on each model, per day, from the journal and the
# credits (a few rows per namespace, model and day: summed here in a dict), and as stored.
_MODEL_JOURNAL = (
    "SELECT r.scope, r.counted_model, r.period_day, j.spent_delta, j.held_delta"
    " FROM journal j JOIN reservations r ON r.id = j.reservation_id"
    " WHERE r.counted_model IS NOT NULL"
    " UNION ALL SELECT r.scope, r.counted_model, r.period_day, -c.amount_micros, 0"
    " FROM credits c JOIN reservations r ON r.id = c.reservation_id"
    " WHERE r.counted_model IS NOT NULL"
)
_MODEL_STORED = "SELECT namespace, model, day, spent_micros, held_micros FROM model_usage_daily"


def _model_usage_problems(conn: sqlite3.Connection) -> tuple[int, list[str]]:
    """The stored counters per namespace, model and day against the journal's sums."""
    want: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for scope, model, day, spent, held in conn.execute(_MODEL_JOURNAL):
        cell = want[(scope.partition("/")[0], model, day)]
        cell[0] += spent
        cell[1] += held
    have = {
        (ns, model, day): [spent, held]
        for ns, model, day, spent, held in conn.execute(_MODEL_STORED)
    }
    problems = []
    for key in sorted(set(want) | set(have)):
        should, stored = want.get(key, [0, 0]), have.get(key, [0, 0])
        namespace, model, day = key
        if not all(type(amount) is int for amount in stored):  # a sum SQLite made a REAL
            problems.append(
                f"model usage {namespace} {model} on {day}: stored spent,held {stored} are not"
                f" whole micro-dollars (an integer overflowed); the journal says {should}"
            )
        elif should != stored:
            problems.append(
                f"model usage {namespace} {model} on {day}: stored spent,held {stored};"
                f" the journal says {should}"
            )
    return len(have), problems


def _reservation_problems(
    res_id: str,
    state: str,
    held: int,
    charged: int,
    released: int,
    overrun: int,
    net_held: int,
    net_spent: int,
) -> list[str]:
    problems = []
    want_held = held if state == "held" else 0
    if net_held != want_held:
        problems.append(f"{res_id}: the journal holds {net_held}, state {state} wants {want_held}")
    if net_spent != charged:
        problems.append(f"{res_id}: the journal spent {net_spent}, charged {charged}")
    if state in ("held", "released", "expired") and charged:  # only a settle charges
        problems.append(f"{res_id}: state {state} but charged {charged}; only a settle charges")
    if state != "held" and held != charged - overrun + released:
        problems.append(
            f"{res_id}: held {held} is not charged {charged} - overrun {overrun}"
            f" + released {released}"
        )
    return problems


def _credit_problems(res_id: str, state: str, charged: int, credited: int) -> list[str]:
    """A reservation's credits: never more than its charge, and only of a settle's."""
    if not credited:
        return []
    if state != "settled":
        return [
            f"{res_id}: state {state} but credited {credited};"
            " only a settle's charge can be taken back"
        ]
    if credited > charged:
        return [f"{res_id}: credited {credited}, more than its charge {charged}"]
    return []


def _day_problems(day: str, want: dict[str, list[int]], have: dict[str, list[Any]]) -> list[str]:
    """The stored counters of one day against the journal's sums (by scope)."""
    problems = []
    for scope in sorted(set(want) | set(have)):
        should = want.get(scope, [0, 0])
        stored = have.get(scope, [0, 0])
        if not all(type(amount) is int for amount in stored):  # a sum SQLite made a REAL
            problems.append(
                f"usage {scope} on {day}: stored spent,held {stored} are not whole"
                f" micro-dollars (an integer overflowed); the journal says {should}"
            )
        elif should != stored:
            problems.append(
                f"usage {scope} on {day}: stored spent,held {stored}; the journal says {should}"
            )
    return problems
