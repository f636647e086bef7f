"""``/agent jobs``, ``pause``, ``resume`` (the kill switch) and ``digest``.

Example:
    >>> # /agent jobs
    >>> # /agent pause rss-hourly      (admins; audited; survives restarts)
    >>> # /agent resume all
    >>> # /agent digest yesterday
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.blocks import context, echo, fit_text, section
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_core import local_time
from bot.digest.poster import digest_clock
from bot.digest.queries import day_bounds
from bot.digest.render import SKIP_WORDS, duration
from bot.escape import slack_text
from bot.jobs import state
from bot.jobs.status import why_failed
from bot.slack.limits import LIST_TEXT
from guards.errors import NotFound
from guards.scopes import Scope, ScopeError
from guards.store import Tx
from guards.words import plural

if TYPE_CHECKING:
    from bot.digest.build import Built
    from bot.digest.poster import DigestPoster, PostedDigest
    from bot.jobs.runner import JobRunner
    from bot.jobs.status import JobStatus

__all__ = ["cmd_digest", "cmd_jobs", "cmd_pause", "cmd_resume"]

RUN_MARKS = {
    "succeeded": "✅",
    "failed": "❌",
    "timeout": "⌛",
    "abandoned": "⚠️",
    "running": "🏃",
    "skipped": "⏭",
}
MAX_JOBS = 30  # job sections in /agent jobs (about 250 characters each)
NOTHING_YET = (
    "Nothing to digest yet: no agent has shown up (a reservation, refused call, heartbeat,"
    " job run, route, validation or alert)."
)
WHY_CHARS = 120  # of why a run failed, on its "last:" line (its record keeps 200 of the answer)


def _runner(ctx: Context) -> JobRunner | None:
    runner: JobRunner | None = ctx.ns.extras.get("jobs")
    return runner


def _when(ctx: Context, ts: float, tz: ZoneInfo) -> str:
    now = ctx.ns.clock.now()
    local = datetime.fromtimestamp(ts, tz)
    today = datetime.fromtimestamp(now, tz).date()
    text = local.strftime("%H:%M" if local.date() == today else "%a %d %b %H:%M")
    delta = ts - now
    return f"{text} (in {duration(delta)})" if delta > 0 else text


def _why(run: state.RunRow) -> str:
    """`` (HTTP 500: upstream exploded…)`` for a failed or timed-out run, else nothing: the
    target's words, masked, cut for a phone and escaped (they cannot ping or link)."""
    said = why_failed(run.state, run.http_status, run.detail)
    return f" ({slack_text(said, limit=WHY_CHARS)})" if said else ""


def _status_lines(ctx: Context, s: JobStatus) -> list[str]:
    tz = ZoneInfo(s.plan.timezone)
    if s.paused_by is not None:
        who = "all jobs paused" if s.paused_all else "paused"
        head = f"⏸ *{s.job.name}* {who} by <@{s.paused_by}>"
    else:
        head = f"▶️ *{s.job.name}* active"
    lines = [
        head,
        f"`{s.job.cron}` {s.plan.words} ({s.plan.timezone}) → {s.job.scope}",
    ]
    if s.next_fires:
        label = "next (skipped while paused)" if s.paused_by is not None else "next"
        lines.append(f"{label}: " + ", ".join(_when(ctx, t, tz) for t in s.next_fires))
    if s.last is None:
        lines.append("last: never ran")
    else:
        run = s.last
        mark = RUN_MARKS.get(run.state, "•")
        what = run.state
        if run.state == "skipped":
            what = f"skipped ({SKIP_WORDS.get(run.reason or '', run.reason)})"
        took = ""
        if run.duration_ms is not None:
            ms = run.duration_ms
            took = f" in {ms} ms" if ms < 1000 else f" in {duration(ms / 1000)}"
        why = _why(run)
        lines.append(f"last: {mark} {what} {_when(ctx, run.scheduled_for, tz)}{took}{why}")
        if s.going is not None:  # a later fire was skipped while it runs
            lines.append(f"running: {RUN_MARKS['running']} {_when(ctx, s.going.scheduled_for, tz)}")
        done = s.finished
        if run.state in ("skipped", "running") and done is not None:  # and how the last ended
            mark = RUN_MARKS.get(done.state, "•")
            when = _when(ctx, done.scheduled_for, tz)
            lines.append(f"last run: {mark} {done.state} {when}{_why(done)}")
    return lines


