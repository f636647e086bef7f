"""The wall clock stepping back (NTP, a VM resumed, an operator's `date -s`) must not
stop the upkeep timers for as long as the step.

APScheduler's interval jobs fire at *previous run + interval* on the wall clock, and it
sleeps until then on the loop's monotonic timer: after a step back of an hour, hold
expiry, escalations, the heartbeat watchdog, the agents' jobs, the digest and retention
would all wait an hour, even once the clock is put right. :class:`ClockWatch` compares
the wall clock with the monotonic one every second and, on a step back, makes every
interval job due now (each then goes on from there) and tells the breakers (their
spend windows keep their charges' real age). A step forward needs nothing for the
jobs (every job reads the time and catches up).

Deadlines stored as wall-clock instants (a hold's end, an escalation's next step, a
silence's end, a breaker's cool-down) keep their length in real time: every write batch
first looks at the clock (:meth:`ClockWatch.shift_deadlines`) and moves them by each
step, before anything reads them, so a step back does not keep a 60 s hold for an hour
and a step forward does not end every hold in flight (or page the next step at once,
or every agent as silent: the last beats move too).

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

from guards.store import Tx

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
        # told every step, either way, as the seconds to move by (+: the clock went
        # forward): wall-clock instants kept in memory move at once, as stored ones do
        # in the next batch (review25 M2)
        self.on_step: list[Callable[[float], None]] = []
        # each moves one kind of stored deadline by the seconds given (+: later), in the tx
        self.deadlines: list[Callable[[Tx, float], None]] = []
        self.unapplied = 0.0  # the steps' seconds the stored deadlines have yet to move by
        self._wall = wall
        self._mono = mono
        self._offset = wall() - mono()

    def read_from(self, wall: Callable[[], float], mono: Callable[[], float]) -> None:
        """Watch these clocks from now on (a test's, instead of the machine's)."""
        self._wall, self._mono = wall, mono
        self._offset = wall() - mono()

    def check(self) -> float:
        """Look once; the step back in seconds (0.0 when there was none worth acting on)."""
        offset = self._wall() - self._mono()
        step, self._offset = self._offset - offset, offset
        if -step >= STEP_SECONDS:
            log.warning(
                "the system clock went forward %.0f s (NTP putting it right, a VM resumed):"
                " that time is not counted as agents' silence",
                -step,
            )
            self._stepped(-step)
            return 0.0
        if step < STEP_SECONDS:
            return 0.0
        self._stepped(-step)
        now = datetime.now(UTC)  # the scheduler's own clock (the machine's)
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

    def _stepped(self, shift: float) -> None:
        self.unapplied += shift
        for listener in self.on_step:
            listener(shift)

    def shift_deadlines(self, tx: Tx) -> None:
        """A write batch's first hook: look at the clock, and move the stored deadlines by
        the steps they have not been moved by yet (again in the next batch if this one is
        rolled back)."""
        self.check()
        shift = self.unapplied
        if not shift:
            return
        try:
            for move in self.deadlines:
                move(tx, shift)
        except Exception:
            # The batch goes on (the store rolls this hook back alone) and its writes are
            # in the clock's new frame: moving everything again later would move those
            # twice. So the deadlines keep their times, as without this watch.
            self.unapplied -= shift
            for listener in self.on_step:  # the times kept in memory too (review26 L3)
                listener(-shift)
            log.exception(
                "the stored deadlines could not move with the clock; they keep their times"
            )
            raise
        log.info("the stored deadlines moved %+.0f s with the clock", shift)
        tx.after_commit.append(lambda: self._applied(shift))

    def _applied(self, shift: float) -> None:
        self.unapplied -= shift

    async def run(self) -> None:
        while True:
            await asyncio.sleep(EVERY_SECONDS)
            try:
                self.check()
            except Exception:  # the watch must outlive one bad look
                log.exception("the clock watch failed; it looks again in %gs", EVERY_SECONDS)
