"""The digest as Slack Block Kit and as plain text (the same words in both).

The text stands alone: it names every figure the chart shows, and the chart's
legend is a line of emoji squares in the agents' colours. Names an agent chose (its
scope, a model name, a stream) go through :func:`bot.escape.slack_text`: the digest
is posted to a channel, and a model named ``<!channel>`` must not ping it.

Example:
    >>> # text, blocks = render(digest)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.render_time import clock_time, duration
from bot.blocks import bar, context, header, section
from bot.digest.chart import PALETTE
from bot.digest.compute import Digest
from bot.escape import member_or_name, slack_text
from guards.money import format_usd, usd_for
from guards.words import plural

__all__ = ["chart_legend", "duration", "refused_words", "render", "title"]

MAX_JOBS = 8
MAX_MODELS = 3  # model breakers named in the digest (then "N more models")
MAX_SLACK_LIMITS = 5  # limits set in Slack named in the digest (then "N more")
REASON_WORDS = {
    "duplicate": "duplicates",
    "near_duplicate": "near-duplicates",
    "runaway": "runaway batches",
    "empty": "empty",
    "too_large": "too large",
}
SKIP_WORDS = {
    "paused": "paused",
    "overlap": "previous run still going",
    "run_cap": "run cap",
    "breaker_open": "breaker open",
    "budget_spent": "budget spent",
    "missed": "missed while down",
}


def _pct(fraction: float) -> str:
    return f"{fraction:.0%}" if fraction >= 0.01 or fraction == 0 else "<1%"


def title(d: Digest) -> str:
    day = d.day.strftime("%a %Y-%m-%d")
    if d.partial:
        at = datetime.fromtimestamp(d.generated_at, ZoneInfo(d.timezone)).strftime("%H:%M")
        return f"Nightshift digest · {d.namespace} · {day} so far ({at} {d.timezone})"
    return f"Nightshift digest · {d.namespace} · {day} ({d.timezone})"


def chart_legend(d: Digest) -> str:
    """``🟦 acme/a/rss-bot · 🟧 acme/b/ops-bot``: which colour is which agent."""
    return " · ".join(
        f"{PALETTE[i][0]} {slack_text(name)}" for i, (name, _) in enumerate(d.chart_series)
    )


def _spend(d: Digest) -> list[str]:
    # the total reads as its lines read (audit24 agreement F1: "$0.01" over three lines of
    # "$0.004"): exact when a figure is not a whole cent, so it is their sum as shown
    total = usd_for(d.spent_micros, *([d.limit_micros] if d.limit_micros else []))
    if d.limit_micros:
        frac = d.spent_micros / d.limit_micros
        lines = [
            f"*Spend* {total(d.spent_micros)} of {total(d.limit_micros)} "
            f"day budget ({_pct(frac)}) `{bar(frac)}`"
        ]
    else:
        lines = [f"*Spend* {total(d.spent_micros)} (no day budget for {d.namespace})"]
    if not d.agents:
        lines.append("no agent spent anything")
        return lines
    top = max(a.spent_micros for a in d.agents)
    colours = {name: PALETTE[i][0] for i, (name, _) in enumerate(d.chart_series)}
    for a in d.agents:
        mark = colours.get(a.scope, "▫️")
        # an agent's money reads as `/agent budget` reads it, so a figure copied from one
        # matches the other: cents unless one is not a whole cent ("$0.115", never "$0.00")
        usd = usd_for(a.spent_micros, *([a.limit_micros] if a.limit_micros else []))
        if a.limit_micros:
            frac = a.spent_micros / a.limit_micros
            of = f" of {usd(a.limit_micros)} ({_pct(frac)})"
        else:
            frac, of = a.spent_micros / top, ""
        # a code span: bare, `acme/_alice_/bot` shows "alice" in italics (audit26 text 3)
        scope = slack_text(a.scope)
        lines.append(f"{mark} `{bar(frac)}` `{scope}` {usd(a.spent_micros)}{of}")
    if d.agent_count > len(d.agents):
        lines.append(f"… and {plural(d.agent_count - len(d.agents), 'more agent')}")
    return lines


def _models(d: Digest) -> list[str]:
    if not d.models:
        return ["*By model* no charges"]
    usd = usd_for(*(m.charged_micros for m in d.models[:6]))
    parts = [
        f"{slack_text(m.model)} {usd(m.charged_micros)} ({plural(m.calls, 'call')})"
        for m in d.models[:6]
    ]
    lines = ["*By model* " + " · ".join(parts)]
    if d.failed_calls:
        lines.append(f"{d.failed_calls:,} of {plural(d.calls, 'call')} failed or timed out")
    return lines


def _mix(d: Digest) -> list[str]:
    if not d.calls:
        return ["*Model mix* no calls"]
    mix = " · ".join(f"{tier} {_pct(share)}" for tier, share in d.tier_shares.items())
    lines = [f"*Model mix* {mix} of {plural(d.calls, 'call')}"]
    blended, large = d.blended_micros_per_mtok, d.largest_micros_per_mtok
    if blended:  # prices, as price lists write them: in cents; per token, as "saved" is
        line = f"blended {format_usd(blended)} per million tokens"
        if large:
            line += f"; always {d.largest_model}: {format_usd(large)}"
            if large > blended:  # a multiple under 1 ("0.3x") reads as a bug: none
                line += f" ({large / blended:.1f}x)"
        lines.append(line)
    saved = d.saved_micros
    if saved is not None and d.would_cost_micros is not None:
        usd = usd_for(saved, d.would_cost_micros)  # $0.048 of $0.06 when $0.012 was spent
        would = f"(it would have cost {usd(d.would_cost_micros)})"
        if saved >= 0:
            lines.append(f"saved {usd(saved)} against always using {d.largest_model} {would}")
        else:  # a fleet on a model dearer than the large tier's (audit27 B3 L6)
            lines.append(f"cost {usd(-saved)} more than always using {d.largest_model} {would}")
    return lines


def _breakers(d: Digest) -> list[str]:
    b = d.breakers
    line = f"*Breakers* {plural(b.trips, 'trip')}" if b.trips else "*Breakers* no trips"
    if b.longest_scope:
        notes = []
        if b.longest_forced_by:  # a kill switch someone set, not a breaker stuck open
            notes.append(f"forced open by {member_or_name(b.longest_forced_by)}")
        if b.longest_still_open:
            notes.append("still open")
        why = f" ({', '.join(notes)})" if notes else ""
        longest = slack_text(b.longest_scope)
        line += f"; longest open: {longest} {duration(b.longest_seconds)}{why}"
    lines = [line, *_model_outages(d)]
    if b.open_now:
        rest = len(b.open_now) - 5
        more = f" … and {rest} more (`/agent breakers`)" if rest > 0 else ""
        lines.append("not closed now: " + ", ".join(map(slack_text, b.open_now[:5])) + more)
    return lines


def _model_outages(d: Digest) -> list[str]:
    """The model breakers the namespace's traffic met (counted in the trips above, said
    here only): "model breakers acme's calls met: claude-haiku-4-5 2 trips (open from
    13:15 to 13:55)"; a kill switch's "(open since 13:00, forced open by @dana, still
    open at the day's end)"."""
    if not d.model_outages:
        return []
    tz = ZoneInfo(d.timezone)
    noon = datetime.combine(d.day, time(12), tz).timestamp()  # times of the day read bare
    parts = []
    for m in d.model_outages[:MAX_MODELS]:
        spans = []
        for i, (opened, closed) in enumerate(m.spans[:3]):
            who = m.forced_by[i] if i < len(m.forced_by) else None
            since = clock_time(opened, tz, now=noon)
            forced = f", forced open by {member_or_name(who)}" if who else ""
            if closed is not None:
                spans.append(f"from {since} to {clock_time(closed, tz, now=noon)}{forced}")
            else:
                still = "still open" if d.partial else "still open at the day's end"
                spans.append(f"since {since}{forced}, {still}")
        if len(m.spans) > 3:
            spans.append(f"{len(m.spans) - 3} more times")
        trips = f" {plural(m.trips, 'trip')}" if m.trips else ""
        joint = ", and " if any(m.forced_by) else " and "
        parts.append(f"{slack_text(m.model)}{trips} (open {joint.join(spans)})")
    if len(d.model_outages) > MAX_MODELS:
        parts.append(plural(len(d.model_outages) - MAX_MODELS, "more model"))
    return [f"model breakers {d.namespace}'s calls met: " + " · ".join(parts)]


_REFUSED_WORDS = {"breaker": "by a breaker", "budget": "over budget", "attempts": "past attempts"}


def refused_words(counts: Iterable[tuple[str, int]]) -> str:
    """Calls refused before they started by what refused them, in the digest's and
    ``/agent status``'s words (one home, review28 R2 L3).

    >>> refused_words([("breaker", 2), ("budget", 1)])
    '2 by a breaker, 1 over budget'
    """
    return ", ".join(f"{n} {_REFUSED_WORDS.get(why, why)}" for why, n in counts)


def _refused(d: Digest) -> list[str]:
    """The calls the guards refused before they started, and the ceilings they asked."""
    r = d.refused
    if not r.calls:
        return []
    why = refused_words(r.by_reason.items())
    most = ", ".join(f"{slack_text(a)} {n}" for a, n in r.top)
    # a call retried with its key is refused, and counted, each time (review23 M1): the
    # ceilings are what the refused asks held, not what a runaway would have spent
    asked = usd_for(r.asked_micros)(r.asked_micros)
    ceilings = f"its ceiling {asked}" if r.calls == 1 else f"their ceilings {asked} in all"
    return [
        f"*Refused* {plural(r.calls, 'time')} before a call started ({ceilings}): {why};"
        f" most: {most}"
    ]


def _validation(d: Digest) -> list[str]:
    total = sum(d.rejections.values())
    if not total:
        return ["*Validation* no rejections"]
    kinds = ", ".join(f"{REASON_WORDS.get(r, r)} {n:,}" for r, n in d.rejections.items())
    kept_out = plural(d.rejected_items, "item")
    lines = [f"*Validation* {plural(total, 'rejection')} ({kinds}); {kept_out} kept out"]
    if d.top_streams:
        lines.append(
            "top streams: "
            + " · ".join(
                f"{slack_text(scope)} `{slack_text(stream)}` {n:,}"
                for scope, stream, n in d.top_streams
            )
        )
    return lines


def _own(n: int) -> str:
    return f"resolved on {'its' if n == 1 else 'their'} own"


def _answers(t: dict[str, Any]) -> str:
    """How the alerts of a P0/P1 tier were answered, each counted once (the summary's order):
    ``2 acknowledged (MTTA 4m), 1 resolved by a person, 1 not acknowledged (still open)``."""
    n = t.get("alerts", 0)
    acked, person = t.get("acked", 0), t.get("resolved_by_person", 0)
    silenced = t.get("silenced_unanswered", 0)
    parts = []
    if acked:
        notes = []
        if t.get("mtta_seconds") is not None:
            notes.append(f"MTTA {duration(t['mtta_seconds'])}")
        both = t.get("acked_silenced", 0)
        if both:
            notes.append("also silenced" if both == acked else f"{both} also silenced")
        parts.append(f"{acked} acknowledged" + (f" ({'; '.join(notes)})" if notes else ""))
    if person:
        parts.append(f"{person} resolved by a person")
    if silenced:
        parts.append(f"{silenced} silenced")
    # the rest were posted (or paged) and nobody answered them
    nobody = n - acked - person - silenced
    if nobody > 0:
        cleared = min(nobody, t.get("unanswered_resolved", 0))
        still = nobody - cleared
        if not still:
            how = _own(cleared)
        elif not cleared:
            how = "still open"
        else:
            how = f"{cleared} {_own(cleared)}, {still} still open"
        parts.append(f"{nobody} not acknowledged ({how})")
    return ", ".join(parts)


def _alerts(d: Digest) -> list[str]:
    if d.alerts is None:
        return []
    parts = []
    for tier, t in d.alerts.items():
        n = t.get("alerts", 0)
        if not n:
            continue
        # a P2 asks nobody (it waits for this digest): how many, nothing about answers
        answers = _answers(t) if tier != "P2" else ""
        parts.append(f"{tier} {n}" + (f": {answers}" if answers else ""))
    if not parts:
        return ["*Alerts* none"]
    return ["*Alerts* " + " · ".join(parts)]


def _uptime(d: Digest) -> list[str]:
    if not d.uptime:
        return []
    worst = list(d.uptime.items())[:5]
    shown = " · ".join(f"{slack_text(scope)} {fraction:.1%}" for scope, fraction in worst)
    rest = len(d.uptime) - len(worst)
    more = f" · {rest} more at or above" if rest > 0 else ""
    return [f"*Heartbeats* uptime {shown}{more}"]


def _overruns(d: Digest) -> list[str]:
    if not d.overruns:
        return ["*Overruns* none"]
    holds = "its hold" if d.overruns == 1 else "their holds"
    return [
        f"*Overruns* {plural(d.overruns, 'settle')} charged "
        f"{format_usd(d.overrun_micros, exact=True)} beyond {holds}"
    ]


def _late(d: Digest) -> list[str]:
    """Charges no digest of their day shows: it had gone out when they landed."""
    if not d.late:
        return []
    settles = sum(n for _, n, _ in d.late)
    total = sum(m for _, _, m in d.late)
    usd = usd_for(total, *(m for _, _, m in d.late))
    top = ", ".join(f"{agent} {usd(m)}" for agent, _, m in d.late[:3])
    more = f", {plural(len(d.late) - 3, 'more agent')}" if len(d.late) > 3 else ""
    their = "its" if settles == 1 else "their"
    return [
        f"*Charged to earlier days* {usd(total)} from {plural(settles, 'settle')} that came after"
        f" {their} day's digest ({top}{more})"
    ]


def _slack_limits(d: Digest) -> list[str]:
    """Limits set in Slack that still count against the file's: a raise "for tonight"
    nobody undid is read the next morning, and one set for a while says when it ends."""
    if not d.slack_limits:
        return []
    tz = ZoneInfo(d.timezone)
    parts = []
    for r in d.slack_limits[:MAX_SLACK_LIMITS]:
        usd = usd_for(r.limit_micros, *([] if r.policy is None else [r.policy]))
        file = usd(r.policy) if r.policy is not None else "no limit"
        ends = (
            f", until {clock_time(r.until, tz, now=d.generated_at)}"
            if r.until is not None
            else ", until changed"
        )
        parts.append(
            f"`{r.scope}` {r.window} {usd(r.limit_micros)} (file: {file}),"
            f" by {member_or_name(r.set_by)}{ends}"
        )
    more = len(d.slack_limits) - MAX_SLACK_LIMITS
    if more > 0:
        parts.append(f"{more} more (`/agent audit budget`)")
    return ["*Limits set in Slack* " + " · ".join(parts)]


def _jobs(d: Digest) -> list[str]:
    if not d.jobs:
        return []
    parts = []
    for j in d.jobs[:MAX_JOBS]:
        runs = sum(j.runs.values())
        ok = j.runs.get("succeeded", 0)
        # a run a stop or restart cut off is abandoned, not failed: its target may well
        # have finished (`/agent jobs` shows it so, README "Scheduled jobs")
        abandoned = j.runs.get("abandoned", 0)
        bad = runs - ok - j.runs.get("running", 0) - abandoned  # failed or timed out
        text = f"{j.job}: {plural(runs, 'run')}"
        notes = [f"{bad} failed"] if bad else []
        notes += [f"{abandoned} abandoned"] if abandoned else []
        if notes:
            text += f" ({', '.join(notes)})"
        skipped = sum(j.skips.values())
        if skipped:
            why = ", ".join(f"{SKIP_WORDS.get(r, r)} {n}" for r, n in sorted(j.skips.items()))
            text += f", {skipped} skipped ({why})"
        parts.append(text)
    if len(d.jobs) > MAX_JOBS:
        parts.append(plural(len(d.jobs) - MAX_JOBS, "more job"))
    return ["*Jobs* " + " · ".join(parts)]


def render(d: Digest) -> tuple[str, list[dict[str, Any]]]:
    """The digest as (plain text, Block Kit blocks)."""
    groups = [
        _spend(d),
        _models(d) + _mix(d),
        _breakers(d) + _refused(d) + _validation(d) + _overruns(d) + _late(d) + _slack_limits(d),
        _alerts(d) + _uptime(d) + _jobs(d),
    ]
    groups = [g for g in groups if g]
    legend = chart_legend(d)
    foot = f"Chart: spend by agent, last 7 days — {legend}" if legend else ""
    text = "\n\n".join(
        [f"*{title(d)}*", *("\n".join(g) for g in groups)] + ([foot] if foot else [])
    )
    blocks: list[dict[str, Any]] = [header(title(d))]
    blocks.extend(section("\n".join(g)) for g in groups)
    if foot:
        blocks.append(context(foot))
    return text, blocks