def _jobs_footer(statuses: list[JobStatus], *, of: int, namespace: str | None) -> str:
    paused = sum(1 for s in statuses if s.paused_by)
    failing = sum(1 for s in statuses if s.failing)
    where = f" in {namespace} (of {of})" if namespace else ""
    also = f", {failing} failing" if failing else ""
    jobs = plural(len(statuses), "job")
    return f"{jobs}{where}, {paused} paused{also} · `/agent pause <job|all>` stops runs"


def _more_jobs(statuses: list[JobStatus], *, narrow: bool) -> Callable[[int], str]:
    """The line for the N jobs left out of the end of ``statuses`` (counted in jobs)."""

    def more(hidden: int) -> str:
        left = statuses[len(statuses) - hidden :]
        paused = sum(1 for s in left if s.paused_by)
        failing = sum(1 for s in left if s.failing and not s.paused_by)
        notes = [f"{paused} paused"] if paused else []
        notes += [f"{failing} failing"] if failing else []
        what = f" ({', '.join(notes)})" if notes else ""
        hint = " · `/agent jobs <namespace>` lists one namespace" if narrow else ""
        return f"… and {plural(hidden, 'more job')}{what}{hint}"

    return more


def _namespace_of(s: JobStatus) -> str:
    return s.job.scope.split("/", 1)[0]


@subcommand("jobs", usage="jobs [namespace]")
async def cmd_jobs(ctx: Context, args: list[str]) -> Reply:
    """Scheduled agent jobs: paused and failing first, next runs in words, last run."""
    if len(args) > 1:
        raise UsageError("`jobs` takes at most a namespace (`pause <job>` acts on one job)")
    namespace = args[0] if args else None
    runner = _runner(ctx)
    if runner is None or not runner.jobs:
        if namespace is not None:
            raise UsageError("there are no scheduled jobs: add them under `jobs:` in the policy")
        return Reply.text_only("No scheduled jobs: add them under `jobs:` in the policy file.")
    every = await runner.statuses()
    statuses = every
    if namespace is not None:
        statuses = [s for s in every if _namespace_of(s) == namespace]
        if not statuses:
            known = sorted({_namespace_of(s) for s in every})
            listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if known[20:] else "")
            raise UsageError(f"no job runs in namespace `{echo(namespace)}`; jobs run in: {listed}")
    # what needs a hand first: paused, then failing; otherwise the policy's order
    statuses = sorted(statuses, key=lambda s: (not s.paused_by, not s.failing))
    foot = _jobs_footer(statuses, of=len(every), namespace=namespace)
    more = _more_jobs(statuses, narrow=namespace is None)
    texts = ["\n".join(_status_lines(ctx, s)) for s in statuses]
    shown, room = 0, LIST_TEXT  # MAX_JOBS, or fewer long ones: what one Slack message takes
    while shown < min(len(texts), MAX_JOBS) and len(texts[shown]) <= room:
        room -= len(texts[shown])
        shown += 1
    # the footer first: no cut can drop the kill-switch state
    blocks = [context(foot), *(section(t) for t in texts[:shown])]
    if len(statuses) > shown:
        blocks.append(context(more(len(statuses) - shown)))
    text = fit_text([foot], [f"\n{t}" for t in texts[:shown]], more=more, total=len(texts))
    return Reply(text=text, blocks=blocks)


def _target(ctx: Context, args: list[str]) -> str:
    if len(args) != 1:
        raise UsageError()
    name = args[0]
    if name.lower() == "all":
        return state.ALL
    runner = _runner(ctx)
    names = list(runner.jobs) if runner else []
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        known = f" Jobs: {', '.join(names)}." if names else " The policy has no jobs."
        raise NotFound(f"There is no job {name[:64]!r}.{hint}{known}")
    return name


def _label(target: str) -> str:
    return "all jobs" if target == state.ALL else target


