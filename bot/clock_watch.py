"""The wall clock stepping back (NTP, a VM resumed, an operator's `date -s`) must not
stop the upkeep timers for as long as the step.

APScheduler's interval jobs fire at *previous run + interval* on the wall clock, and it
sleeps until then on the loop's monotonic timer: after a step back of an hour, hold
expiry, escalations, the heartbeat watchdog, the agents' jobs, the digest and retention
would all wait an hour, even once the clock is put right. :class:`ClockWatch` compares
the wall clock with the monotonic one every second and, on a step back, makes every
interval job due now (each then goes on from there) and tells the breakers (their
spend windows keep their charges' real age). A step forward needs nothing for the
jobs (every job reads the time and catches up), but the heartbeat watchdog must not
read it as every agent's silence: it is told, and takes it off as a downtime.

Example:
    >>> # watch = ClockWatch(scheduler); task = asyncio.create_task(watch.run())
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["ClockWatch"]

log = logging.getLogger(__name__)
EVERY_SECONDS = 1.0
STEP_SECONDS = 2.0  # a step back smaller than this is drift, not worth a word


class ClockWatch:
    """Reschedule the interval jobs when the wall clock steps back."""

    def __init__(
        self,
        scheduler: BaseScheduler,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scheduler = scheduler
        # told the step (seconds) on the event loop: state in memory kept on the wall clock
        self.on_step_back: list[Callable[[float], None]] = []
        # told (wall time before, wall time after) of a step forward: time nobody lived
        self.on_step_forward: list[Callable[[float, float], None]] = []
        self._wall = wall
        self._mono = mono
        self._offset = wall() - mono()

    def check(self) -> float:
        """Look once; the step back in seconds (0.0 when there was none worth acting on)."""
        offset = self._wall() - self._mono()
        step, self._offset = self._offset - offset, offset
        if -step >= STEP_SECONDS:
            until = self._wall()
            log.warning(
                "the system clock went forward %.0f s (NTP putting it right, a VM resumed):"
                " that time is not counted as agents' silence",
                -step,
            )
            for on_forward in self.on_step_forward:
                on_forward(until + step, until)
            return 0.0
        if step < STEP_SECONDS:
            return 0.0
        now = datetime.fromtimestamp(self._wall(), UTC)
        moved = []
        for job in self.scheduler.get_jobs():
            if isinstance(job.trigger, IntervalTrigger) and job.next_run_time is not None:
                job.modify(next_run_time=now)
                moved.append(job.id)
        log.warning(
            "the system clock went back %.0f s: the upkeep jobs (%s) run now rather than"
            " wait that long",
            step,
            ", ".join(moved) or "none",
        )
        for listener in self.on_step_back:
            listener(step)
        return step

    async def run(self) -> None:
        while True:
            await asyncio.sleep(EVERY_SECONDS)
            try:
                self.check()
            except Exception:  # the watch must outlive one bad look
                log.exception("the clock watch failed; it looks again in %gs", EVERY_SECONDS)
