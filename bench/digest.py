"""The daily digest over a big database: 1,000,000 charges and 100,000 validation rejections.

Synthetic rows are bulk-inserted (executemany) into a fresh database with every
migration applied: one namespace, 20 users, 200 agents, 10,000 conversations;
charges spread over the 7 days of the chart (``--one-day``: all on the digest's day,
the worst case), 100,000 validation rejections, and some breaker transitions,
alerts, heartbeats and job runs; and an outage of claude-haiku-4-5's breaker on the
digest's day (13:00-13:40, a failed trial in it), which the namespace's calls met, so
the digest reads the reservations of its window (review27 R3 M1). The ledger's
counters (``usage_daily``, ``model_usage_daily``) and the digest's
(``digest_model_daily``) are computed from the inserted charges, as the ledger and
the digest's gate would have kept them settle by settle. Reservation ids carry their
time, as the ledger's do. Then the digest
of the last day is built end to end (:meth:`DigestBuilder.build`: queries, alert and
heartbeat figures, computation, Block Kit, chart PNG), several times.

The floor, measured in the same run: one full scan summing every charge. Also
measured: what the digest's gate adds to each settle (one upsert).

Run: ``python -m bench.digest [--charges 1000000] [--one-day]``. Target: <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.digest.build import DigestBuilder, collect
from bot.digest.queries import day_bounds
from bot.digest.rollup import DigestRollup, rebuild
from guards.clock import ManualClock
from guards.config import Policy
from guards.ledger import Ledger, Reservation
from guards.ledger_rows import first_reservation_id
from guards.migrations import apply_migrations, connect
from guards.model_budgets import counted_model
from guards.prices import PriceTable
from guards.store import Store, Tx
from guards.usage import periods_at

TZ = ZoneInfo("Europe/Berlin")
DAY = date(2026, 1, 11)
NS = "acme"
USERS, AGENTS_PER_USER, CONVERSATIONS = 20, 10, 10_000
MODELS = (("claude-haiku-4-5", "small", 58), ("claude-sonnet-4-5", "medium", 31),
          ("claude-opus-4-1", "large", 11))  # fmt: skip
TARGET_SECONDS = 1.0


def _agents() -> list[str]:
    return [f"{NS}/u{u:02d}/agent-{a:02d}" for u in range(USERS) for a in range(AGENTS_PER_USER)]


def fill(path: Path, *, charges: int, rejections: int, one_day: bool, seed: int = 7) -> None:
    """Bulk-insert the synthetic fleet's rows."""
    rnd = random.Random(seed)
    conn = connect(path)
    apply_migrations(conn, now=time.time())
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-500000")  # 500 MB: bulk index inserts stay in memory
    agents = _agents()
    convs = [f"{rnd.choice(agents)}/c{i:05d}" for i in range(CONVERSATIONS)]
    days = [DAY] if one_day else [DAY - timedelta(days=i) for i in range(7)]
    bounds = [day_bounds(d, TZ) for d in days]
    weights = [w for _, _, w in MODELS]
    conn.execute("BEGIN")
    scopes: list[tuple[str, str | None, int]] = [(NS, None, 1)]
    scopes += [(f"{NS}/u{u:02d}", NS, 2) for u in range(USERS)]
    scopes += [(a, a.rsplit("/", 1)[0], 3) for a in agents]
    scopes += [(c, c.rsplit("/", 1)[0], 4) for c in convs]
    t0 = bounds[-1][0] - 86400
    conn.executemany(
        "INSERT INTO scopes (path, parent, depth, created_at) VALUES (?, ?, ?, ?)",
        [(p, parent, depth, t0) for p, parent, depth in scopes],
    )
    usage: dict[tuple[str, str], int] = defaultdict(int)
    model_usage: dict[tuple[str, str], int] = defaultdict(int)  # (model, day) -> micros
    rows: list[tuple[Any, ...]] = []
    for i in range(charges):
        start, end = bounds[i % len(bounds)]
        created = rnd.uniform(start, end - 120)
        scope = rnd.choice(convs) if i % 5 == 0 else rnd.choice(agents)
        model, _tier, _ = rnd.choices(MODELS, weights)[0]
        charged = rnd.randint(100, 40_000)
        held = charged if i % 100 else max(1, charged // 2)  # 1% overruns
        over = charged - held
        outcome = "failure" if i % 33 == 0 else "success"
        day, week, month = periods_at(created, TZ)
        rid = f"{first_reservation_id(created)}{i:010x}"  # the time first, as the ledger's
        rows.append(
            (rid, "tok_bench", f"k{i}", "h", scope, None, model, "settled", held, charged,
             max(0, held - charged), over, outcome, f"{charged}:{outcome}", f"rt_{i:x}",
             day, week, month, created, created + 600, created + 30)
        )  # fmt: skip
        parts = scope.split("/")
        for depth in range(1, len(parts) + 1):
            usage[("/".join(parts[:depth]), day)] += charged
        model_usage[(counted_model(model) or "", day)] += charged
        if len(rows) >= 50_000:
            _flush(conn, rows)
    _flush(conn, rows)
    rebuild(conn)
    conn.executemany(
        "INSERT INTO usage_daily (scope, day, spent_micros, held_micros) VALUES (?, ?, ?, 0)",
        [(s, d, v) for (s, d), v in usage.items()],
    )
    conn.executemany(
        "INSERT INTO model_usage_daily (namespace, model, day, spent_micros, held_micros)"
        " VALUES (?, ?, ?, ?, 0)",
        [(NS, m, d, v) for (m, d), v in model_usage.items()],
    )
    streams = [(a, name) for a in agents for name in ("posts", "replies")]
    conn.executemany(
        "INSERT INTO validation_streams (id, agent, name, created_at) VALUES (?, ?, ?, ?)",
        [(i + 1, a, n, t0) for i, (a, n) in enumerate(streams)],
    )
    reasons = ("duplicate",) * 6 + ("near_duplicate",) * 3 + ("runaway",)
    vrows = []
    for i in range(rejections):
        start, end = bounds[i % len(bounds)]
        sid = rnd.randrange(len(streams))
        agent, name = streams[sid]
        reason = reasons[i % len(reasons)]
        vrows.append(
            (rnd.uniform(start, end), sid + 1, agent, name, reason,
             None if reason == "runaway" else 0, "a preview of the item", 10)
        )  # fmt: skip
    conn.executemany(
        "INSERT INTO validation_rejections (at, stream_id, scope, stream, reason, item_index,"
        " preview, batch_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vrows,
    )
    start, end = bounds[0]
    trans: list[tuple[Any, ...]] = []
    for i, agent in enumerate(agents[:60]):
        at = rnd.uniform(start, end - 7200)
        trans.append((agent, "closed", "open", "5 failures in a row", "failures", "{}", "x", at))
        trans.append((agent, "open", "closed", "trial ok", None, "{}", "x", at + 60 * (i + 1)))
    # haiku's breaker on the digest's day: tripped at 13:00, a failed trial, closed at 13:40
    outage = datetime(DAY.year, DAY.month, DAY.day, 13, tzinfo=TZ).timestamp()
    haiku = "model:claude-haiku-4-5"
    trans += [
        (haiku, "closed", "open", "5 failures, 3 agents", "failures", "{}", "breaker", outage),
        (haiku, "open", "half_open", "trial", None, "{}", "breaker", outage + 600),
        (haiku, "half_open", "open", "trial failed", "trial", "{}", "breaker", outage + 660),
        (haiku, "open", "half_open", "trial", None, "{}", "breaker", outage + 1800),
        (haiku, "half_open", "closed", "trial passed", None, "{}", "breaker", outage + 2400),
    ]  # fmt: skip
    conn.executemany(
        "INSERT INTO breaker_transitions (scope, from_state, to_state, reason, trip, figures,"
        " actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        trans,
    )
    conn.executemany(
        "INSERT INTO alerts (fingerprint, kind, scope, tier, first_at, last_at, facts, acked_at)"
        " VALUES (?, ?, ?, ?, ?, ?, '{}', ?)",
        [
            (f"k{i}", "overrun", agents[i % 200], ("P0", "P1", "P2")[i % 3], t, t,
             t + 300 if i % 2 else None)
            for i in range(300)
            for t in [rnd.uniform(start, end)]
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO heartbeats (scope, last_seen, first_seen) VALUES (?, ?, ?)",
        [(a, end, t0) for a in agents],
    )
    conn.executemany(
        "INSERT INTO heartbeat_gaps (scope, down_from, down_until) VALUES (?, ?, ?)",
        [(agents[i], start + 3600 * i, start + 3600 * i + 900) for i in range(20)],
    )
    conn.executemany(
        "INSERT INTO job_runs (id, job, scope, scheduled_for, decided_at, state, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (f"run_{i:x}", f"job-{i % 20}", agents[i % 20], t, t,
             "skipped" if i % 10 == 0 else "succeeded", "overlap" if i % 10 == 0 else None)
            for i in range(5000)
            for t in [start + i * 17.0]
        ],
    )  # fmt: skip
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _flush(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(
        "INSERT INTO reservations (id, token_id, idempotency_key, request_hash, scope, task_id,"
        " model, state, held_micros, charged_micros, released_micros, overrun_micros, outcome,"
        " settle_hash, route_id, period_day, period_week, period_month, created_at, expires_at,"
        " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    rows.clear()


def gate_cost(path: Path, n: int = 100_000) -> float:
    """Seconds per settle that the digest's gate adds (its upsert), in one transaction.

    Each settle is written on its own (a batch of one): the worst case.
    """
    conn = connect(path)
    rollup = DigestRollup()
    tx = Tx(conn, ManualClock())
    res = Reservation(
        id="res_x", token_id="t", scope=f"{NS}/u00/agent-00", task_id=None,
        model="claude-haiku-4-5", state="settled", held_micros=1000, charged_micros=900,
        released_micros=100, overrun_micros=0, outcome="success", settle_hash=None,
        request_hash="h", periods=("2026-02-01", "2026-W05", "2026-02"), created_at=0.0,
        expires_at=1.0, expired_at=None, route_id=None, counted_model="claude-haiku-4-5",
    )  # fmt: skip
    try:
        conn.execute("BEGIN")
        started = time.perf_counter()
        for _ in range(n):
            rollup.after_settle(tx, reservation=res, now=0.0)
            tx.flush()
        spent = time.perf_counter() - started
        conn.execute("ROLLBACK")
        return spent / n
    finally:
        conn.close()


def floor(path: Path) -> float:
    """One full scan summing every charge: the least any digest over them could cost."""
    conn = connect(path)
    try:
        started = time.perf_counter()
        conn.execute("SELECT COUNT(*), SUM(charged_micros) FROM reservations").fetchone()
        return time.perf_counter() - started
    finally:
        conn.close()


async def measure(path: Path, runs: int) -> tuple[list[float], list[float], str]:
    policy = Policy.model_validate(
        {"timezone": "Europe/Berlin", "budgets": {"scopes": {NS: {"day": "5000.00"}}}}
    )
    clock = ManualClock(datetime(DAY.year, DAY.month, DAY.day, 9, tzinfo=TZ).timestamp() + 86400)
    prices = PriceTable()
    store = await Store.open(path, clock=clock)
    builder = DigestBuilder(
        store=store, policy=policy, ledger=Ledger(policy=policy, prices=prices), prices=prices,
        clock=clock,
    )  # fmt: skip
    totals, reads = [], []
    text = ""
    try:
        for _ in range(runs):
            started = time.perf_counter()
            await asyncio.to_thread(collect, str(path), namespace=NS, day=DAY, tz=TZ, clock=clock)
            reads.append(time.perf_counter() - started)
            started = time.perf_counter()
            built = await builder.build(NS, DAY)
            totals.append(time.perf_counter() - started)
            text = built.text
    finally:
        await store.close()
    return totals, reads, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--charges", type=int, default=1_000_000)
    parser.add_argument("--rejections", type=int, default=100_000)
    parser.add_argument("--one-day", action="store_true", help="every charge on the digest's day")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--show", action="store_true", help="print the digest text")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        started = time.perf_counter()
        fill(path, charges=args.charges, rejections=args.rejections, one_day=args.one_day)
        filled = time.perf_counter() - started
        size = path.stat().st_size / 1e6
        spread = "all on the digest's day" if args.one_day else "over 7 days"
        print(
            f"== digest: {args.charges:,} charges {spread}, {args.rejections:,} validation "
            f"rejections, {os.cpu_count()} cores; database {size:.0f} MB, filled in {filled:.0f} s"
        )
        scan = floor(path)
        per_settle = gate_cost(path)
        totals, reads, text = asyncio.run(measure(path, args.runs))
    best, median = min(totals), statistics.median(totals)
    print(f"floor: full scan of every charge          {scan * 1000:8.1f} ms")
    print(f"digest reads (one snapshot, all queries)  {min(reads) * 1000:8.1f} ms")
    print(
        f"digest end to end (reads, alerts, heartbeats, figures, blocks, chart) "
        f"best {best * 1000:.1f} ms, median {median * 1000:.1f} ms, "
        f"ratio to floor {median / scan:.2f}; target <= {TARGET_SECONDS * 1000:.0f} ms: "
        f"{'OK' if median <= TARGET_SECONDS else 'MISSED'}"
    )
    print(f"the digest's gate adds {per_settle * 1e6:.1f} µs to each settle (one upsert)")
    if args.show:
        print(text)
    return 0 if median <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
