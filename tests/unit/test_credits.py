"""Credits (``/agent credit``) against the books: ``ledger verify`` counts them, catches a
credit the counters did not take or one past its charge, and random settles and credits
keep it OK without a reservation's credits ever exceeding its charge.

A real SQLite database with every migration applied; the same ``Tx`` the writer hands out.
"""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guards.errors import Conflict, GuardError, InvalidInput
from guards.ledger import Ledger, ReserveRequest, SettleRequest
from guards.store import Tx
from guards.tokens import Token
from guards.verify import verify
from tests.unit.test_ledger_invariants import SCOPES, _check_limits, _fresh

TOKEN = Token("tok_test", "acme")


def _write(conn: sqlite3.Connection, clock, fn):  # one write, as the writer runs it
    conn.execute("BEGIN IMMEDIATE")
    tx = Tx(conn, clock)
    try:
        result = fn(tx)
    except GuardError as exc:  # checked before anything was written
        conn.execute("ROLLBACK")
        return exc
    tx.flush()
    conn.execute("COMMIT")
    return result


def _books():
    conn, ledger, clock = _fresh()
    conn.execute(
        "INSERT INTO tokens (id, scope, hash, created_at) VALUES ('tok_test', 'acme', 'h', 0)"
    )
    return conn, ledger, clock


def _spend(conn, ledger: Ledger, clock, scope: str, key: str, micros: int, held: int = 1000):
    req = ReserveRequest(scope=scope, idempotency_key=key, max_cost_micros=held)
    reserved = _write(conn, clock, lambda tx: ledger.reserve(tx, token=TOKEN, req=req))
    if isinstance(reserved, GuardError):  # the policy's budgets refused it
        return None
    rid: str = reserved[1]["reservation_id"]
    settle = SettleRequest(outcome="success", actual_cost_micros=micros)
    _write(conn, clock, lambda tx: ledger.settle(tx, token=TOKEN, res_id=rid, req=settle))
    return rid


def _credit(conn, ledger: Ledger, clock, rid: str, micros: int | None):
    return _write(
        conn,
        clock,
        lambda tx: ledger.credit(tx, res_id=rid, amount_micros=micros, reason="r", actor="U1"),
    )


def test_verify_counts_credits_and_catches_one_the_counters_did_not_take():
    conn, ledger, clock = _books()
    rid = _spend(conn, ledger, clock, "acme/alice/bot", "a", 400_000_000)
    done = _credit(conn, ledger, clock, rid, 399_600_000)
    assert done.net_micros == 400_000
    assert verify(conn).ok, verify(conn).problems
    # a credit row the counters never took (written by hand): every level is off by it
    conn.execute(
        "INSERT INTO credits (at, reservation_id, amount_micros, actor, reason)"
        " VALUES (0, ?, 100, 'x', 'by hand')",
        (rid,),
    )
    problems = verify(conn).problems
    assert len(problems) == 3, problems
    assert problems[0].startswith("usage acme on ")
    assert "the journal says [399900, 0]" in problems[0]


def test_verify_catches_credits_past_the_charge_and_of_no_settle():
    conn, ledger, clock = _books()
    rid = _spend(conn, ledger, clock, "acme/alice/bot", "a", 1_000)
    req = ReserveRequest(scope="acme/alice/bot", idempotency_key="h", max_cost_micros=5)
    held = _write(conn, clock, lambda tx: ledger.reserve(tx, token=TOKEN, req=req))[1]
    for res_id, amount in ((rid, 1_001), (held["reservation_id"], 5)):
        conn.execute(
            "INSERT INTO credits (at, reservation_id, amount_micros, actor, reason)"
            " VALUES (0, ?, ?, 'x', 'by hand')",
            (res_id, amount),
        )
        conn.execute(
            "UPDATE usage_daily SET spent_micros = spent_micros - ?"
            " WHERE scope IN ('acme', 'acme/alice', 'acme/alice/bot')",
            (amount,),
        )
    problems = verify(conn).problems
    assert sorted(problems) == sorted(
        [
            f"{rid}: credited 1001, more than its charge 1000",
            f"{held['reservation_id']}: state held but credited 5; only a settle's charge"
            " can be taken back",
        ]
    )


def test_credits_are_append_only():
    conn, ledger, clock = _books()
    rid = _spend(conn, ledger, clock, "acme/alice/bot", "a", 1_000)
    _credit(conn, ledger, clock, rid, 10)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE credits SET amount_micros = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM credits")


def test_refusals_write_nothing():
    conn, ledger, clock = _books()
    rid = _spend(conn, ledger, clock, "acme/alice/bot", "a", 1_000)
    before = conn.execute("SELECT * FROM usage_daily ORDER BY scope").fetchall()
    assert isinstance(_credit(conn, ledger, clock, rid, 1_001), InvalidInput)
    assert isinstance(_credit(conn, ledger, clock, rid, 0), InvalidInput)
    assert isinstance(_credit(conn, ledger, clock, rid, -1), InvalidInput)
    no_reason = _write(
        conn,
        clock,
        lambda tx: ledger.credit(tx, res_id=rid, amount_micros=1, reason=" ", actor="U1"),
    )
    assert isinstance(no_reason, InvalidInput) and no_reason.field == "reason"
    assert conn.execute("SELECT * FROM usage_daily ORDER BY scope").fetchall() == before
    assert conn.execute("SELECT COUNT(*) FROM credits").fetchone()[0] == 0


op = st.one_of(
    st.tuples(st.just("spend"), st.sampled_from(SCOPES), st.integers(0, 400_000)),
    st.tuples(st.just("credit"), st.integers(0, 30), st.integers(0, 400_000)),
    st.tuples(st.just("all"), st.integers(0, 30), st.just(0)),
    st.tuples(st.just("advance"), st.sampled_from([60, 3600, 86_400, 8 * 86_400]), st.just(0)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=40))
def test_random_settles_and_credits_keep_the_books_and_never_credit_past_a_charge(ops):
    conn, ledger, clock = _books()
    spent: list[str] = []
    for n, (kind, a, b) in enumerate(ops):
        if kind == "spend":
            rid = _spend(conn, ledger, clock, str(a), f"k{n}", int(b), held=1)
            spent += [rid] if rid else []
        elif kind in ("credit", "all") and spent:
            rid = spent[int(a) % len(spent)]
            result = _credit(conn, ledger, clock, rid, None if kind == "all" else int(b))
            assert not isinstance(result, GuardError) or isinstance(
                result, Conflict | InvalidInput
            ), result
        elif kind == "advance":
            clock.advance(int(a))
        _check_limits(conn, ledger)  # the ledger's cached sums equal the rows on disk
    report = verify(conn)
    assert report.ok, report.problems
    over = conn.execute(
        "SELECT r.id FROM reservations r JOIN credits c ON c.reservation_id = r.id"
        " GROUP BY r.id HAVING SUM(c.amount_micros) > MAX(r.charged_micros)"
    ).fetchall()
    assert over == []
    assert (
        conn.execute("SELECT COUNT(*) FROM usage_daily WHERE spent_micros < 0").fetchone()[0] == 0
    )
