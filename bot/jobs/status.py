"""What ``/agent jobs`` shows of a job: :class:`JobStatus`, and the rows it is read from.

:meth:`bot.jobs.runner.JobRunner.statuses` reads every job's pause and runs with
:func:`read_runs` in one transaction and adds each job's plan and next fires.

:func:`why_failed` says in short why a failed or timed-out run failed, for ``/agent
jobs`` and for the reason of the breaker the job's failures trip.

Example:
    >>> # paused, runs = await ns.store.write(lambda tx: read_runs(tx, ["rss-hourly"]))
    >>> # latest, finished, going = runs["rss-hourly"]
    >>> why_failed("failed", 500, "https://x.example/sync answered 500: db refused")
    'HTTP 500: db refused'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.escape import mask_secrets, one_line
from bot.jobs import state
from bot.jobs.lint import JobPlan
from guards.config import Job
from guards.store import Tx

__all__ = ["FAILING", "JobStatus", "LastRuns", "read_runs", "why_failed"]

# (a run a stop cut off, "abandoned", is not the job failing: Nightshift stopped)
FAILING = frozenset({"failed", "timeout"})

# what a run's record says before its call's detail is joined to it (bot.jobs.guard.decide)
# (and the older "coalesced N missed fire(s) into this run", of a database made before)
_BEGUN = re.compile(
    r"^(\d+ fires came due while Nightshift was down or behind: ran once, for the latest"
    r" \([^)]*\)|coalesced \d+ missed fires? into this run); "
)
# bot.jobs.call.post_run's words for a timeout, the url left out: the job names it
_NO_ANSWER = re.compile(r"^no answer from \S+ (within \S+)")

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


def why_failed(run_state: str, http_status: int | None, detail: str | None) -> str | None:
    """Why a ``failed`` or ``timeout`` run failed, on one line, credentials masked, neither
    cut nor escaped (for Slack: :func:`bot.escape.slack_text`); None for any other run.

    ``detail`` is the run's record (:func:`bot.jobs.call.post_run` wrote its call's part):
    ``HTTP 500: <the start of the answer>``, ``no answer within 30s``, or the error that
    kept the run from being sent (``ConnectError: …``).

    Example:
        >>> why_failed("timeout", None, "no answer from https://x.example/sync within 30s")
        'no answer within 30s'
        >>> why_failed("succeeded", 200, None) is None
        True
    """
    if run_state not in FAILING:
        return None
    said = _BEGUN.sub("", detail or "", count=1)
    if run_state == "timeout":
        said = _NO_ANSWER.sub(r"no answer \1", said, count=1)
    elif http_status is not None:
        _, answered, body = said.partition(f" answered {http_status}: ")
        said = body if answered else said  # else an error while reading the answer
        said = f"HTTP {http_status}: {said}" if said.strip() else f"HTTP {http_status}"
    return " ".join(mask_secrets(one_line(said)).split()) or run_state
