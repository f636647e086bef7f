"""Random interleavings of reserve / settle / release / expire / ``/agent release``
(``end_hold``) / credit with random models never leave a namespace's spend on a model
past its budget (``budgets.models``), except for overruns a settle flags, never hold
less than nothing on a model, and ``ledger verify`` recomputes every model counter. Some
holds are an old server's (taken during an upgrade: a model named, never counted for it,
``counted_model`` NULL): ending them moves nothing on any model (review23 H1).

The ledger runs on a real SQLite database with every migration applied, as in
``test_ledger_invariants``, whose one-write helper it reuses.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from guards.clock import ManualClock
from guards.config import WINDOWS, parse_policy
from guards.errors import BudgetExceeded, Conflict
from guards.ledger import Ledger, ReserveRequest, SettleRequest
from guards.migrations import apply_migrations
from guards.model_budgets import counted_model
from guards.reservation import Estimate
from guards.store import Tx
from guards.tokens import Token
from guards.usage import UsageCache, model_key
from guards.verify import verify
from tests.unit.test_ledger_invariants import _run

SCOPES = ["acme/alice/bot/c1", "acme/alice/other", "acme/bob/bot", "globex/carol/bot"]
# None: a reservation naming no model (neither counted nor checked)
MODELS = [
    "claude-opus-4-1",
    "Claude-Opus-4-1-20250805",
    "claude-opus-4-1-latest",
    "gpt-4o",
    "GPT-4o-2024-08-06",
    "claude-haiku-4-5",
    None,
]
POLICY = parse_policy(
    {
        "timezone": "Europe/Berlin",
        "budgets": {
            "scopes": {"acme": {"day": "2.00"}, "globex": {"timezone": "Asia/Kathmandu"}},
            "models": {
                "claude-opus-4-1": {"day": "0.25", "week": "0.60"},
                "gpt-4o": {"total": "0.40"},
            },
        },
        "reservations": {"ttl_seconds": 600},
    }
)

reserve = st.tuples(
    st.just("reserve"),
    st.sampled_from(SCOPES),
    st.integers(100_000, 250_000),  # large: a model's budget fills in a few calls
    st.sampled_from(MODELS),
    st.booleans(),  # named as estimate.model (priced), else as model
)
op = st.one_of(
    reserve,
    reserve,  # as many reserves as the rest together: budgets fill up
    st.tuples(
        st.just("reserve"),
        st.sampled_from(SCOPES),
        st.integers(1, 250_000),
        st.sampled_from(MODELS),
        st.booleans(),  # named as estimate.model (priced), else as model
    ),
    st.tuples(
        st.just("settle"),
        st.integers(0, 50),
        st.integers(0, 300_000),
        st.sampled_from([None, "gpt-4o-mini", "claude-opus-4-1"]),  # the usage's model
        st.just(False),
    ),
    st.tuples(st.just("release"), st.integers(0, 50), st.just(0), st.just(None), st.just(False)),
    st.tuples(st.just("end_hold"), st.integers(0, 50), st.just(0), st.just(None), st.just(False)),
    st.tuples(  # an old server's hold (an upgrade's window): named, never counted
        st.just("reserve_old"),
        st.sampled_from(SCOPES),
        st.integers(1, 250_000),
        st.sampled_from([m for m in MODELS if m]),
        st.just(False),
    ),
    st.tuples(st.just("credit"), st.integers(0, 50), st.just(0), st.just(None), st.just(False)),
    st.tuples(
        st.just("advance"),
        st.sampled_from([1, 60, 601, 3600, 86400, 7 * 86400]),
        st.just(0),
        st.just(None),
        st.just(False),
    ),
)


def _check_model_limits(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """spent + held - flagged overruns <= limit for every model, namespace and window,
    recomputed from the rows on disk; the ledger's cached sums agree with them."""
    overrun: dict[tuple[str, str, str], int] = defaultdict(int)
    cells: set[tuple[str, str, str]] = set()
    for scope, model, over, day, week, month in conn.execute(
        "SELECT scope, counted_model, overrun_micros, period_day, period_week, period_month"
        " FROM reservations WHERE counted_model IS NOT NULL"
    ):
        key = model_key(scope.partition("/")[0], model)
        for window, period in zip(WINDOWS, (day, week, month, "all"), strict=True):
            cells.add((key, window, period))
            overrun[(key, window, period)] += over
    negative = "SELECT * FROM model_usage_daily WHERE held_micros < 0 OR spent_micros < 0"
    assert conn.execute(negative).fetchall() == []  # no hold taken off that was never put on
    tx = Tx(conn, ManualClock())
    fresh = UsageCache()  # from model_usage_daily on disk, not the ledger's own cache
    for key, window, period in cells:
        spent, held = fresh.get(tx, key, window, period)
        assert held >= 0
        assert (spent, held) == ledger.counters.get(tx, key, window, period)
        model = key.partition("\x00model:")[2]
        limit = POLICY.budgets.models.get(model, {}).get(window)
        if limit is not None:
            assert spent + held - overrun[(key, window, period)] <= limit, (key, window, period)


