"""Benchmark: validate 100-item batches against a stream of 1,000,000 remembered items.

Run: ``.venv/bin/python -m bench.dedup [--items N] [--method minhash|simhash] [--default-gc]``.

1. Generates N distinct synthetic headlines (made-up words with English letter
   frequencies, Zipf-distributed, 6-14 words, sentence case, the odd counter) and
   sketches them on two processes, and 2,000 letters of one 2 KB template (another order
   number and customer name each: ``--letters``);
2. bulk-loads them into two streams of a fresh SQLite file (migrations applied), as the
   service writes them: with the preview and the text their features are read from, so
   a near-duplicate's candidates go through the exact re-check;
3. opens the real Store and Validator and times the first batch (the index loads
   from the rows), then batches of 100 items: 60 new, 20 exact duplicates
   (case and white space changed) and 20 near-duplicates (a counter, a stop word,
   punctuation, two words swapped, a prefix) of remembered items, each timed from
   ``prepare`` to the committed ``store.write`` (fsync included), with the CPU
   time it took and the garbage collector's pauses. The collector is set up as
   ``nightshift run`` sets it (bot/cli_run.py: ``gc.freeze()`` after start-up and
   ``gc.set_threshold(20_000, 50, 100)``); ``--default-gc`` leaves Python's defaults;
4. times batches of 100 new items (insert throughput);
5. times batches of the template stream, 90 new letters and 10 re-posts of remembered
   ones each (the re-check's worst case: every item has 8 candidates of 2 KB), next to
   its floor, the index's candidate look-ups of the same items alone;
6. scans all N sketches by brute force (pure Python) for a sample of the same
   queries, checks that it finds what the index found, and prints the speed-up.

Targets: p99 ≤ 50 ms per 100-item batch at 1M items, ≥ 20× faster than brute force
(the standard mix; the template stream has none).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.dedup_data import Dataset, Headlines, Letters, generate
from guards.clock import ManualClock
from guards.config import Validation
from guards.migrations import connect
from guards.scopes import Scope
from guards.store import Store, Tx
from guards.validation import Batch, Item, Outcome, Validator, minhash
from guards.validation.engine import sketcher_for
from guards.validation.features import features
from guards.validation.normalize import prepare
from guards.validation.recheck import MAX_RECHECKS
from guards.validation.sketchers import Sketcher

__all__ = ["main"]

AGENT = "bench/load/rss-bot"
STREAM = "posts"
LETTERS = "letters"
BATCH = 100


def _bulk_load(db: Path, streams: list[tuple[str, Dataset]], *, kind: str, at: float) -> None:
    """The streams' rows in one transaction, secondary indexes built after the insert."""
    conn = connect(db)
    conn.execute("PRAGMA synchronous=OFF")  # a bulk load, not the service's durability
    conn.execute("PRAGMA cache_size=-262144")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
        " AND tbl_name = 'validation_items' AND sql IS NOT NULL"
    ).fetchall()
    conn.execute("BEGIN")
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    for stream_id, (name, data) in enumerate(streams, start=1):
        conn.execute(
            "INSERT INTO validation_streams (id, agent, name, created_at) VALUES (?, ?, ?, ?)",
            (stream_id, AGENT, name, at),
        )
        conn.executemany(
            "INSERT INTO validation_items (stream_id, at, exact, kind, sketch, feature_text,"
            " preview) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((stream_id, *row) for row in data.rows(at, kind)),
        )
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.close()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _near(text: str, rng: random.Random) -> str:
    """A trivially different re-publication of ``text``."""
    words = text.split(" ")
    kind = rng.randrange(5)
    if kind == 0:
        return text + f" ({rng.randint(2, 99)} comments)"
    if kind == 1:
        return "BREAKING: " + text
    if kind == 2 and len(words) > 3:
        i = rng.randrange(1, len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
        return " ".join(words)
    if kind == 3:
        return " ".join([*words[:2], "the", *words[2:]]) + "!!"
    return text.rstrip(".!?") + " - updated"


def _exact(text: str, rng: random.Random) -> str:
    return "  " + (text.upper() if rng.random() < 0.5 else text.lower()) + " \n"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float], label: str, note: str = "") -> str:
    p50, p99 = _percentile(values, 0.5) * 1e3, _percentile(values, 0.99) * 1e3
    top = max(values) * 1e3
    return f"  {label:<22}p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   max {top:7.1f} ms{note}"


