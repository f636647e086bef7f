"""What to do with a job's fire: which fires are due, and run or skip (with the reason).

:func:`due` is pure: from the last fire dealt with, ``now`` and the misfire grace it
says which fire to act on. Fires missed during downtime coalesce into one run when
the latest is within the grace; older ones become one ``missed`` skip.

:func:`decide` runs in the writer's transaction and applies the guards in order:

1. ``paused``: the job, or all jobs, are paused (``/agent pause``);
2. ``overlap``: the previous run is still going;
3. ``breaker_open``: the agent's (or its user's or namespace's) breaker refuses calls;
4. ``budget_spent``: some level of the job's scope has no budget left;
5. ``run_cap``: ``max_runs_per_hour`` runs already started this hour (in the job's
   time zone); the first such skip of an hour emits :class:`JobRunCapReached`.

Example:
    >>> from zoneinfo import ZoneInfo
    >>> from bot.jobs.cron import parse_cron
    >>> d = due(parse_cron("0 * * * *"), ZoneInfo("UTC"), last=0.0, now=7200.0, grace=3600)
    >>> (d.fire, d.coalesced, d.missed)
    (7200.0, 1, 0)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.jobs import state
from bot.jobs.cron import MAX_SCAN, CronSpec, fire_times
from guards.breakers import Breakers
from guards.clock import to_datetime
from guards.config import Job
from guards.events import JobRunCapReached
from guards.scopes import Scope
from guards.store import Tx
from guards.words import plural

__all__ = [
    "SKIP_REASONS",
    "BreakerHooks",
    "Decision",
    "Due",
    "EngineBreakers",
    "TableBreakers",
    "decide",
    "due",
    "fires_folded",
]

SKIP_REASONS = ("paused", "overlap", "breaker_open", "budget_spent", "run_cap", "missed")
REFUSING_STATES = ("open", "half_open_pending", "forced_open")


@dataclass(frozen=True, slots=True)
class Due:
    """The fire to act on (None: nothing due), fires folded into it, fires too old to run."""

    fire: float | None
    coalesced: int
    missed: int
    last_missed: float | None


def due(spec: CronSpec, tz: ZoneInfo, *, last: float, now: float, grace: int) -> Due:
    """Which fire of ``spec`` after ``last`` to act on at ``now``."""
    window_start = max(last, now - grace)
    recent = fire_times(spec, tz, after=window_start, until=now, limit=MAX_SCAN)
    stale: list[float] = []
    if last < window_start:
        stale = fire_times(spec, tz, after=last, until=window_start, limit=MAX_SCAN)
    if recent:
        return Due(recent[-1], len(recent) - 1 + len(stale), 0, None)
    if stale:
        return Due(None, 0, len(stale), stale[-1])
    return Due(None, 0, 0, None)


class BreakerHooks(Protocol):
    """The breaker engine as the runner needs it."""

    def open_reason(self, tx: Tx, agent: str) -> str | None:
        """Why the agent's breaker (or an ancestor's) refuses calls; None when it admits."""
        ...

    def record(
        self, tx: Tx, agent: str, *, failed: bool, now: float, started: float, detail: str = ""
    ) -> None:
        """Count the outcome of a run that began at ``started`` towards the agent's breaker."""
        ...


class TableBreakers:
    """Reads breaker states from the ``breakers`` table; records nothing.

    The fallback while no breaker engine offers :class:`BreakerHooks`.
    """

    def open_reason(self, tx: Tx, agent: str) -> str | None:
        try:
            for key in reversed(Scope(agent).ancestors()):
                row = tx.one("SELECT state, reason FROM breakers WHERE key = ?", (key,))
                if row is not None and row[0] in REFUSING_STATES:
                    return f"{key} is {row[0].replace('_', ' ')}" + (
                        f": {row[1]}" if row[1] else ""
                    )
        except sqlite3.OperationalError as exc:  # no breakers table in this database
            if "no such table" not in str(exc):
                raise
        return None

    def record(
        self, tx: Tx, agent: str, *, failed: bool, now: float, started: float, detail: str = ""
    ) -> None:
        return None