def _reserve(
    scope: str, amount: int, model: str | None, as_estimate: bool, key: str
) -> ReserveRequest:
    if as_estimate and model is not None:  # priced: ~amount/10 input tokens of the model
        estimate = Estimate(model=model, input_tokens=amount // 10 + 1, max_output_tokens=0)
        return ReserveRequest(scope=scope, idempotency_key=key, estimate=estimate)
    return ReserveRequest(scope=scope, idempotency_key=key, max_cost_micros=amount, model=model)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=10, max_size=60))
def test_no_model_budget_is_ever_overspent_and_verify_recomputes_it(ops):
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(conn, now=0.0)
    ledger, clock = Ledger(policy=POLICY), ManualClock(1_767_225_600.0 - 3600)
    conn.executemany(
        "INSERT INTO tokens (id, scope, hash, created_at) VALUES (?, ?, ?, 0)",
        [("t1", "acme", "h1"), ("t2", "globex", "h2")],
    )
    tokens = {"acme": Token("t1", "acme"), "globex": Token("t2", "globex")}
    held: list[tuple[str, Token]] = []
    refused_by_model = 0
    for n, (kind, a, b, model, flag) in enumerate(ops):
        if kind == "reserve":
            token = tokens[str(a).partition("/")[0]]
            req = _reserve(str(a), b, model, flag, f"k{n}")
            result = _run(
                conn, clock, lambda tx, r=req, t=token: ledger.reserve(tx, token=t, req=r)
            )
            if isinstance(result, BudgetExceeded):
                refused_by_model += result.level == "model"
                if result.level == "model":  # the model it names is the one reserved
                    assert result.model == counted_model(model) and result.scope == a.split("/")[0]
            elif not isinstance(result, Exception):
                held.append((result[1]["reservation_id"], token))
        elif kind == "reserve_old":
            token = tokens[str(a).partition("/")[0]]
            rid = _old_server_hold(conn, clock, ledger, token, str(a), b, str(model), f"k{n}")
            if rid is not None:
                held.append((rid, token))
        elif kind in ("settle", "release", "end_hold", "credit") and held:
            rid, token = held[int(a) % len(held)]
            sreq = (
                SettleRequest(outcome="success", usage_model=model, input_tokens=b // 3)
                if model
                else SettleRequest(outcome="success", actual_cost_micros=b)
            )
            _run(
                conn,
                clock,
                lambda tx, k=kind, r=rid, t=token, s=sreq: _end(ledger, tx, k, r, t, s),
            )
        elif kind == "advance":
            clock.advance(int(a))
            _run(conn, clock, ledger.expire_due)
        _check_model_limits(conn, ledger)
    event(f"refused by a model's budget: {min(refused_by_model, 3)}+")
    report = verify(conn)
    assert report.ok, report.problems
    clock.advance(10**6)  # every hold ends: nothing is held on any model
    _run(conn, clock, ledger.expire_due)
    assert (
        conn.execute("SELECT COALESCE(SUM(held_micros), 0) FROM model_usage_daily").fetchone()[0]
        == 0
    )
    assert verify(conn).ok


def _old_server_hold(
    conn: sqlite3.Connection,
    clock: ManualClock,
    ledger: Ledger,
    token: Token,
    scope: str,
    amount: int,
    model: str,
    key: str,
) -> str | None:
    """A hold as a server older than budgets per model took it while ``migrate`` ran
    beside it: the levels and the journal moved, ``model`` named, ``counted_model`` NULL
    and no model counter touched (None: the levels refused it)."""
    req = ReserveRequest(scope=scope, idempotency_key=key, max_cost_micros=amount)
    result = _run(conn, clock, lambda tx: ledger.reserve(tx, token=token, req=req))
    if isinstance(result, Exception):
        return None
    res_id = str(result[1]["reservation_id"])
    conn.execute("UPDATE reservations SET model = ? WHERE id = ?", (model, res_id))
    return res_id


def _end(
    ledger: Ledger, tx: Tx, kind: str, res_id: str, token: Token, req: SettleRequest
) -> object:
    """Settle, release, end (``/agent release``) or credit one reservation (as its
    token, or an operator)."""
    if kind == "settle":
        return ledger.settle(tx, token=token, res_id=res_id, req=req)
    if kind == "release":
        return ledger.release(tx, token=token, res_id=res_id)
    if kind == "end_hold":
        return ledger.end_hold(tx, res_id=res_id, actor="U0ADMIN")
    return _credit(ledger, tx, res_id)


def _credit(ledger: Ledger, tx: Tx, res_id: str) -> object:
    """Take back a micro-dollar of a settled charge (nothing: not settled, or too little)."""
    row = tx.one("SELECT state, charged_micros FROM reservations WHERE id = ?", (res_id,))
    if row[0] != "settled" or row[1] < 2:
        return None
    try:
        return ledger.credit(tx, res_id=res_id, amount_micros=1, reason="test", actor="U1")
    except Conflict:
        return None


def test_a_settle_naming_another_model_charges_the_hold_s_model():
    """The hold counted claude-opus-4-1; usage names gpt-4o: the charge lands on opus, and
    verify agrees although the reservation's ``model`` now says gpt-4o."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(conn, now=0.0)
    ledger, clock = Ledger(policy=POLICY), ManualClock(1_767_225_600.0)
    conn.execute("INSERT INTO tokens (id, scope, hash, created_at) VALUES ('t1', 'acme', 'h', 0)")
    token = Token("t1", "acme")
    req = ReserveRequest(
        scope="acme/a/b",
        idempotency_key="k",
        max_cost_micros=200_000,
        model="claude-opus-4-1-20250805",
    )
    _, answer = _run(conn, clock, lambda tx: ledger.reserve(tx, token=token, req=req))
    rid = answer["reservation_id"]
    sreq = SettleRequest(outcome="success", usage_model="gpt-4o", input_tokens=40_000)  # $0.10
    _run(conn, clock, lambda tx: ledger.settle(tx, token=token, res_id=rid, req=sreq))
    _run(
        conn,
        clock,
        lambda tx: ledger.credit(tx, res_id=rid, amount_micros=30_000, reason="r", actor="U1"),
    )
    rows = conn.execute("SELECT model, spent_micros, held_micros FROM model_usage_daily").fetchall()
    assert rows == [("claude-opus-4-1", 70_000, 0)]
    assert conn.execute("SELECT model, counted_model FROM reservations").fetchall() == [
        ("gpt-4o", "claude-opus-4-1")
    ]
    assert verify(conn).ok
    # a counter that disagrees with the journal is reported, naming namespace, model, day
    conn.execute("UPDATE model_usage_daily SET spent_micros = spent_micros + 1")
    problems = verify(conn).problems
    assert problems == [
        "model usage acme claude-opus-4-1 on 2026-01-01: stored spent,held [70001, 0];"
        " the journal says [70000, 0]"
    ]