class _GcWatch:
    """Full (generation 2) collections and their pauses while it is on."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._start = 0.0
        self.on = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2 or not self.on:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._start)


class _Runner:
    """Validates batches through the real Store, timing each."""

    def __init__(
        self, store: Store, validator: Validator, clock: ManualClock, stream: str = STREAM
    ) -> None:
        self.stream = stream
        self.store = store
        self.validator = validator
        self.clock = clock
        self.scope = Scope.parse(AGENT)
        self.total: list[float] = []
        self.write: list[float] = []
        self.cpu: list[float] = []

    async def __call__(self, texts: list[str]) -> Outcome:
        validator = self.validator
        t0, c0 = time.perf_counter(), time.thread_time()
        prepared = validator.prepare(Batch(AGENT, self.stream, [Item(t) for t in texts]))
        t1, c1 = time.perf_counter(), time.thread_time()
        op_cpu = [0.0]

        def op(tx: Tx) -> Outcome:
            start = time.thread_time()  # the writer thread's own CPU time
            try:
                return validator.check(tx, scope=self.scope, batch=prepared)
            finally:
                op_cpu[0] = time.thread_time() - start

        out = await self.store.write(op)
        t2 = time.perf_counter()
        self.total.append(t2 - t0)
        self.write.append(t2 - t1)
        self.cpu.append(c1 - c0 + op_cpu[0])
        self.clock.advance(1)
        return out

    def reset(self) -> None:
        self.total, self.write, self.cpu = [], [], []


async def _bench(args: argparse.Namespace) -> bool:
    config = Validation.model_validate({"near_duplicate": {"method": args.method}})
    sketcher = sketcher_for(config)
    print(f"dedup bench: {args.items:,} remembered items, {sketcher.kind}, batches of {BATCH}")
    tmp = Path(tempfile.mkdtemp(prefix="nightshift-bench-"))
    try:
        return await _run(args, config, sketcher, tmp / "bench.db")
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp)


async def _run(args: argparse.Namespace, config: Validation, sketcher: Sketcher, db: Path) -> bool:
    """The benchmark; False when a verdict was wrong where it must not be."""
    started = time.perf_counter()
    data = generate(args.items, config, args.workers)
    letters = generate(args.letters, config, args.workers, what="letters")
    spent = time.perf_counter() - started
    print(
        f"  generated and sketched {len(data):>10,} items and {len(letters):,} letters"
        f" in {spent:.1f} s"
    )

    clock = ManualClock()
    store = await Store.open(db, clock=clock)  # applies the migrations
    await store.close()
    started = time.perf_counter()
    _bulk_load(db, [(STREAM, data), (LETTERS, letters)], kind=sketcher.kind, at=clock.now() - 3600)
    spent = time.perf_counter() - started
    rows = len(data) + len(letters)
    print(f"  bulk insert            {rows / spent:>10,.0f} rows/s ({spent:.1f} s)")

    store = await Store.open(db, clock=clock)
    validator = Validator(config)
    validator.attach(store)
    run = _Runner(store, validator, clock)
    fresh = Headlines(seed=10_000_019)
    rss = _rss_mb()
    await run([fresh() for _ in range(BATCH)])
    held = validator.memory_bytes()
    print(
        f"  first batch (loads the index) {run.total[0]:.2f} s; the index holds "
        f"{held / 1e6:.0f} MB for {validator.remembered():,} items ({held / len(data):.0f} "
        f"bytes each; resident +{_rss_mb() - rss:.0f} MB)"
    )
    if not args.default_gc:  # as nightshift run does once started (bot/cli_run.py)
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
    watch = _GcWatch()
    gc.callbacks.append(watch)

    rng = random.Random(7)
    run.reset()
    watch.on = True
    expected = ["new"] * 60 + ["duplicate"] * 20 + ["near_duplicate"] * 20
    right = {"new": 0, "duplicate": 0, "near_duplicate": 0}
    queries: list[tuple[str, bool]] = []  # (text, whether the index found a near-duplicate)
    for _ in range(args.batches):
        picks = rng.sample(data.samples, 40)
        batch = [fresh() for _ in range(60)]
        batch += [_exact(t, rng) for t in picks[:20]]
        batch += [_near(t, rng) for t in picks[20:]]
        out = await run(batch)
        reasons = {r.index: r.reason for r in out.rejected}
        for i, want in enumerate(expected):
            got = reasons.get(i, "new")
            right[want] += got == want
            if want == "near_duplicate" and len(queries) < args.brute_queries:
                queries.append((batch[i], got != "new"))
    watch.on = False
    gc_note = (
        f" ({args.batches} batches; {len(watch.pauses)} full GC pauses, "
        f"max {max(watch.pauses, default=0) * 1e3:.0f} ms, "
        f"{'Python default GC' if args.default_gc else 'GC set up as nightshift run does'})"
    )
    print(_ms(run.total, f"per {BATCH}-item batch", gc_note))
    print(_ms(run.write, "  the store.write", " (lookups, inserts, commit + fsync)"))
    print(
        _ms(
            run.cpu,
            "  CPU time",
            f" (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)",
        )
    )
    n = args.batches
    print(
        f"  verdicts: new accepted {right['new'] / (60 * n):.1%}, exact duplicates caught "
        f"{right['duplicate'] / (20 * n):.1%}, near-duplicates caught "
        f"{right['near_duplicate'] / (20 * n):.1%}"
    )

    p50 = _percentile(run.total, 0.5)
    run.reset()
    for _ in range(20):
        await run([fresh() for _ in range(BATCH)])
    print(
        f"  validated inserts      {20 * BATCH / sum(run.total):>10,.0f} items/s (new items only)"
    )
    await _letters(args, _Runner(store, validator, clock, LETTERS), len(letters), gc_note)
    await store.close()

    w = data.width
    stored = [int.from_bytes(data.sketches[i * w : (i + 1) * w], "big") for i in range(len(data))]
    started = time.perf_counter()
    agree = sum(_brute(stored, text, sketcher, config) == found for text, found in queries)
    per_query = (time.perf_counter() - started) / max(1, len(queries))
    print(
        f"  brute force            {per_query * 1e3:7.0f} ms per item = {per_query * BATCH:.1f} s "
        f"per batch ({len(queries)} queries; agrees with the index on {agree})"
    )
    print(
        f"  speed-up               {per_query * BATCH / p50:7.0f}x "
        "(a brute-force batch / the index's p50 batch)"
    )
    return right["duplicate"] == 20 * n and agree == len(queries)


async def _letters(args: argparse.Namespace, run: _Runner, held: int, gc_note: str) -> None:
    """The template stream: 90 new letters and 10 re-posts a batch, next to its floor."""
    make, rng = Letters(), random.Random(11)
    fresh = iter(range(held, held + 10**9))
    await run([make(next(fresh)) for _ in range(BATCH)])  # loads the stream's index
    run.reset()
    batches: list[list[str]] = []
    new = caught = 0
    for _ in range(args.letter_batches):
        batch = [make(next(fresh)) for _ in range(90)]
        batch += [_near(make(rng.randrange(held)), rng) for _ in range(10)]
        batches.append(batch)
        reasons = {r.index: r.reason for r in (await run(batch)).rejected}
        new += sum(i not in reasons for i in range(90))
        caught += sum(reasons.get(i) == "near_duplicate" for i in range(90, BATCH))
    validator = run.validator
    index = validator.indexes.peek((2, validator.sketcher.kind))  # (_bulk_load's ids)
    assert index is not None
    floor = []
    for batch in batches:
        prepared = validator.prepare(Batch(AGENT, LETTERS, [Item(t) for t in batch]))
        started = time.perf_counter()
        for p in prepared.items:
            index.nearest(p.sketch, not_before=0.0, limit=MAX_RECHECKS)
        floor.append(time.perf_counter() - started)
    size = sum(map(len, batches[0][:90])) / 90 / 1000
    n = args.letter_batches
    print(f"  letters of one template ({held:,} remembered, {size:.1f} KB each):")
    print(_ms(run.total, f"per {BATCH}-item batch", f" ({n} batches; 90 new, 10 re-posts)"))
    print(_ms(run.write, "  the store.write", " (the rest is prepare: features and sketches)"))
    print(_ms(floor, "  floor: look-ups", " (the index's candidates of the same items alone)"))
    print(f"  verdicts: new accepted {new / (90 * n):.1%}, re-posts caught {caught / (10 * n):.1%}")


def _brute(stored: list[int], text: str, sketcher: Sketcher, config: Validation) -> bool:
    """Is any remembered sketch a near-duplicate of ``text``'s? A full scan in pure Python
    over the sketches as integers, like the index's search for the best match (no early
    exit)."""
    query = int.from_bytes(sketcher.sketch(features(prepare(text), names=sketcher.names)), "big")
    hits = 0
    if config.near_duplicate.method == "simhash":
        limit = config.near_duplicate.max_distance
        for s in stored:
            hits += (s ^ query).bit_count() <= limit
        return hits > 0
    ones = int.from_bytes(b"\x01" * sketcher.width, "big")
    most_unequal = minhash.most_differing(config.near_duplicate.threshold)
    for s in stored:
        x = query ^ s
        x |= x >> 4
        x |= x >> 2
        x |= x >> 1
        hits += (x & ones).bit_count() <= most_unequal  # the bytes that differ
    return hits > 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 1 when an exact duplicate was missed or brute force disagreed."""
    parser = argparse.ArgumentParser(prog="python -m bench.dedup", description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--method", choices=["minhash", "simhash"], default="minhash")
    parser.add_argument("--brute-queries", type=int, default=5)
    parser.add_argument("--letters", type=int, default=2000, help="the template stream's size")
    parser.add_argument("--letter-batches", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="leave Python's GC defaults instead of nightshift run's freeze and thresholds",
    )
    args = parser.parse_args(argv)
    return 0 if asyncio.run(_bench(args)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
