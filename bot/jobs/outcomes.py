"""Job runs whose endpoint answered, until the database has their outcome.

A run's outcome is always recorded: left "running", every later fire of its job would be
skipped as an overlap, for good (audit26 chaos H2). So an outcome the database refused (a
lock, a full disk) is kept here and written again until the database takes it: by the run
itself (:func:`bot.written.until_written`), and first thing in each jobs tick's write, so
the job's next fire is never decided against a run that already answered (review26 M1).
A stop writes those outcomes, and calls the runs without an answer abandoned, in one
bounded write (review26 M3).

Example:
    >>> # outcomes = Outcomes(breakers); await outcomes.record(store, Answered(...))
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from functools import partial

from bot.jobs import state
from bot.jobs.guard import BreakerHooks, Decision
from bot.jobs.status import why_failed
from bot.logs import Throttle
from bot.written import until_written
from guards.breaker_said import last_error
from guards.config import Job
from guards.errors import StorageUnavailable
from guards.scopes import Scope
from guards.store import Store, Tx
from guards.words import plural

__all__ = ["CUT_OFF", "STOPPED", "STOP_WRITE_SECONDS", "Answered", "Outcomes"]

log = logging.getLogger("bot.jobs.runner")  # (the jobs' log lines keep one logger name)
# What a stop gives the write that closes the runs it cut off: with the runner's drain,
# within the 5 s a component has to stop (bot/app.py), while another process holds the lock.
STOP_WRITE_SECONDS = 1.5
STOPPED = "Nightshift stopped during the run"
CUT_OFF = (
    "their targets may still be working, so each counts as going until its timeout_seconds"
    " (its next fires are skipped as overlap until then)"
)


@dataclass(slots=True, kw_only=True)
class Answered:
    """A run whose endpoint answered, until the database has its outcome."""

    job: Job
    decision: Decision
    outcome: str
    status: int | None
    detail: str | None
    duration_ms: int
    began: float
    recorded: asyncio.Event = field(default_factory=asyncio.Event)


class Outcomes:
    """The outcomes not written yet, by run id; the breaker hooks hear each once."""

    def __init__(self, breakers: BreakerHooks) -> None:
        self.breakers = breakers
        self.pending: dict[str, Answered] = {}
        self._refused = Throttle()  # "...refused to record it", once a minute a job

    async def record(self, store: Store, run: Answered) -> None:
        """Write ``run``'s outcome, however long the database refuses it."""
        self.pending[run.decision.run_id] = run
        job, run_id = run.job, run.decision.run_id

        def refused(exc: StorageUnavailable) -> None:
            said = self._refused.let_through(job.name, time.monotonic())
            if said is not None:
                log.warning(
                    "job %s run %s %s, but the database refused to record it (%s)%s; it is"
                    " recorded once the database takes writes again, before the job's next"
                    " fire is decided",
                    job.name,
                    run_id,
                    run.outcome,
                    exc.cause,
                    said,
                )

        async def attempt() -> None:
            if run_id in self.pending:  # else a tick wrote it meanwhile
                await store.write(lambda tx: self.finish(tx, run))

        try:
            await until_written(attempt, refused=refused, wake=run.recorded)
        except Exception:  # a bug, not the database: no tick may fail on it every second
            self.pending.pop(run_id, None)
            raise

    def write_pending(self, tx: Tx) -> None:
        """Write every outcome still waiting (in a tick's write, before its decisions)."""
        for run in list(self.pending.values()):
            self.finish(tx, run)

    def finish(self, tx: Tx, run: Answered) -> None:
        """Record a run's outcome (once: a run no longer running is left as it is)."""
        job = run.job
        closed = state.finish_run(
            tx,
            run_id=run.decision.run_id,
            state=run.outcome,
            http_status=run.status,
            detail=run.detail,
            duration_ms=run.duration_ms,
        )
        tx.after_commit.append(partial(self._recorded, run))
        if closed:
            agent = Scope(job.scope).agent() or job.scope
            failed = run.outcome != "succeeded"
            # worded as a settle's error is quoted (guards/breaker_gate.py): the person
            # paged reads why, not only that it failed (audit23 forensics M4)
            said = why_failed(run.outcome, run.status, run.detail) if failed else None
            why = last_error(f"job {job.name}: {said}") if said else ""
            self.breakers.record(
                tx, agent, failed=failed, now=tx.clock.now(), started=run.began, detail=why
            )

    def _recorded(self, run: Answered) -> None:
        self.pending.pop(run.decision.run_id, None)
        run.recorded.set()

    async def close_cut_off(self, store: Store, cut_off: list[str], *, drained: float) -> None:
        """One write for the runs a stop cut off (``cut_off``: their run ids): the outcome
        of each that answered, and "abandoned" for the others. Bounded: the stop must end
        in time."""
        answered = list(self.pending.values())
        unanswered = sum(1 for run_id in cut_off if run_id not in self.pending)

        def close(tx: Tx) -> list[str]:
            for run in answered:
                self.finish(tx, run)
            return state.mark_abandoned(tx, detail=STOPPED)

        try:
            cut = await asyncio.wait_for(store.write(close), STOP_WRITE_SECONDS)
        except (StorageUnavailable, TimeoutError) as exc:
            why = "still waiting for its write lock"
            if isinstance(exc, StorageUnavailable):
                why = exc.cause
            runs = [f"job {r.job.name} run {r.decision.run_id} {r.outcome}" for r in answered]
            if unanswered:
                runs.append(f"{unanswered} without an answer")
            log.warning(
                "stopping: the database did not record %s within %gs (%s): %s."
                " Unless it takes them before Nightshift exits, the next start calls each"
                " abandoned and skips its job's fires as overlap until its timeout_seconds"
                " have passed",
                plural(len(answered) + unanswered, "job run"),
                STOP_WRITE_SECONDS,
                "; ".join(runs),
                why,
            )
            return
        if cut:
            log.warning(
                "stopping cut off %s still going after %gs (%s): %s",
                plural(len(cut), "job run"),
                drained,
                ", ".join(cut),
                CUT_OFF,
            )
