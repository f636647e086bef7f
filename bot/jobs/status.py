"""What ``/agent jobs`` shows of a job: :class:`JobStatus`, and the rows it is read from.

:meth:`bot.jobs.runner.JobRunner.statuses` reads every job's pause and runs with
:func:`read_runs` in one transaction and adds each job's plan and next fires.

Example:
    >>> # paused, runs = await ns.store.write(lambda tx: read_runs(tx, ["rss-hourly"]))
    >>> # latest, finished, going = runs["rss-hourly"]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.jobs import state
from bot.jobs.lint import JobPlan
from guards.config import Job
from guards.store import Tx

__all__ = ["FAILING", "JobStatus", "LastRuns", "read_runs"]

# (a run a stop cut off, "abandoned", is not the job failing: Nightshift stopped)
FAILING = frozenset({"failed", "timeout"})

#: per job: its latest run, the last run that ended, and a run still going (or None)
LastRuns = dict[str, tuple[state.RunRow | None, state.RunRow | None, state.RunRow | None]]


@dataclass(frozen=True)
class JobStatus:
    """One job as ``/agent jobs`` shows it."""

    job: Job
    plan: JobPlan
    paused_by: str | None
    paused_all: bool
    last: state.RunRow | None
    next_fires: list[float]
    finished: state.RunRow | None = None  # the last run that went out and ended
    going: state.RunRow | None = None  # a run still going when a later fire was skipped

    @property
    def failing(self) -> bool:
        """Its last run failed, or its breaker (opened by its failures) holds it."""
        if self.last is not None and (self.last.state, self.last.reason) == (
            "skipped",
            "breaker_open",
        ):
            return True
        return self.finished is not None and self.finished.state in FAILING


def read_runs(tx: Tx, names: Iterable[str]) -> tuple[dict[str, state.Pause], LastRuns]:
    """The pauses, and each job's latest run, last ended run and run still going."""
    last: LastRuns = {}
    for name in names:
        rows = state.recent_runs(tx, name, 1)
        latest = rows[0] if rows else None
        going = None
        if latest is not None and latest.state == "skipped":  # one may still run
            going = state.running_run(tx, name)
        last[name] = (latest, state.last_finished(tx, name), going)
    return state.pauses(tx), last
