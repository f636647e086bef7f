"""``nightshift ledger verify``: recompute every total from the journal and compare.

Checks, for every reservation, that the journal's held and spent money matches its
state, that only a settled one is charged, and that ``held = charged - overrun +
released`` once it is over; and for
every scope and day, that the stored counters equal the journal's sums.

It reads in one transaction, so a server writing meanwhile does not matter: WAL gives
the check one consistent snapshot of the file.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass

from guards.scopes import Scope

__all__ = ["VerifyReport", "verify"]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    reservations: int
    journal_rows: int
    usage_rows: int
    problems: list[str]

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


def _verify(conn: sqlite3.Connection) -> VerifyReport:
    problems: list[str] = []
    res: dict[str, tuple[str, str, int, int, int, int, str]] = {}
    for row in conn.execute(
        "SELECT id, scope, state, held_micros, charged_micros, released_micros, overrun_micros,"
        " period_day FROM reservations"
    ):
        res[row[0]] = (row[1], row[2], row[3], row[4], row[5], row[6], row[7])
    net_held: dict[str, int] = defaultdict(int)
    net_spent: dict[str, int] = defaultdict(int)
    days: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    journal_rows = 0
    for res_id, held_delta, spent_delta in conn.execute(
        "SELECT reservation_id, held_delta, spent_delta FROM journal ORDER BY id"
    ):
        journal_rows += 1
        net_held[res_id] += held_delta
        net_spent[res_id] += spent_delta
        if res_id not in res:
            problems.append(f"journal row for {res_id}: no such reservation")
            continue
        scope, *_, day = res[res_id]
        for path in Scope(scope).ancestors():
            cell = days[(path, day)]
            cell[0] += spent_delta
            cell[1] += held_delta
    for res_id, (_, state, held, charged, released, overrun, _) in res.items():
        want_held = held if state == "held" else 0
        if net_held[res_id] != want_held:
            problems.append(
                f"{res_id}: the journal holds {net_held[res_id]}, state {state} wants {want_held}"
            )
        if net_spent[res_id] != charged:
            problems.append(f"{res_id}: the journal spent {net_spent[res_id]}, charged {charged}")
        if state in ("held", "released", "expired") and charged:  # only a settle charges
            problems.append(f"{res_id}: state {state} but charged {charged}; only a settle charges")
        if state != "held" and held != charged - overrun + released:
            problems.append(
                f"{res_id}: held {held} is not charged {charged} - overrun {overrun}"
                f" + released {released}"
            )
    stored = {
        (r[0], r[1]): [r[2], r[3]]
        for r in conn.execute("SELECT scope, day, spent_micros, held_micros FROM usage_daily")
    }
    for key in sorted(set(stored) | set(days)):
        want = days.get(key, [0, 0])
        have = stored.get(key, [0, 0])
        if not all(type(amount) is int for amount in have):  # a sum SQLite made a REAL
            problems.append(
                f"usage {key[0]} on {key[1]}: stored spent,held {have} are not whole"
                f" micro-dollars (an integer overflowed); the journal says {want}"
            )
        elif want != have:
            problems.append(
                f"usage {key[0]} on {key[1]}: stored spent,held {have}; the journal says {want}"
            )
    return VerifyReport(len(res), journal_rows, len(stored), problems)
