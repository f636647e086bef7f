"""A step back of the wall clock makes the upkeep jobs due now (audit11 day-2 M1:
after a one-hour step back, expiry, escalations, jobs and the digest waited an hour)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock_watch import ClockWatch


async def _noop() -> None:
    return None


async def test_a_step_back_makes_every_interval_job_due_now_and_a_paused_one_stays(caplog):
    wall, mono = [1_800_000_000.0], [100.0]
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start(paused=True)  # nothing runs: the test only reads the plan
    try:
        before = datetime.fromtimestamp(wall[0], UTC)
        for name in ("sweep", "alerts-tick", "digest"):
            scheduler.add_job(
                _noop, "interval", seconds=5, id=name, next_run_time=before + timedelta(seconds=5)
            )
        scheduler.pause_job("digest")
        watch = ClockWatch(scheduler, wall=lambda: wall[0], mono=lambda: mono[0])
        wall[0] += 1.0
        mono[0] += 1.0
        assert watch.check() == 0.0  # time went on: nothing to do
        wall[0] += 0.5
        mono[0] += 1.0  # half a second of drift back: not a step
        assert watch.check() == 0.0
        with caplog.at_level(logging.WARNING):
            wall[0] -= 3600
            mono[0] += 1.0
            assert watch.check() > 3598
        # due now on the scheduler's own clock (the machine's, not the test's wall)
        for name in ("sweep", "alerts-tick"):
            due = scheduler.get_job(name).next_run_time
            assert abs(due - datetime.now(UTC)) < timedelta(seconds=5)  # not an hour away
        assert scheduler.get_job("digest").next_run_time is None  # paused stays paused
        assert "the system clock went back 3601 s" in caplog.text  # and 1 s passed
        assert "(alerts-tick, sweep)" in caplog.text
        wall[0] += 1.0
        mono[0] += 1.0
        assert watch.check() == 0.0  # once
    finally:
        scheduler.shutdown(wait=False)


def test_steps_are_told_to_listeners_and_left_for_the_stored_deadlines(caplog):
    """audit17 time H2, H3: the spend windows move back with a step back; every step is
    left for the next write batch to move the stored deadlines (and the last beats) by."""
    wall, mono = [1_800_000_000.0], [100.0]
    scheduler = AsyncIOScheduler(timezone="UTC")
    watch = ClockWatch(scheduler, wall=lambda: wall[0], mono=lambda: mono[0])
    back: list[float] = []
    watch.on_step_back.append(back.append)
    wall[0] += 1.5  # drift forward: not a step
    mono[0] += 1.0
    assert watch.check() == 0.0 and watch.unapplied == 0
    with caplog.at_level(logging.WARNING):
        wall[0] += 3601.0
        mono[0] += 1.0
        watch.check()
    assert watch.unapplied == 3600.0 and back == []
    assert "the system clock went forward 3600 s" in caplog.text
    wall[0] -= 600.0
    mono[0] += 1.0
    assert watch.check() == 601.0 and back == [601.0]
    assert watch.unapplied == 3600.0 - 601.0


async def test_a_shift_that_fails_is_dropped_not_applied_twice(store, caplog):
    """review18 L1: the batch's writes go on in the clock's new frame when moving the
    deadlines fails; moving everything in the next batch would move those twice."""
    wall, mono = [1_800_000_000.0], [100.0]
    watch = ClockWatch(AsyncIOScheduler(timezone="UTC"), wall=lambda: wall[0], mono=lambda: mono[0])
    moved: list[float] = []

    def fails(tx: Any, seconds: float) -> None:
        moved.append(seconds)
        raise RuntimeError("no such table")

    watch.deadlines.append(fails)
    in_memory: list[float] = []
    watch.on_step.append(in_memory.append)
    store.before_batch.insert(0, watch.shift_deadlines)
    wall[0] -= 3600
    mono[0] += 1
    assert await store.write(lambda tx: 42) == 42  # the batch's own work is done
    assert await store.write(lambda tx: 43) == 43
    assert moved == [-3601.0] and watch.unapplied == 0  # tried once, then dropped
    assert "could not move with the clock" in caplog.text
    # what memory keeps on the wall clock is moved back with them (review26 L3)
    assert in_memory == [-3601.0, 3601.0]
