"""Random interleavings of reserve / settle / release / expire never overspend a level.

The ledger runs on a real SQLite database with every migration applied; the
transaction wrapper is the same ``Tx`` the writer thread hands out.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guards.clock import ManualClock
from guards.config import WINDOWS, parse_policy
from guards.errors import BudgetExceeded, Conflict
from guards.ledger import Ledger, ReserveRequest, SettleRequest
from guards.migrations import apply_migrations
from guards.store import Tx
from guards.tokens import Token
from guards.usage import UsageCache, periods_at
from guards.verify import verify

SCOPES = [
    "acme/alice/bot/c1",
    "acme/alice/bot/c2",
    "acme/alice/other",
    "acme/bob/bot/c1",
    "acme/bob/bot",
]
POLICY = parse_policy(
    {
        "timezone": "Europe/Berlin",
        "budgets": {
            "defaults": {
                "agent": {"day": "0.50", "total": "2.00"},
                "conversation": {"total": "0.30"},
            },
            "scopes": {"acme": {"day": "1.00", "week": "3.00"}, "acme/alice": {"month": "1.50"}},
        },
        "reservations": {"ttl_seconds": 600},
    }
)

op = st.one_of(
    st.tuples(st.just("reserve"), st.sampled_from(SCOPES), st.integers(1, 250_000)),
    st.tuples(st.just("settle"), st.integers(0, 50), st.integers(0, 300_000)),
    st.tuples(st.just("release"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("advance"), st.sampled_from([1, 60, 599, 601, 3600, 86400]), st.just(0)),
)


def _fresh() -> tuple[sqlite3.Connection, Ledger, ManualClock]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(conn, now=0.0)
    return conn, Ledger(policy=POLICY), ManualClock(1_767_225_600.0 - 3600)


def _run(conn: sqlite3.Connection, clock: ManualClock, fn):  # one write, like the writer does
    conn.execute("BEGIN IMMEDIATE")
    tx = Tx(conn, clock)
    conn.execute("SAVEPOINT op")
    try:
        result = fn(tx)
    except (BudgetExceeded, Conflict) as exc:
        tx.flush()
        conn.execute("RELEASE op")
        conn.execute("COMMIT")
        for cb in tx.after_commit:
            cb()
        return exc
    tx.flush()
    conn.execute("RELEASE op")
    conn.execute("COMMIT")
    for cb in tx.after_commit:
        cb()
    return result


def _check_limits(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """spent + held - flagged overruns <= limit, for every cell, recomputed from disk."""
    overrun: dict[tuple[str, str, str], int] = defaultdict(int)
    cells: set[tuple[str, str, str]] = set()
    for scope, over, day, week, month in conn.execute(
        "SELECT scope, overrun_micros, period_day, period_week, period_month FROM reservations"
    ):
        keys = (day, week, month, "all")
        parts = scope.split("/")
        for i in range(len(parts)):
            for w, window in enumerate(WINDOWS):
                cells.add(("/".join(parts[: i + 1]), window, keys[w]))
                overrun[("/".join(parts[: i + 1]), window, keys[w])] += over
    tx = Tx(conn, ManualClock())
    fresh = UsageCache()  # from the daily rows on disk, not the ledger's own cache
    for scope, window, period in cells:
        spent, held = fresh.get(tx, scope, window, period)
        assert held >= 0
        assert (spent, held) == ledger.counters.get(tx, scope, window, period)
        limit = ledger.limits(tx, scope).get(window)
        if limit is not None:
            assert spent + held - overrun[(scope, window, period)] <= limit, (scope, window, period)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=60))
def test_no_level_is_ever_overspent_and_money_is_conserved(ops):
    conn, ledger, clock = _fresh()
    token = Token("tok_test", "acme")
    conn.execute(
        "INSERT INTO tokens (id, scope, hash, created_at) VALUES ('tok_test', 'acme', 'h', 0)"
    )
    reservations: list[str] = []
    for n, (kind, a, b) in enumerate(ops):
        if kind == "reserve":
            req = ReserveRequest(scope=a, idempotency_key=f"k{n}", max_cost_micros=b)
            result = _run(conn, clock, lambda tx, req=req: ledger.reserve(tx, token=token, req=req))
            if not isinstance(result, Exception):
                reservations.append(result[1]["reservation_id"])
        elif kind in ("settle", "release") and reservations:
            rid = reservations[a % len(reservations)]
            if kind == "settle":
                req2 = SettleRequest(outcome="success", actual_cost_micros=b)
                _run(
                    conn,
                    clock,
                    lambda tx, rid=rid, req2=req2: ledger.settle(
                        tx, token=token, res_id=rid, req=req2
                    ),
                )
            else:
                _run(conn, clock, lambda tx, rid=rid: ledger.release(tx, token=token, res_id=rid))
        elif kind == "advance":
            clock.advance(a)
            _run(conn, clock, ledger.expire_due)
        _check_limits(conn, ledger)
    report = verify(conn)
    assert report.ok, report.problems
    # every micro held was charged (up to the hold) or released, once the holds are over
    clock.advance(10**6)
    _run(conn, clock, ledger.expire_due)
    for held, charged, overrun, released in conn.execute(
        "SELECT held_micros, charged_micros, overrun_micros, released_micros FROM reservations"
    ):
        assert held == charged - overrun + released
    assert conn.execute("SELECT COALESCE(SUM(held_micros), 0) FROM usage_daily").fetchone()[0] == 0
    assert verify(conn).ok


def test_periods_follow_the_namespace_time_zone():
    from zoneinfo import ZoneInfo

    # the night Berlin moves to summer time
    berlin = ZoneInfo("Europe/Berlin")
    assert periods_at(1_774_742_400.0, berlin) == ("2026-03-29", "2026-W13", "2026-03")  # 00:00Z
    # 22:56 UTC on the 31st of March is already April 1st in Berlin
    assert periods_at(1_775_000_000.0 - 2200, berlin)[0] == "2026-04-01"
    assert periods_at(1_775_000_000.0 - 2200, ZoneInfo("UTC"))[0] == "2026-03-31"


def test_the_last_days_of_december_can_be_in_the_next_year_s_first_week():
    """audit27 mutation F2: the week key takes the ISO year, not the calendar year."""
    from zoneinfo import ZoneInfo

    utc = ZoneInfo("UTC")
    assert periods_at(1_767_009_600.0, utc) == ("2025-12-29", "2026-W01", "2025-12")  # Mon
    assert periods_at(1_735_646_400.0, utc) == ("2024-12-31", "2025-W01", "2024-12")  # Tue
    assert periods_at(1_609_416_000.0, utc) == ("2020-12-31", "2020-W53", "2020-12")  # Thu
    assert periods_at(1_609_502_400.0, utc) == ("2021-01-01", "2020-W53", "2021-01")  # Fri


@given(
    st.floats(1_700_000_000, 1_900_000_000),
    st.sampled_from(
        ["Europe/Berlin", "Asia/Kathmandu", "America/St_Johns", "UTC", "Australia/Lord_Howe"]
    ),
)
def test_period_clock_agrees_with_periods_at(ts, name):
    from zoneinfo import ZoneInfo

    from guards.usage import PeriodClock

    tz = ZoneInfo(name)
    clock = PeriodClock(tz)
    assert clock(ts) == periods_at(ts, tz)
    assert clock(ts + 1) == periods_at(ts + 1, tz)


# -- the same through the real store: concurrent waves share batches ------------------

wave_op = st.one_of(
    st.tuples(st.just("reserve"), st.sampled_from(SCOPES), st.integers(1, 250_000)),
    st.tuples(st.just("settle"), st.integers(0, 50), st.integers(0, 300_000)),
    st.tuples(st.just("release"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("crash"), st.sampled_from(SCOPES), st.integers(1, 250_000)),
    st.tuples(st.just("usage"), st.sampled_from(SCOPES), st.just(0)),
)


wave = st.lists(wave_op, max_size=12)


class _Crash(RuntimeError):
    """An operation that dies after the ledger wrote: its writes must roll back."""


async def _waves(path: str, waves: list[tuple[int, list[tuple[str, object, int]]]]) -> None:
    from guards.scopes import Scope
    from guards.store import Store

    clock = ManualClock(1_767_225_600.0 - 3600)
    store = await Store.open(path, clock=clock)
    ledger = Ledger(policy=POLICY)
    store.before_batch.append(ledger.expire_due)
    store.on_rollback.append(ledger.forget)
    token = Token("tok_test", "acme")
    await store.write(
        lambda tx: tx.execute(
            "INSERT INTO tokens (id, scope, hash, created_at) VALUES ('tok_test', 'acme', 'h', 0)"
        )
    )
    held: list[str] = []
    n = 0

    def crash(tx: Tx, req: ReserveRequest) -> None:
        ledger.reserve(tx, token=token, req=req)
        raise _Crash("died after reserving")

    def operation(kind: str, a: object, b: int, key: str) -> Callable[[Tx], Any] | None:
        if kind in ("reserve", "crash"):
            req = ReserveRequest(scope=str(a), idempotency_key=key, max_cost_micros=b)
            if kind == "crash":
                return lambda tx: crash(tx, req)
            return lambda tx: ledger.reserve(tx, token=token, req=req)
        if kind == "usage":
            scope = Scope(str(a))
            return lambda tx: ledger.usage(tx, scope, now=tx.clock.now())
        if not held:
            return None
        rid = held[int(str(a)) % len(held)]
        if kind == "settle":
            sreq = SettleRequest(outcome="success", actual_cost_micros=b)
            return lambda tx: ledger.settle(tx, token=token, res_id=rid, req=sreq)
        return lambda tx: ledger.release(tx, token=token, res_id=rid)

    try:
        for advance, ops in waves:
            clock.advance(advance)
            calls: list[Awaitable[Any]] = []
            for kind, a, b in ops:
                n += 1
                fn = operation(kind, a, b, f"k{n}")
                if fn is not None:
                    calls.append(store.write(fn))
            for result in await asyncio.gather(*calls, return_exceptions=True):
                if isinstance(result, tuple) and result[0]:
                    held.append(result[1]["reservation_id"])
                elif isinstance(result, BaseException):
                    assert isinstance(result, BudgetExceeded | Conflict | _Crash), result
        # the ledger's sums (kept across batches) agree with the rows on disk
        conn = sqlite3.connect(path)
        try:
            _check_limits(conn, ledger)
            report = verify(conn)
            assert report.ok, report.problems
        finally:
            conn.close()
    finally:
        await store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.sampled_from([0, 1, 601]), st.lists(wave_op, max_size=12)), max_size=6)
)
def test_concurrent_batches_with_failures_keep_every_sum_exact(tmp_path_factory, waves):
    path = str(tmp_path_factory.mktemp("waves") / "ledger.db")
    asyncio.run(_waves(path, waves))