class EngineBreakers:
    """:class:`BreakerHooks` over the breaker engine (:class:`guards.breakers.Breakers`).

    A run's outcome counts like a call's (``Breakers.record_outcome``): failures and
    timeouts move the agent's failure window (and may trip it), successes reset the
    run of failures. During a trial they are its calls only for an agent that has made
    no reservation in it (:meth:`guards.breaker.Breaker.trial_run`).
    """

    def __init__(self, engine: Breakers) -> None:
        self.engine = engine

    def open_reason(self, tx: Tx, agent: str) -> str | None:
        if not self.engine.enabled:
            return None
        for key in reversed(Scope(agent).ancestors()):
            row = self.engine.get(tx, key)
            if row.state in REFUSING_STATES:
                return f"{key} is {row.state.replace('_', ' ')}" + (
                    f": {row.reason}" if row.reason else ""
                )
        return None

    def record(
        self, tx: Tx, agent: str, *, failed: bool, now: float, started: float, detail: str = ""
    ) -> None:
        self.engine.record_outcome(
            tx, agent, failed=failed, now=now, started=started, detail=detail
        )


@dataclass(frozen=True, slots=True)
class Decision:
    run_id: str
    scheduled_for: float
    run: bool
    reason: str | None = None
    detail: str | None = None


def hour_start(now: float, tz: ZoneInfo) -> float:
    """The start of the clock hour containing ``now`` in ``tz``: the local minutes and
    seconds counted back in real time. (Going by the wall clock's hh:00 would reach 75
    minutes back in the half hour that repeats on Lord Howe's fall-back night.)"""
    local = datetime.fromtimestamp(now, tz)
    return now - (local.minute * 60 + local.second + local.microsecond / 1e6)


def _iso(ts: float) -> str:
    return to_datetime(ts).strftime("%Y-%m-%d %H:%M:%SZ")


def fires_folded(fires: int, latest: float) -> str:
    """A catch-up run's record: every fire that came due unrun, the one it runs for
    included (audit25 L3: "coalesced 2 missed fires" was read as 2 missed, when 3 were).

    Example:
        >>> fires_folded(3, 1767249780.0).split(": ")[1]
        'ran once, for the latest (2026-01-01 06:43:00Z)'
    """
    return (
        f"{fires} fires came due while Nightshift was down or behind: ran once, for the"
        f" latest ({_iso(latest)})"
    )


def decide(
    tx: Tx,
    *,
    job: Job,
    tz: ZoneInfo,
    scheduled_for: float,
    coalesced: int,
    breakers: BreakerHooks,
    remaining_fraction: Callable[[Tx, Scope], float | None],
) -> Decision:
    """Record a run (state ``running``) or a skip for one fire, and return which."""
    now = tx.clock.now()
    run_id = state.new_run_id()
    agent = Scope(job.scope).agent() or job.scope
    reason: str | None = None
    detail: str | None = None
    paused = state.pauses(tx)
    held = paused.get(job.name) or paused.get(state.ALL)
    if held is not None:
        what = "all jobs are" if held.job == state.ALL else "the job is"
        reason, detail = "paused", f"{what} paused (by {held.paused_by} at {_iso(held.paused_at)})"
    elif (busy := state.running_run(tx, job.name)) is not None:
        reason = "overlap"
        detail = f"{busy.id} (started {_iso(busy.decided_at)}) is still running"
    elif (cut := state.interrupted_run(tx, job.name, since=now - job.timeout_seconds)) is not None:
        reason = "overlap"
        detail = (
            f"{cut.id} (started {_iso(cut.decided_at)}) was interrupted by a restart and may"
            f" still be running, until {_iso(cut.decided_at + job.timeout_seconds)} (its timeout)"
        )
    elif (why := breakers.open_reason(tx, agent)) is not None:
        reason, detail = "breaker_open", why
    elif remaining_fraction(tx, Scope(job.scope)) == 0.0:
        reason, detail = "budget_spent", f"the budget of {job.scope} is spent"
    else:
        since = hour_start(now, tz)
        runs = state.runs_since(tx, job.name, since, now)
        if runs >= job.max_runs_per_hour:
            reason = "run_cap"
            detail = (
                f"{plural(runs, 'run')} this hour reached max_runs_per_hour {job.max_runs_per_hour}"
            )
            if state.skipped_since(tx, job.name, since, "run_cap") == 0:
                tx.emit(
                    JobRunCapReached(
                        at=now,
                        scope=job.scope,
                        job=job.name,
                        runs=runs,
                        limit=job.max_runs_per_hour,
                    )
                )
    if reason is None and coalesced:
        detail = fires_folded(coalesced + 1, scheduled_for)
    state.record_run(
        tx,
        run_id=run_id,
        job=job.name,
        scope=job.scope,
        scheduled_for=scheduled_for,
        state="running" if reason is None else "skipped",
        reason=reason,
        detail=detail,
    )
    return Decision(run_id, scheduled_for, reason is None, reason, detail)
