"""Cron lint: every job in words, its next fire times, and a refusal when it runs away.

A job is refused (and Nightshift does not start) when its expression fires far more
often than its name or its ``max_runs_per_hour`` says, unless the policy sets
``allow_frequent: true`` for it:

- its name says hourly/daily/nightly/weekly/monthly but it fires more than twice in
  such a period (``* 8 * * *`` named ``report-daily``: 60 runs a day);
- it fires more often in an hour than its ``max_runs_per_hour`` (the cap would skip
  runs every hour);
- it fires more than four times an hour (more often than every 15 minutes).

A job whose name reads like a daily one (``morning-report``) but fixes only a minute
that reads as an hour (``8 * * * *``: every hour at :08) is not refused, but its plan
carries a note with the expression it probably meant.

Example:
    >>> from guards.config import Policy
    >>> policy = Policy.model_validate({"jobs": [{"name": "report-daily", "cron": "* 8 * * *",
    ...     "url": "http://127.0.0.1:9000/run", "scope": "acme/alice/rss-bot"}]})
    >>> plan = lint_jobs(policy, now=1767225600.0)[0]
    >>> plan.refusal
    'every minute from 08:00 to 08:59, 60 runs a day; did you mean `0 8 * * *`?'
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bot.jobs.cron import CronError, CronSpec, fire_times, parse_cron
from bot.jobs.cron_words import describe, dst_notes, format_local
from guards.config import Job, Policy, PolicyError
from guards.words import plural

__all__ = [
    "FREQUENT_PER_HOUR",
    "JobPlan",
    "check_jobs",
    "job_timezone",
    "lint_job",
    "lint_jobs",
    "preview_command",
    "refused_jobs",
]

FREQUENT_PER_HOUR = 4  # more often than every 15 minutes needs allow_frequent: true
NAMED_PERIODS = (
    ("hourly", "hour"),
    ("daily", "day"),
    ("nightly", "day"),
    ("weekly", "week"),
    ("monthly", "month"),
)
NAMED_MAX = 2  # runs per named period before the name and the expression disagree
# Names of jobs people mean to run once a day, though the name does not say "daily":
# with only the minute fixed (`8 * * * *`), the hour and the minute were likely swapped.
DAY_HINTS = ("morning", "evening", "night", "report", "digest", "summary", "briefing", "standup")


@dataclass
class JobPlan:
    """One job as the lint sees it."""

    name: str
    cron: str
    timezone: str
    words: str = ""
    next_fires: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    suggestion: str | None = None
    allow_frequent: bool = False
    error: str | None = None  # the expression is invalid: always refused
    spec: CronSpec | None = None

    @property
    def refused(self) -> bool:
        return self.error is not None or (bool(self.problems) and not self.allow_frequent)

    @property
    def refusal(self) -> str | None:
        """Why the job cannot run, in one line (None when it may)."""
        if self.error is not None:
            return self.error
        if not self.refused:
            return None
        hint = f"; did you mean `{self.suggestion}`?" if self.suggestion else ""
        return f"{self.words}{hint}"

    def lines(self) -> list[str]:
        """The plan as the CLI and ``/agent jobs`` print it."""
        tz = ZoneInfo(self.timezone)
        out = [f"{self.name}  `{self.cron}`  ({self.timezone})"]
        if self.error:
            out.append(f"  REFUSED: {self.error}")
            return out
        out.append(f"  {self.words}")
        if self.next_fires:
            out.append("  next: " + ", ".join(format_local(t, tz) for t in self.next_fires))
        out.extend(f"  note: {n}" for n in self.notes)
        if self.refused:
            out.append(f"  REFUSED: {'; '.join(self.problems)}")
            if self.suggestion:
                out.append(f"  did you mean `{self.suggestion}`?")
            out.append("  (set allow_frequent: true on the job if this is intended)")
        elif self.problems:
            out.append(f"  allowed by allow_frequent: {'; '.join(self.problems)}")
        return out


def job_timezone(job: Job, policy: Policy) -> str:
    """The job's own time zone, else its namespace's, else the policy's."""
    return job.timezone or policy.namespace_timezone(job.scope.split("/")[0])


def _named_period(name: str) -> str | None:
    lowered = name.lower()
    for word, period in NAMED_PERIODS:
        if word in lowered:
            return period
    return None


def _busiest(spec: CronSpec, period: str, today: date) -> int:
    """The most runs the expression makes in one hour, day, week or month."""
    if period == "hour":
        return spec.per_hour
    if period == "day":
        return spec.per_day
    days = [today + timedelta(days=i) for i in range(366 * 2)]
    counts: dict[tuple[int, int], int] = {}
    for d in days:
        if spec.runs_on(d):
            key = (
                (d.isocalendar().year, d.isocalendar().week)
                if period == "week"
                else (
                    d.year,
                    d.month,
                )
            )
            counts[key] = counts.get(key, 0) + 1
    return spec.per_day * max(counts.values(), default=0)