@subcommand("pause", usage="pause <job|all>")
async def cmd_pause(ctx: Context, args: list[str]) -> Reply:
    """Kill switch: stop a job (or all jobs) from running until resumed (admins)."""
    await ctx.require_admin("pause jobs")  # first: a refusal is audited, typo or not
    target = _target(ctx, args)

    runner = _runner(ctx)
    names = [target] if target != state.ALL else list(runner.jobs) if runner else []

    def apply(tx: Tx) -> tuple[bool, list[state.RunRow]]:
        changed = state.pause(tx, job=target, actor=ctx.actor)
        if changed:
            tx.audit(
                actor=ctx.actor, action="job.pause", target=target, before="active", after="paused"
            )
        going = (state.running_run(tx, name) for name in names)
        return changed, [run for run in going if run is not None]

    changed, going = await ctx.ns.store.write(apply)
    if not changed:
        verb = "were" if target == state.ALL else "was"
        return Reply.text_only(f"{_label(target)} {verb} already paused.")
    at = datetime.fromtimestamp(ctx.ns.clock.now(), ZoneInfo(ctx.ns.policy.timezone))
    resume = "all" if target == state.ALL else target
    text = (
        f"⏸ {_label(target)} paused by <@{ctx.user_id}> at {at:%H:%M}: runs are skipped "
        f"until `/agent resume {resume}`."
    )
    if going:
        text += "\n" + _still_going(ctx, going, one=target != state.ALL)
    return Reply.text_only(text, ephemeral=False)


def _still_going(ctx: Context, runs: list[state.RunRow], *, one: bool) -> str:
    """The runs a pause leaves going, e.g. ``The run started at 00:15 goes on: a pause does
    not stop a run; its 5m timeout ends it by 00:20 at the latest.``"""
    runner = _runner(ctx)

    def started(r: state.RunRow) -> str:
        return f"started at {local_time(ctx, r.decided_at)}"

    def ends(r: state.RunRow) -> str:
        job = runner.jobs.get(r.job) if runner else None
        if job is None:
            return ""
        # never earlier than the real end: up to the second, shown when not :00
        end = math.ceil(r.decided_at + job.timeout_seconds)
        at = local_time(ctx, end, seconds=end % 60 != 0)
        return f"its {duration(job.timeout_seconds)} timeout ends it by {at} at the latest"

    if one:
        limit = f"; {ends(runs[0])}" if ends(runs[0]) else ""
        return f"The run {started(runs[0])} goes on: a pause does not stop a run{limit}."
    listed = "; ".join(
        f"`{r.job}` {started(r)}" + (f" ({ends(r)})" if ends(r) else "") for r in runs[:10]
    )
    more = f"; and {len(runs) - 10} more" if len(runs) > 10 else ""
    return f"Runs going on (a pause does not stop a run): {listed}{more}."


@subcommand("resume", usage="resume <job|all>")
async def cmd_resume(ctx: Context, args: list[str]) -> Reply:
    """Lift the kill switch of a job; `all` lifts every pause (admins)."""
    await ctx.require_admin("resume jobs")  # first: a refusal is audited, typo or not
    target = _target(ctx, args)

    def apply(tx: Tx) -> tuple[list[str], bool]:
        lifted = state.resume(tx, job=target)
        for job in lifted:
            tx.audit(
                actor=ctx.actor, action="job.resume", target=job, before="paused", after="active"
            )
        return lifted, state.ALL in state.pauses(tx)

    lifted, all_paused = await ctx.ns.store.write(apply)
    if not lifted:
        note = " (all jobs are paused: `/agent resume all`)" if all_paused else ""
        if target == state.ALL:
            return Reply.text_only("No job was paused.")
        return Reply.text_only(f"{target} was not paused{note}.")
    text = f"▶️ {_label(target)} resumed by <@{ctx.user_id}>: the next scheduled run goes ahead."
    own = [job for job in lifted if job != state.ALL]
    if target == state.ALL and own:  # paused one by one (a broken job, say): said aloud
        text += f" That lifts the pauses of {', '.join(f'`{echo(j)}`' for j in own)} too."
    if all_paused:
        text += " All jobs are still paused, though: `/agent resume all`."
    return Reply.text_only(text, ephemeral=False)


