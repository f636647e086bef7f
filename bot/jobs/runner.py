"""The agents' cron jobs: a process component that fires them over HTTP, behind guards.

Each run is ``POST <url>`` with ``{"job", "run_id", "scheduled_for"}`` and the header
``X-Nightshift-Job-Secret``: the job's ``secret`` from the policy, or else
HMAC-SHA256 of the job name under a random key kept in this database (stable across
restarts; ``nightshift jobs preview --secrets`` prints it). A 2xx answer is a
success; any other answer, a network error or no answer within ``timeout_seconds``
is a failure (``timeout`` for the latter) and counts towards the agent's breaker.
The call itself is :func:`bot.jobs.call.post_run`; what ``/agent jobs`` shows of a
job is a :class:`~bot.jobs.status.JobStatus`.

The schedule is derived from rows: ``job_schedule`` holds the last fire each job
dealt with. A tick (every second on the APScheduler, and once at start) takes ``now``
from the process clock and acts on what is due, so a restart continues where it
stopped and tests drive time with a ManualClock and call :meth:`JobRunner.tick`.

A run's outcome the database refused (a lock, a full disk) is kept in memory and written
again until the database takes it: by the run itself, and first thing in each tick's
write, so the job's next fire is never decided against a run that already answered. A
stop writes those outcomes, and calls the runs without an answer abandoned, in one write.

Example:
    >>> # in Nightshift._build_components:
    >>> # JobRunner(self.policy, now=self.clock.now())   # raises PolicyError for a bad job
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx

from bot.alerts.render_time import duration
from bot.escape import printable
from bot.jobs import state
from bot.jobs.call import post_run
from bot.jobs.cron import fire_times
from bot.jobs.cron_words import format_local
from bot.jobs.guard import BreakerHooks, Decision, TableBreakers, decide, due
from bot.jobs.lint import check_jobs, preview_command
from bot.jobs.outcomes import CUT_OFF, STOPPED, Answered, Outcomes
from bot.jobs.status import JobStatus, read_runs
from bot.tls import verified
from guards.clock import to_datetime
from guards.config import Job, Policy
from guards.store import Tx
from guards.words import plural

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)
TICK_SECONDS = 1
DRAIN_SECONDS = 3.0
# A job's last fire this far ahead of the clock means the clock went back (NTP, a VM
# resumed, a wrong time corrected): its schedule goes on from now, not from then.
AHEAD_SECONDS = 5.0
# A fire the tick reaches this late is on time, whatever misfire_grace_seconds says (the
# tick comes a second or so after the fire; more on a busy machine): the grace is for
# fires that passed while Nightshift was down.
ON_TIME_SECONDS = 60


class JobRunner:
    """Fires the policy's jobs; ``ns.extras["jobs"]``."""

    def __init__(
        self,
        policy: Policy,
        *,
        now: float,
        breakers: BreakerHooks | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        source: str = "policy",
    ) -> None:
        self.plans = {p.name: p for p in check_jobs(policy, now=now, source=source)}
        self.source = source  # the policy file read (its name in the hints)
        self.jobs = {job.name: job for job in policy.jobs}
        self.tz = {name: ZoneInfo(plan.timezone) for name, plan in self.plans.items()}
        # check_jobs refused every job whose expression does not parse
        self.specs = {name: plan.spec for name, plan in self.plans.items() if plan.spec}
        self.breakers: BreakerHooks = breakers or TableBreakers()
        self._transport = transport
        self._ns: Nightshift | None = None
        self._client: httpx.AsyncClient | None = None
        self._last: dict[str, float] = {}
        self._secrets: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # runs that answered, until the database has their outcome
        self._outcomes = Outcomes(self.breakers)
        self._ticking = asyncio.Lock()

    @property
    def ns(self) -> Nightshift:
        if self._ns is None:
            raise RuntimeError("the job runner is not started")
        return self._ns

    # -- component ----------------------------------------------------------------------

    async def start(self, ns: Nightshift) -> None:
        self._ns = ns
        ns.extras["jobs"] = self
        self._client = httpx.AsyncClient(
            transport=self._transport,
            verify=verified(),  # httpx's default, loaded once per process (bot.tls)
            follow_redirects=False,
            headers={"User-Agent": "nightshift"},
            # every run gets its connection: a hundred hung targets must not leave the
            # other jobs waiting for a slot (and time out without being sent)
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
        )
        key, self._last = await ns.store.write(self._recover)
        for job in self.jobs.values():
            self._secrets[job.name] = job.secret or state.derived_secret(key, job.name)
        ns.every(TICK_SECONDS, self.tick, name="jobs-tick", misfire_grace_time=None)
        self._log_schedule()
        self._warn_if_calling_itself(ns.settings.host, ns.settings.port)
        await self.tick()

    def _warn_if_calling_itself(self, host: str, port: int) -> None:
        """A job whose url is Nightshift's own API sends no token: every run is a 401."""
        here = {host.lower(), "127.0.0.1", "localhost", "::1", "0.0.0.0"}
        for job in self.jobs.values():
            url = urlsplit(job.url)
            if port and url.port == port and (url.hostname or "").lower() in here:
                log.warning(
                    "job %s calls Nightshift's own address (%s): a job's url is the agent's"
                    " endpoint, and this one will answer every run 401 (no token is sent)",
                    job.name,
                    printable(job.url[:200]),
                )

    def _log_schedule(self) -> None:
        """One start-up line for all jobs (each job's plan at debug level)."""
        for plan in self.plans.values():
            log.debug("%s", "; ".join(line.strip() for line in plan.lines()))
        if not self.plans:
            return
        fires = [(p.next_fires[0], p.name, p.timezone) for p in self.plans.values() if p.next_fires]
        noted = sum(1 for p in self.plans.values() if p.notes or p.problems)
        line = f"{plural(len(self.plans), 'job')} scheduled"  # "1 job" (recheck24 L3)
        if fires:
            at, name, timezone = min(fires)
            line += f"; next: {name} at {format_local(at, ZoneInfo(timezone))}"
        if noted:
            line += f"; {noted} with notes"
        log.info("%s (`%s` shows each)", line, preview_command(self.source))

    def _recover(self, tx: Tx) -> tuple[bytes, dict[str, float]]:
        """Close runs a previous process left running; start the schedule of new jobs."""
        abandoned = state.mark_abandoned(tx, detail=STOPPED)
        if abandoned:
            log.warning(
                "%s %s interrupted by a restart (%s): %s",
                plural(len(abandoned), "job run"),
                "was" if len(abandoned) == 1 else "were",
                ", ".join(abandoned),
                CUT_OFF,
            )
        now = tx.clock.now()
        last: dict[str, float] = {}
        for name in self.jobs:
            seen = state.last_scheduled(tx, name)
            if seen is None:
                state.set_last_scheduled(tx, name, now)
                seen = now
            last[name] = seen
        return state.secret_key(tx), last

    async def stop(self, ns: Nightshift) -> None:
        try:
            tasks = list(self._tasks.values())
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                if pending or self._outcomes.pending:
                    cut_off = [t.get_name() for t in pending]
                    await self._outcomes.close_cut_off(ns.store, cut_off, drained=DRAIN_SECONDS)
        finally:
            if self._client is not None:
                await self._client.aclose()
                self._client = None

    # -- ticks --------------------------------------------------------------------------

    async def tick(self) -> list[Decision]:
        """Act on every due fire: record runs and skips, start the runs. Returns them."""
        async with self._ticking:
            now = self.ns.clock.now()
            due_jobs = [
                name
                for name, spec in self.specs.items()
                if self._last[name] > now + AHEAD_SECONDS
                or fire_times(spec, self.tz[name], after=self._last[name], until=now, limit=1)
            ]
            if not due_jobs and not self._outcomes.pending:
                return []
            decisions = await self.ns.store.write(lambda tx: self._decide_all(tx, due_jobs))
        for decision, job in decisions:
            if decision.run:
                task = asyncio.create_task(self._execute(job, decision), name=decision.run_id)
                self._tasks[decision.run_id] = task
                task.add_done_callback(self._forget)
        return [d for d, _ in decisions]

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task.get_name(), None)

    def _decide_all(self, tx: Tx, names: list[str]) -> list[tuple[Decision, Job]]:
        # first the outcomes the database refused before: a run that answered is not
        # "still running" when its job's next fire is decided (review26 M1)
        self._outcomes.write_pending(tx)
        now = tx.clock.now()
        out: list[tuple[Decision, Job]] = []
        for name in names:
            job, spec, tz = self.jobs[name], self.specs[name], self.tz[name]
            last = state.last_scheduled(tx, name)
            if last is None:
                last = now
            elif last > now + AHEAD_SECONDS:
                log.warning(
                    "job %s: its last fire (%s) is %s ahead of the clock, which went back:"
                    " its schedule goes on from now (a fire already run or skipped is not"
                    " decided again)",
                    name,
                    to_datetime(last).isoformat(timespec="seconds"),
                    duration(last - now),
                )
                last = now
            grace = max(job.misfire_grace_seconds, ON_TIME_SECONDS)
            d = due(spec, tz, last=last, now=now, grace=grace)
            if d.fire is not None and state.decided(tx, name, d.fire):
                pass  # the clock went back over a fire run or skipped: once is enough
            elif d.fire is not None:
                out.append(
                    (
                        decide(
                            tx,
                            job=job,
                            tz=tz,
                            scheduled_for=d.fire,
                            coalesced=d.coalesced,
                            breakers=self.breakers,
                            remaining_fraction=self.ns.ledger.remaining_fraction,
                        ),
                        job,
                    )
                )
            elif d.last_missed is not None:
                run_id = state.new_run_id()
                state.record_run(
                    tx,
                    run_id=run_id,
                    job=name,
                    scope=job.scope,
                    scheduled_for=d.last_missed,
                    state="skipped",
                    reason="missed",
                    detail=f"{plural(d.missed, 'fire')} passed while Nightshift was not running, "
                    f"more than {duration(grace)} ago (misfire_grace_seconds)",
                )
                out.append((Decision(run_id, d.last_missed, False, "missed"), job))
            handled = max(d.fire or 0.0, d.last_missed or 0.0, last)
            state.set_last_scheduled(tx, name, handled)
            tx.after_commit.append(_setter(self._last, name, handled))
        return out

    async def _execute(self, job: Job, decision: Decision) -> None:
        assert self._client is not None
        began = self.ns.clock.now()  # a trial counts only runs that began in it
        done = await post_run(self._client, job, decision, secret=self._secrets[job.name])
        run = Answered(
            job=job,
            decision=decision,
            outcome=done.outcome,
            status=done.status,
            detail=done.detail,
            duration_ms=done.duration_ms,
            began=began,
        )
        if run.outcome != "succeeded":  # the endpoint's answer, escaped: no forged log lines
            why = printable(run.detail or "")
            log.warning("job %s run %s %s: %s", job.name, decision.run_id, run.outcome, why)
        await self._outcomes.record(self.ns.store, run)

    async def wait_idle(self) -> None:
        """Wait until every started run has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def prune(self) -> int:
        """Delete one chunk of job runs older than ``retention.job_runs`` (the ``retention``
        job drains them all, hourly; see bot/retention.py)."""
        before = self.ns.clock.now() - self.ns.policy.retention.job_runs
        return await self.ns.store.write(lambda tx: state.prune_runs(tx, before=before))

    # -- reading ------------------------------------------------------------------------

    def job(self, name: str) -> Job | None:
        return self.jobs.get(name)

    def secret(self, name: str) -> str:
        return self._secrets[name]

    async def statuses(self) -> list[JobStatus]:
        """Every job with its pause, its last run and its next three fires."""
        now = self.ns.clock.now()
        paused, last = await self.ns.store.write(lambda tx: read_runs(tx, self.jobs))
        out = []
        for name, job in self.jobs.items():
            plan = self.plans[name]
            held = paused.get(name) or paused.get(state.ALL)
            nxt = fire_times(self.specs[name], self.tz[name], after=now)
            out.append(
                JobStatus(
                    job=job,
                    plan=plan,
                    paused_by=held.paused_by if held else None,
                    paused_all=state.ALL in paused,
                    last=last[name][0],
                    next_fires=nxt,
                    finished=last[name][1],
                    going=last[name][2],
                )
            )
        return out


def _setter(cache: dict[str, float], name: str, value: float) -> Callable[[], None]:
    """Mirror the mark just committed (lower after the clock went back: a mark left ahead
    would make every tick decide, and write, until the clock caught up)."""

    def apply() -> None:
        cache[name] = value

    return apply