def _suggest(spec: CronSpec, period: str | None) -> str | None:
    minute, hour = spec.minutes[0], spec.hours[0]
    _, hours, dom, month, dow = spec.fields
    if period == "hour":
        return f"{minute} * {dom} {month} {dow}"
    if period == "day":
        return f"{minute} {hour} {dom} {month} {dow}"
    if period == "week":
        first = sorted(spec.weekdays, key=lambda d: (d + 6) % 7)[0] if spec.dow_restricted else 1
        return f"{minute} {hour} * {month} {first}"
    if period == "month":
        return f"{minute} {hour} {spec.days[0]} {month} *"
    if len(spec.minutes) == 60:  # the classic slip: a * in the minute field
        return f"0 {hours} {dom} {month} {dow}"
    return None


# Legacy zone names that look like a region's but never change for summer.
_FIXED_OFFSET_ZONES = {"EST": "America/New_York", "MST": "America/Denver (Phoenix keeps MST)"}


def lint_job(job: Job, *, timezone: str, now: float) -> JobPlan:
    """Describe one job and decide whether it may run."""
    plan = JobPlan(
        name=job.name, cron=job.cron, timezone=timezone, allow_frequent=job.allow_frequent
    )
    try:
        spec = parse_cron(job.cron)
    except CronError as exc:
        plan.error = str(exc)
        return plan
    tz = ZoneInfo(timezone)
    plan.spec = spec
    plan.words = describe(spec)
    plan.next_fires = fire_times(spec, tz, after=now, limit=3)
    plan.notes = dst_notes(spec, tz, now=now)
    meant = _FIXED_OFFSET_ZONES.get(timezone)
    if meant is not None:  # the incident's other half: the wrong time zone
        plan.notes.append(
            f"{timezone} is a fixed offset with no daylight saving time: for the clock"
            f" people keep there write {meant}"
        )
    if spec.dom_restricted and spec.dow_restricted:
        plan.notes.append(
            "both day of month and day of week are set: a day must match both "
            "(classic cron runs when either matches)"
        )
    today = datetime.fromtimestamp(now, tz).date()
    period = _named_period(job.name)
    runs = {"hour": "an hour", "day": "a day", "week": "a week", "month": "a month"}
    hourly_name = False
    if period is not None:
        busiest = _busiest(spec, period, today)
        hourly_name = period == "hour" and busiest > NAMED_MAX
        if busiest > NAMED_MAX and not hourly_name:
            plan.problems.append(
                f"its name says {_adverb(period)} but it runs {busiest} times {runs[period]}"
            )
        elif period == "hour" and len(spec.hours) < 24:
            plan.notes.append("its name says hourly but it skips some hours")
    swapped = _swapped_hour(spec, job.name) if period is None else None
    if swapped is not None:
        plan.notes.append(swapped)
    per_hour = _per_hour_problem(spec, job, hourly_name=hourly_name)
    if per_hour is not None:
        plan.problems.append(per_hour)
    if plan.problems:
        plan.suggestion = _suggest(spec, period)
    return plan


def _per_hour_problem(spec: CronSpec, job: Job, *, hourly_name: bool) -> str | None:
    """What is wrong with how often the job fires in an hour, saying the count once:
    "it fires 60 times an hour (more than 4 needs allow_frequent: true), but
    max_runs_per_hour is 2, so runs would be skipped every hour". The frequency rule
    sits by the count it is about: allow_frequent accepts the count, it does not stop
    the cap from skipping runs (review27 R3 L4). A job that sets allow_frequent is not
    told it needs it: "allowed by allow_frequent: it fires 60 times an hour but …"
    (recheck27 Kc L6)."""
    over_cap = spec.per_hour > job.max_runs_per_hour
    frequent = spec.per_hour > FREQUENT_PER_HOUR
    if not (hourly_name or over_cap or frequent):
        return None
    if hourly_name:
        said = f"its name says hourly but it runs {spec.per_hour} times an hour"
    else:
        said = f"it fires {spec.per_hour} times an hour"
    needs = frequent and not job.allow_frequent
    if needs:
        said += f" (more than {FREQUENT_PER_HOUR} needs allow_frequent: true)"
    if over_cap:
        joint = ", and" if hourly_name else (", but" if needs else " but")
        said += (
            f"{joint} max_runs_per_hour is {job.max_runs_per_hour},"
            " so runs would be skipped every hour"
        )
    return said


