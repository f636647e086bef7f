"""Routing on the labelled set: accuracy, under/over-routing, cost, and latency per decision.

The set is ``tests/data/routing_eval.jsonl``: realistic agent tasks, each with the
intent and the tier it needs. Labelling guide: *small* is classification,
extraction, a short summary, reformatting, a short translation, a lookup;
*medium* is drafting, ordinary code, a multi-step tool workflow, analysis, and
small-tier work that is long or needs judgement; *large* is long-horizon planning,
hard reasoning (proofs, races, root causes), high-stakes review, and any work whose
mistakes are legal, financial, medical or security incidents.

Splits: ``dev`` was written first and the lexicon tuned on it; ``holdout`` was
written after the first classifier and then also tuned on; ``blind`` was written
after all tuning and scored once (78% accuracy, 5% under-routing; 80% and 2% after
two generic vocabulary additions). Quote ``blind`` for what a new fleet can expect.

Cost assumes every task costs the tokens its *needed* tier implies (below), whatever
model it goes to, so the ratio isolates the price of the model chosen. Latency is
the in-process decision (rules, classifier, floors, cap, fallbacks) and, separately,
the decision plus its record in SQLite (one INSERT and the promotion lookup in an
open transaction, without the shared group commit), each as wall time and as this
thread's CPU time: on a shared machine a preempted call shows milliseconds of wall
time for a fraction of that in CPU, so the target (p99 ≤ 1 ms) is judged on CPU time
and the load average is printed beside it. The floor, measured in the same run, is
only lowercasing and splitting the task into words.

Run: ``.venv/bin/python -m bench.routing_eval [--rounds 20] [--errors] [--check]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guards.clock import ManualClock
from guards.config import Policy
from guards.migrations import apply_migrations, connect
from guards.prices import PriceTable
from guards.routing import Router, RouteRequest, RoutingService
from guards.routing.tiers import TIERS
from guards.scopes import Scope
from guards.store import Tx

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "routing_eval.jsonl"
# assumed tokens (input, output) of a task by the tier it needs, or the same for every task
TOKENS_BY_TIER = {"small": (1_500, 300), "medium": (4_000, 1_000), "large": (12_000, 3_000)}
TOKENS_FLAT = {"small": (2_000, 500), "medium": (2_000, 500), "large": (2_000, 500)}
TARGET_P99_MS = 1.0
_WORD = re.compile(r"[a-z0-9]+")


def load(split: str | None = None) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if split is None or r["split"] == split]


def quality(router: Router, rows: list[dict[str, str]]) -> dict[str, Any]:
    scope = Scope("acme/eval/agent")
    right = under = over = intent_right = 0
    confusion: Counter[tuple[str, str]] = Counter()
    errors = []
    for row in rows:
        d = router.decide(task=row["task"], scope=scope)
        confusion[(row["tier"], d.tier)] += 1
        intent_right += d.intent == row["intent"]
        need, got = TIERS.index(row["tier"]), TIERS.index(d.tier)
        right += need == got
        under += got < need
        over += got > need
        if need != got:
            errors.append((row["tier"], d.tier, row["task"][:90], d.reason))
    n = len(rows)
    return {
        "n": n,
        "accuracy": right / n,
        "under": under / n,
        "over": over / n,
        "intent_accuracy": intent_right / n,
        "confusion": confusion,
        "errors": errors,
    }


def cost(
    router: Router,
    rows: list[dict[str, str]],
    prices: PriceTable,
    tokens: dict[str, tuple[int, int]],
) -> dict[str, float]:
    scope = Scope("acme/eval/agent")
    largest = router.model_of("large")
    routed = always_largest = oracle = 0
    mix: Counter[str] = Counter()
    for row in rows:
        tin, tout = tokens[row["tier"]]
        d = router.decide(task=row["task"], scope=scope)
        mix[d.tier] += 1
        routed += prices.cost(d.model, input_tokens=tin, output_tokens=tout)
        always_largest += prices.cost(largest, input_tokens=tin, output_tokens=tout)
        needed = router.model_of(row["tier"])  # type: ignore[arg-type]
        oracle += prices.cost(needed, input_tokens=tin, output_tokens=tout)
    total = sum(sum(tokens[r["tier"]]) for r in rows)
    return {
        "routed_vs_largest": routed / always_largest,
        "oracle_vs_largest": oracle / always_largest,
        "blended_usd_per_mtok": routed / total,  # micros per token = USD per million tokens
        "largest_usd_per_mtok": always_largest / total,
        **{f"share_{t}": mix[t] / len(rows) for t in TIERS},
    }


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50_ms": q[49] / 1e6, "p99_ms": q[98] / 1e6, "max_ms": ordered[-1] / 1e6}


def timed(
    fn: Callable[[str], object], tasks: list[str], rounds: int
) -> dict[str, dict[str, float]]:
    """Wall time and this thread's CPU time per call.

    On a busy machine the wall time includes waiting for a core (a preempted call
    shows ~4 ms of wall time and ~0.2 ms of CPU); the CPU time is the code's own cost.
    """
    for task in tasks:  # warm caches and the word cache
        fn(task)
    wall, cpu = [], []
    wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for _ in range(rounds):
        for task in tasks:
            w, c = wall_clock(), cpu_clock()
            fn(task)
            cpu.append(cpu_clock() - c)
            wall.append(wall_clock() - w)
    return {"wall": percentiles(wall), "cpu": percentiles(cpu)}


def latency(rounds: int) -> dict[str, dict[str, dict[str, float]]]:
    tasks = [r["task"] for r in load()]
    policy = Policy()
    router = Router(policy.routing)
    scope = Scope("acme/eval/agent")
    floor = timed(lambda t: _WORD.findall(t.lower()), tasks, rounds)
    decide = timed(lambda t: router.decide(task=t, scope=scope), tasks, rounds)
    # the worst case: tasks at the 100,000-character limit (the classifier reads 5,000)
    huge = [("lorem ipsum " * 8400)[: 99_000 - len(t)] + "\n" + t for t in tasks[::4]]
    longest = timed(lambda t: router.decide(task=t, scope=scope), huge, rounds)
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock()
        conn = connect(Path(tmp) / "eval.db")
        apply_migrations(conn, now=clock.now())
        service = RoutingService(policy=policy, remaining_fraction=lambda tx, s: 0.5)
        conn.execute("BEGIN")
        tx = Tx(conn, clock)

        def record(task: str) -> object:
            return service.route(tx, RouteRequest.parse(scope=scope.path, task=task))

        recorded = timed(record, tasks, max(1, rounds // 4))
        conn.execute("ROLLBACK")
        conn.close()
    return {
        "floor (split into words)": floor,
        "decide": decide,
        "decide, 100 KB tasks": longest,
        "decide + record": recorded,
    }


def report(args: argparse.Namespace) -> bool:
    policy = Policy()
    router = Router(policy.routing)
    prices = PriceTable()
    print(f"routing evaluation on {DATA.name}")
    print("split     tasks  tier acc  under  over  intent acc")
    for split in ("dev", "holdout", "blind", None):
        q = quality(router, load(split))
        print(
            f"{split or 'all':<9} {q['n']:>5}  {q['accuracy']:>8.1%}  {q['under']:>5.1%}"
            f"  {q['over']:>4.1%}  {q['intent_accuracy']:>10.1%}"
        )
    everything = quality(router, load())
    print("\nconfusion (needed → routed):")
    for need in TIERS:
        cells = "  ".join(f"{got} {everything['confusion'][(need, got)]:>3}" for got in TIERS)
        print(f"  {need:<6} → {cells}")

    c = cost(router, load(), prices, TOKENS_FLAT)
    print(
        f"\nmix: small {c['share_small']:.0%} · medium {c['share_medium']:.0%}"
        f" · large {c['share_large']:.0%}"
    )
    for label, tokens in (
        ("same tokens for every task (2,000 in, 500 out)", TOKENS_FLAT),
        ("tokens by needed tier (1.5k/0.3k, 4k/1k, 12k/3k)", TOKENS_BY_TIER),
    ):
        c = cost(router, load(), prices, tokens)
        print(f"cost, {label}:")
        print(
            f"  {c['routed_vs_largest']:.1%} of always {router.model_of('large')}"
            f" ({1 / c['routed_vs_largest']:.1f}x cheaper; a perfect router:"
            f" {c['oracle_vs_largest']:.1%}); blended ${c['blended_usd_per_mtok']:.2f}"
            f" per million tokens against ${c['largest_usd_per_mtok']:.2f}"
        )

    lat = latency(args.rounds)
    load_1m = os.getloadavg()[0]
    print(
        f"\nlatency per decision, in process ({args.rounds} rounds; load average {load_1m:.2f}"
        f" on {os.cpu_count()} cores):"
    )
    floor_p99 = lat["floor (split into words)"]["cpu"]["p99_ms"]
    for name, both in lat.items():
        for kind in ("cpu", "wall"):
            p = both[kind]
            ratio = p["p99_ms"] / floor_p99 if floor_p99 else float("nan")
            print(
                f"  {name:<26} {kind:<4} p50 {p['p50_ms'] * 1000:7.1f} µs"
                f"   p99 {p['p99_ms'] * 1000:7.1f} µs   max {p['max_ms'] * 1000:8.1f} µs"
                f"   p99 {ratio:6.1f}x the floor's cpu"
            )
    worst = max(lat[k]["cpu"]["p99_ms"] for k in ("decide + record", "decide, 100 KB tasks"))
    met = worst <= TARGET_P99_MS
    print(
        f"target p99 ≤ {TARGET_P99_MS:g} ms per decision (cpu, worst row {worst * 1000:.0f} µs):"
        f" {'met' if met else 'NOT met'}"
    )

    if args.errors:
        print("\nmisrouted (needed → routed):")
        for need, got, task, reason in everything["errors"]:
            print(f"  {need} → {got}: {task!r}\n      {reason}")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20, help="timing rounds over the set")
    parser.add_argument("--errors", action="store_true", help="list every misrouted task")
    parser.add_argument("--check", action="store_true", help="exit 1 when p99 misses 1 ms")
    args = parser.parse_args(argv)
    met = report(args)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
