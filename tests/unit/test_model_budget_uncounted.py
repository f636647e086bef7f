"""A hold its model's budget never counted (``reservations.counted_model`` NULL) moves
nothing on that model when it ends: not by a release, a settle, ``/agent release``
(``end_hold``), its expiry nor a credit (review23 model budgets H1).

Such holds are the calls of an upgrade's window: ``nightshift migrate`` ran beside the
old server, which went on inserting reservations that name a model but, knowing nothing
of budgets per model, left ``counted_model`` NULL and added nothing to
``model_usage_daily``. The new code read the model again from ``model`` and took those
holds off a counter that never had them: the budget's ``held`` went below zero (room it
did not have) and ``ledger verify`` failed.

Real SQLite file, every migration applied; the rows are made as the old server made them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from guards.clock import ManualClock
from guards.config import parse_policy
from guards.ledger import Ledger, ReserveRequest, SettleRequest
from guards.migrations import apply_migrations
from guards.tokens import Token
from guards.verify import verify
from tests.unit.test_ledger_invariants import _run

POLICY = parse_policy({"budgets": {"models": {"claude-opus-4-1": {"day": "4.00"}}}})
NOW = 1_767_225_600.0 + 3600
TOKEN = Token("t1", "acme")


def _db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, now=0.0)
    conn.execute("INSERT INTO tokens (id, scope, hash, created_at) VALUES ('t1', 'acme', 'h', 0)")
    return conn


def _reserve(conn: sqlite3.Connection, clock: ManualClock, ledger: Ledger, key: str, **kw) -> str:
    req = ReserveRequest(scope="acme/alice/bot", idempotency_key=key, max_cost_micros=400_000, **kw)
    _, answer = _run(conn, clock, lambda tx: ledger.reserve(tx, token=TOKEN, req=req))
    return str(answer["reservation_id"])


def _old_server_hold(conn: sqlite3.Connection, clock: ManualClock, ledger: Ledger, key: str) -> str:
    """A hold as a server older than budgets per model took it: every level and the
    journal moved, ``model`` named, ``counted_model`` NULL, no model counter touched."""
    res_id = _reserve(conn, clock, ledger, key)  # naming no model: no model counter moves
    conn.execute(
        "UPDATE reservations SET model = 'Claude-Opus-4-1-20250805' WHERE id = ?", (res_id,)
    )
    return res_id


def _opus(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
    return conn.execute(
        "SELECT model, spent_micros, held_micros FROM model_usage_daily WHERE namespace = 'acme'"
    ).fetchall()


def test_a_hold_never_counted_for_its_model_moves_nothing_on_it_as_it_ends(tmp_path):
    conn = _db(tmp_path / "upgrade.db")
    clock, ledger = ManualClock(NOW), Ledger(policy=POLICY)
    counted = _reserve(conn, clock, ledger, "new", model="claude-opus-4-1")  # the new server's
    released, settled, ended, expired = (
        _old_server_hold(conn, clock, ledger, f"old{n}") for n in range(4)
    )
    assert _opus(conn) == [("claude-opus-4-1", 0, 400_000)]
    assert verify(conn).ok

    _run(conn, clock, lambda tx: ledger.release(tx, token=TOKEN, res_id=released))
    sreq = SettleRequest(outcome="success", actual_cost_micros=100_000, usage_model=None)
    _run(conn, clock, lambda tx: ledger.settle(tx, token=TOKEN, res_id=settled, req=sreq))
    _run(conn, clock, lambda tx: ledger.end_hold(tx, res_id=ended, actor="U0ADMIN"))
    _run(
        conn,
        clock,
        lambda tx: ledger.credit(tx, res_id=settled, amount_micros=50_000, reason="r", actor="U1"),
    )
    assert _opus(conn) == [("claude-opus-4-1", 0, 400_000)]  # only the counted hold, still
    report = verify(conn)
    assert report.ok, report.problems

    clock.advance(700)  # the last old hold's TTL (and the counted one's) ends
    _run(conn, clock, ledger.expire_due)
    states = dict(conn.execute("SELECT id, state FROM reservations").fetchall())
    assert [states[r] for r in (counted, released, settled, ended, expired)] == [
        "expired",
        "released",
        "settled",
        "expired",
        "expired",
    ]
    assert _opus(conn) == [("claude-opus-4-1", 0, 0)]
    report = verify(conn)
    assert report.ok, report.problems
    # the levels counted every hold, as the old server did: spent what the settle charged
    # less the credit
    assert conn.execute(
        "SELECT spent_micros, held_micros FROM usage_daily WHERE scope = 'acme'"
    ).fetchone() == (50_000, 0)


def test_a_settle_naming_the_hold_s_model_charges_no_model_the_hold_never_counted(tmp_path):
    """The settle's usage names the very model (priced): still not counted, since the hold
    was not; and the budget's room is what the counted holds leave."""
    conn = _db(tmp_path / "upgrade.db")
    clock, ledger = ManualClock(NOW), Ledger(policy=POLICY)
    old = _old_server_hold(conn, clock, ledger, "old")
    sreq = SettleRequest(
        outcome="success", usage_model="claude-opus-4-1", input_tokens=1000, output_tokens=100
    )
    _run(conn, clock, lambda tx: ledger.settle(tx, token=TOKEN, res_id=old, req=sreq))
    assert _opus(conn) == []
    assert verify(conn).ok
    # $4.00 of room: ten holds of $0.40 fit, the eleventh is refused by the model's budget
    results = [
        _run(
            conn,
            clock,
            lambda tx, n=n: ledger.reserve(
                tx,
                token=TOKEN,
                req=ReserveRequest(
                    scope="acme/alice/bot",
                    idempotency_key=f"n{n}",
                    max_cost_micros=400_000,
                    model="claude-opus-4-1",
                ),
            ),
        )
        for n in range(11)
    ]
    assert [isinstance(r, tuple) for r in results] == [True] * 10 + [False]
    assert getattr(results[-1], "level", None) == "model"