def _swapped_hour(spec: CronSpec, name: str) -> str | None:
    """A note when a job named like a daily one fixes only its minute, with a value that
    reads as an hour: `8 * * * *` named ``morning-report`` runs 24 times a day."""
    minute, hour, dom, month, dow = spec.fields
    if hour != "*" or not minute.isdigit() or not 1 <= int(minute) <= 23:
        return None
    lowered = name.lower()
    if not any(word in lowered for word in DAY_HINTS):
        return None
    days = "each day" if (dom, month, dow) == ("*", "*", "*") else "on those days"
    return (
        f"its name reads like a daily job, but it runs every hour at :{int(minute):02d}"
        f" ({spec.per_day} runs a day); for {int(minute):02d}:00 {days} write"
        f" `0 {int(minute)} {dom} {month} {dow}`"
    )


def _adverb(period: str) -> str:
    return {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}[period]


def lint_jobs(policy: Policy, *, now: float) -> list[JobPlan]:
    """Every job of the policy, in order; a repeated name is refused."""
    return [plan for _, plan in _plans(enumerate(policy.jobs), policy, now=now)]


def _plans(
    jobs: Iterable[tuple[int, Job]], policy: Policy, *, now: float
) -> list[tuple[int, JobPlan]]:
    """Each job's plan, with its index under ``jobs``; a repeated name is refused."""
    plans: list[tuple[int, JobPlan]] = []
    seen: set[str] = set()
    for i, job in jobs:
        plan = lint_job(job, timezone=job_timezone(job, policy), now=now)
        if job.name in seen:
            plan.error = f"another job is already named {job.name!r}; names must be unique"
        seen.add(job.name)
        plans.append((i, plan))
    return plans


def check_jobs(policy: Policy, *, now: float, source: str = "policy") -> list[JobPlan]:
    """Lint every job; raise :class:`PolicyError` naming each refused job.

    Raises:
        PolicyError: one or more jobs are refused (the process must not start).
    """
    plans = _plans(enumerate(policy.jobs), policy, now=now)
    refusal = _refusal(plans, source)
    if refusal is not None:
        raise PolicyError(refusal)
    return [plan for _, plan in plans]


def _refusal(plans: list[tuple[int, JobPlan]], source: str) -> str | None:
    """What :func:`check_jobs` says of the refused jobs (None: none is)."""
    refused = [(i, p) for i, p in plans if p.refused]
    if not refused:
        return None
    lines = [f"{source}: {plural(len(refused), 'job')} refused:"]
    for i, plan in refused:
        reason = plan.error or "; ".join(plan.problems)
        lines.append(f"  jobs.{i} ({plan.name}): `{plan.cron}` {plan.words or ''}".rstrip())
        lines.append(f"    {reason}")
        if not plan.error:  # a schedule problem (a repeated name has nothing to suggest)
            if plan.suggestion:
                lines.append(f"    did you mean `{plan.suggestion}`?")
            lines.append("    set allow_frequent: true on the job if this is intended")
    lines.append(f"check them with: {preview_command(source)}")
    return "\n".join(lines)


def preview_command(source: str) -> str:
    """``nightshift jobs preview``, with ``--config`` when the file read is not the
    default one (audit24 claims C8: the hint checked ./nightshift.yml after ``run
    --config p.yml``). The preview reads no database, so ``--db`` is not needed."""
    if source == "policy" or Path(source) == Path("nightshift.yml"):
        return "nightshift jobs preview"
    return f"nightshift jobs preview --config {shlex.quote(source)}"


# The keys of a job the lint reads (a job is linted when these are right).
LINTED = frozenset({"name", "cron", "timezone", "max_runs_per_hour", "allow_frequent"})
_STAND_IN = {"url": "http://127.0.0.1/", "scope": "_/_/_"}  # read by no check here


def refused_jobs(data: dict[str, Any], source: str) -> str | None:
    """The jobs' refusals in a policy file whose keys are refused (``load_policy(path,
    also=refused_jobs)`` asks, so that one message says both): each job whose linted
    keys are right is linted, the others' keys left at their defaults."""
    raw = data.get("jobs")
    if not isinstance(raw, list):
        return None
    jobs = [(i, job) for i, item in enumerate(raw) if (job := _lintable(item)) is not None]
    try:  # the time zones the jobs fall back on, when those keys are right
        zones = Policy.model_validate({k: data[k] for k in ("timezone", "budgets") if k in data})
    except ValidationError:
        zones = Policy()
    return _refusal(_plans(jobs, zones, now=time.time()), source)


def _lintable(item: object) -> Job | None:
    if not isinstance(item, dict):
        return None
    try:
        return Job.model_validate(item)
    except ValidationError as exc:
        wrong = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
    if wrong & LINTED or not wrong:
        return None
    kept = {key: value for key, value in item.items() if key not in wrong}
    for key, stand_in in _STAND_IN.items():
        kept.setdefault(key, stand_in)  # its own error is said; the time zone is then the policy's
    try:
        return Job.model_validate(kept)
    except ValidationError:
        return None