@subcommand("digest", usage="digest [yesterday] [namespace]")
async def cmd_digest(ctx: Context, args: list[str]) -> Reply:
    """Today's digest so far (only to you); `yesterday`: the last full day, as posted.
    With several namespaces and none named, the first, naming the others."""
    poster: DigestPoster | None = ctx.ns.extras.get("digest")
    if poster is None:
        return Reply.text_only("The digest is not running in this Nightshift.")
    yesterday = False
    namespace: str | None = None
    for arg in args:
        if arg.lower() == "yesterday":
            yesterday = True
        elif namespace is None:
            try:
                namespace = Scope.parse(arg).namespace
            except ScopeError as exc:
                raise UsageError(str(exc)) from None
        else:
            raise UsageError()
    began = dict(await poster.namespaces())  # namespace -> when its first agent showed up
    known = list(began)
    chosen = namespace is None  # none named: the first, and the reply says which
    if namespace is None:
        if not known:
            return Reply.text_only(NOTHING_YET)
        namespace = known[0]
    elif namespace not in known:  # a typo ("yesterdy") must not read as an empty day
        close = difflib.get_close_matches(namespace, [*known, "yesterday"], n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        listed = ", ".join(known[:10]) or "none yet"
        if len(known) > 10:
            listed += f" and {len(known) - 10} more"
        raise UsageError(f"No namespace `{namespace}` has shown up yet (known: {listed}).{hint}")
    day = poster.today(namespace) - timedelta(days=1 if yesterday else 0)
    note = _others_note(namespace, [n for n in known if n != namespace], chosen=chosen)
    tz = poster.builder.timezone(namespace)
    if yesterday and began[namespace] >= day_bounds(day, tz)[1]:
        # it began today: the digest posted under yesterday's date is today's first part;
        # said in the namespace's own zone, named when it is not the policy's (audit23
        # tenants F4: 11:24 UTC read as the time on what was already its next day)
        posted = await poster.posted(namespace, day)
        return Reply.text_only(_first_day(ctx, namespace, began[namespace], tz, posted=posted))
    if yesterday and (posted := await poster.posted(namespace, day)) is not None:
        at = datetime.fromtimestamp(posted.posted_at, tz)
        shown: PostedDigest | Built = posted
        foot = f"as posted to <#{posted.channel}> at {at:%H:%M}"
    else:
        shown = await poster.builder.build(namespace, day, partial=not yesterday)
        foot = "a preview: the posted digest also carries a chart of the last 7 days"
    # the note in the text too: a client showing the text alone must see the others exist
    foot += f" · {note}" if note else ""
    return Reply(text=f"{shown.text}\n\n{foot}", blocks=[*shown.blocks, context(foot)])


def _others_note(namespace: str, others: list[str], *, chosen: bool) -> str:
    """Which namespace a digest shows when several have one, and how to ask for another:
    ``shown: acme, the first of 2 namespaces; the other: tok (`/agent digest tok`)``."""
    if not others:
        return ""
    listed = ", ".join(others[:10]) + (f" and {len(others) - 10} more" if others[10:] else "")
    ask = f"`/agent digest {others[0]}`"
    if not chosen:
        return f"other namespaces: {listed} ({ask})"
    of = plural(len(others) + 1, "namespace")
    other = "the other" if len(others) == 1 else "the others"
    return f"shown: {namespace}, the first of {of}; {other}: {listed} ({ask})"


def _first_day(
    ctx: Context, namespace: str, began: float, tz: ZoneInfo, *, posted: PostedDigest | None
) -> str:
    """What `digest yesterday` says of a namespace that began today (in its time zone):
    whether its day so far went out, from the ``digests`` row, not from the clock."""
    digest = ctx.ns.policy.digest
    at = digest.time
    zone = "" if tz.key == ctx.ns.policy.timezone else f" ({tz.key})"
    local = datetime.fromtimestamp(began, tz)
    channel = ctx.ns.policy.channels.digest
    so_far = ""
    if posted is not None:  # when it went out (a catch-up after downtime: later than `at`)
        sent = datetime.fromtimestamp(posted.posted_at, tz)
        so_far = f" Its day so far was posted to <#{posted.channel}> today at {sent:%H:%M}{zone}."
    elif local.time() < digest_clock(at):  # its day so far is due at `at` today
        if not digest.enabled or channel is None:
            so_far = ""
        elif datetime.fromtimestamp(ctx.ns.clock.now(), tz).time() < digest_clock(at):
            so_far = f" Its day so far is posted today at {at}{zone}."
        else:  # due, and the next tick (every 20 s) posts it
            so_far = f" Its day so far is due at {at}{zone} and has not gone out yet."
    if not digest.enabled:
        later = " Digests are off (`digest.enabled: false`)"
    elif channel is None:
        later = " No digest is posted: no channel is set (`channels.digest`)"
    else:
        later = f" Today's digest is posted tomorrow at {at}"
    # dated by a refusal counted before migration 0049 (per day, no time): the start of its
    # day stands for it, and is not said as the time it began (recheck27 Kd L2)
    when = "" if began == day_bounds(local.date(), tz)[0] else f" at {local:%H:%M}{zone}"
    return (
        f"`{namespace}` began today{when}: it has no full day yet.{so_far}"
        f"{later}; `/agent digest {namespace}` shows today so far."
    )
