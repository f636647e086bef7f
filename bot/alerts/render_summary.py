"""A firing's facts as one sentence with its figures (a budget refused, an overrun, ...).

:func:`summary` is the line under an alert's title (:mod:`bot.alerts.render`); every
string the agent chose is put on one line and escaped first.

Example:
    >>> from zoneinfo import ZoneInfo
    >>> facts = {"task_id": "T-1", "attempts": 3, "limit": 3}
    >>> summary("attempts_exhausted", facts, ZoneInfo("UTC"))
    'task T-1 asked for attempt 3 of 3'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.model import (
    AFTER_CALLS,
    AFTER_MICROS,
    OPENED_FOR,
    OVERRUN_TOTAL,
    STREAM_COUNTS,
    STREAMS,
)
from bot.alerts.model_warnings import warned_of
from bot.alerts.render_time import clock_time, duration
from bot.escape import member_or_name, operator_mentions, plain_line, slack_text
from guards.money import format_usd, usd_for
from guards.tokens import ACTOR_PREFIX
from guards.words import plural

__all__ = [
    "DETAIL_CHARS",
    "FACT_CHARS",
    "STATUS_DETAIL_CHARS",
    "heartbeat_detail",
    "summary",
]

FACT_CHARS = 600  # one string of a firing in the sentence: a task id, a reason, a path
DETAIL_CHARS = 200  # what an agent's last heartbeat said, in its missed-heartbeat alert
STATUS_DETAIL_CHARS = 80  # ... and next to its status word in /agent status


def _usd(value: Any) -> str:
    """Cents, or every digit for an amount under a cent (not "$0.00", recheck31 L6)."""
    if not isinstance(value, int):
        return "?"
    return format_usd(value, exact=0 < abs(value) < 10_000)


def _calls(value: Any) -> str:
    """``1 call``, ``3 calls``; ``? calls`` when the event did not say."""
    return _count(value, "call")


def _count(value: Any, word: str) -> str:
    """``1 time``, ``3 times``; ``? times`` when the event did not say."""
    return plural(value, word) if isinstance(value, int) else f"? {word}s"


def _were(value: Any) -> str:
    """The verb after a count: ``1 was``, ``3 were``."""
    return "was" if value == 1 else "were"


def _streams(f: dict[str, Any]) -> str:
    """The stream of the latest firing, and the agent's other streams that fired in this
    alert before it (a burst on a second stream must not hide the first's)."""
    stream = f.get("stream", "?")
    others = [s for s in f.get(STREAMS) or [] if isinstance(s, str) and s != stream]
    if not others:
        return f"stream {stream}"
    return f"stream {stream} (also {', '.join(slack_text(s, 64) for s in others)})"


def _burst_counts(f: dict[str, Any]) -> str:
    """``stream posts: 9 duplicates``; for a burst on several streams, the total and each
    stream's (audit26 A3 L5: the last stream's count read as the whole burst's):
    ``75 duplicates in 5 streams (cities 9, orders 16, …)``."""
    counts = {
        str(s): n
        for s, n in (f.get(STREAM_COUNTS) or {}).items()
        if isinstance(n, int) and not isinstance(n, bool)
    }
    if len(counts) < 2:
        return f"{_streams(f)}: {_count(f.get('rejected'), 'duplicate')}"
    each = ", ".join(f"{slack_text(s, 64)} {n}" for s, n in counts.items())
    total = sum(counts.values())
    return f"{plural(total, 'duplicate')} in {len(counts)} streams ({each})"


def _who(actor: str) -> str:
    """A person as a mention; a token as ``@token:tok_…`` (``<@token:…>`` mentions nobody:
    review25 L1), as :func:`bot.alerts.render.resolver` names who resolved an alert."""
    return member_or_name(actor) if actor.startswith(ACTOR_PREFIX) else f"<@{actor}>"


def _breaker(f: dict[str, Any]) -> str:
    text = operator_mentions(f"{f.get('reason') or 'breaker opened'}")
    if f.get("trip") == "trial" and f.get(OPENED_FOR):
        text += f" (it opened for: {operator_mentions(f[OPENED_FOR])})"
    if f.get("cooldown_seconds"):
        text += f"; cool-down {duration(f['cooldown_seconds'])}"
    actor = f.get("actor")
    if isinstance(actor, str) and actor and f" by {actor}" not in str(f.get("reason") or ""):
        text += f"; by {_who(actor)}"  # not twice: "forced open by U0DANA" names them
    after, calls = f.get(AFTER_MICROS), f.get(AFTER_CALLS)
    if isinstance(after, int) and isinstance(calls, int) and after > 0:
        granted = "call" if calls == 1 else "calls"
        more = format_usd(after, exact=after < 10_000)  # not "$0.00 more" for $0.004
        text += f"; since then {more} more from {calls} {granted} granted before it opened"
    return text


def _budget_exhausted(f: dict[str, Any]) -> str:
    others = [o for o in f.get("also") or () if isinstance(o, dict)]
    also = (
        "; also over: "
        + ", ".join(f"{o.get('scope')} ({_also_level(o)} {o.get('window')})" for o in others)
        if others
        else ""
    )
    return _refused(f, budget=f"the {f.get('level', '')} {f.get('window', '')} budget", tail=also)


def _also_level(other: dict[str, Any]) -> str:
    """What another budget in a call's way is: its level, or for a namespace's budget for
    one model that model's name (review23 L3: ``acme (model day)`` said not which)."""
    level, model = other.get("level"), other.get("model")
    return str(model) if level == "model" and isinstance(model, str) and model else str(level)


def _model_budget_exhausted(f: dict[str, Any]) -> str:
    """``acme's day budget for claude-opus-4-1 is spent ($50.00 of $50.00); a call asking
    $0.40 was refused (raise budgets.models.claude-opus-4-1 in the policy and reload it:
    SIGHUP)``."""
    model = str(f.get("model", ""))
    budget = f"{f.get('scope', '')}'s {f.get('window', '')} budget for {model}"
    fix = f" (raise budgets.models.{model} in the policy and reload it: SIGHUP)"
    return _refused(f, budget=budget, tail=fix)


def _refused(f: dict[str, Any], *, budget: str, tail: str) -> str:
    """A budget refusal's sentence: ``budget`` (what refused) and its figures, ``tail``
    after them (the other budgets in the way, or how to raise it)."""
    amounts = [
        f.get(k) for k in ("limit_micros", "spent_micros", "held_micros", "requested_micros")
    ]
    if not all(isinstance(a, int) for a in amounts):
        return f"{budget}: a call was refused"
    limit, spent, held, asked = (int(a) for a in amounts)  # type: ignore[arg-type]
    left = max(0, limit - spent - held)
    usd = usd_for(spent, held, left, asked)
    if asked > limit:
        return f"a call asking {usd(asked)} was refused: more than {budget} of {usd(limit)}{tail}"
    if spent >= limit:
        spent_of = f"{usd(spent)} of {usd(limit)}"
        return f"{budget} is spent ({spent_of}); a call asking {usd(asked)} was refused{tail}"
    return (
        f"a call asking {usd(asked)} was refused: {budget} has {usd(left)} left"
        f" ({usd(spent)} spent + {usd(held)} held of {usd(limit)}){tail}"
    )


def _budget_threshold(f: dict[str, Any]) -> str:
    period = f.get("period")
    of = f" ({period})" if isinstance(period, str) and period and period != "all" else ""
    return (
        f"{f.get('level', '')} {f.get('window', '')} budget{of} passed"
        f" {float(f.get('fraction', 0)):.0%}: {_usd(f.get('spent_micros'))} spent"
        f" of {_usd(f.get('limit_micros'))}"
    )


def _model_budget_threshold(f: dict[str, Any]) -> str:
    """``acme's day budget for claude-opus-4-1 (2026-11-28) passed 80%: $40.00 spent of
    $50.00 (raise budgets.models.claude-opus-4-1.day in the policy and reload it: SIGHUP)``,
    then the other warnings the alert holds (recheck24 M1): ``; still past a mark too:
    claude-sonnet-4-5 day 80% ($0.85 of $1.00 then)``."""
    model, window = str(f.get("model", "")), str(f.get("window", ""))
    period = f.get("period")
    of = f" ({period})" if isinstance(period, str) and period and period != "all" else ""
    others = [
        f"{e.get('model', '')} {e.get('window', '')} {float(e.get('fraction', 0)):.0%}"
        f" ({_usd(e.get('spent_micros'))} of {_usd(e.get('limit_micros'))} then)"
        for e in warned_of(f)[:-1]
    ]
    too = f"; still past a mark too: {', '.join(others)}" if others else ""
    return (
        f"{f.get('scope', '')}'s {window} budget for {model}{of} passed"
        f" {float(f.get('fraction', 0)):.0%}: {_usd(f.get('spent_micros'))} spent"
        f" of {_usd(f.get('limit_micros'))} (raise budgets.models.{model}.{window} in the"
        f" policy and reload it: SIGHUP){too}"
    )


def _in_conversation(f: dict[str, Any]) -> str:
    """ " in conversation c42" for an alert grouped at its agent (its conversation's firing)."""
    conversation = f.get("conversation")
    if not isinstance(conversation, str) or "/" not in conversation:
        return ""
    return f" in conversation {conversation.rsplit('/', 1)[1]}"


def _overrun(f: dict[str, Any]) -> str:
    late = " after its hold expired" if f.get("late") else ""
    amounts = [f.get(k) for k in ("charged_micros", "held_micros", "overrun_micros")]
    if not all(isinstance(a, int) for a in amounts):
        where = _in_conversation(f)
        return f"{f.get('reservation_id', '')}{where} was charged more than it held{late}"
    charged, held, over = (int(a) for a in amounts)  # type: ignore[arg-type]
    total = f.get(OVERRUN_TOTAL)
    total = int(total) if isinstance(total, int) else over
    usd = usd_for(charged, held, over, total)  # exact when cents would say "$0.00 over"
    in_all = f"; {usd(total)} over in all since it opened" if total > over else ""
    return (
        f"{f.get('reservation_id', '')}{_in_conversation(f)} charged {usd(charged)}{late} on a"
        f" {usd(held)} hold: {usd(over)} over{in_all}"
    )


def heartbeat_detail(detail: object, limit: int = DETAIL_CHARS) -> str:
    """A heartbeat's ``detail`` for Slack: one line (line breaks, runs of spaces and
    control characters folded into one space), at most ``limit`` characters with "…",
    escaped; "" when there is none. Escape sequences (a detail kept before the API took
    them out) and direction marks and zero-width characters (an RLM would reorder what
    follows it: review26 R3 L5) are dropped, and credentials masked through them
    (:func:`bot.escape.plain_line`: a detail kept with a token split by a zero-width
    space is not joined whole: recheck28 Kc M1).

    >>> heartbeat_detail("rate limited\\r\\n  by <!here>\\x00 upstream", 40)
    'rate limited by &lt;!here&gt; upstream'
    >>> heartbeat_detail("\\u05e9\\u05dc\\u05d5\\u05dd\\u200f \\x1b[31m503\\x1b[0m\\u200b")
    'שלום 503'
    """
    if not isinstance(detail, str):
        return ""
    return slack_text(plain_line(detail), limit)


def _heartbeat(f: dict[str, Any], tz: ZoneInfo, detail: object) -> str:
    seen = f.get("last_seen")
    since = f"since {clock_time(seen, tz)}" if isinstance(seen, int | float) else "ever"
    said = heartbeat_detail(detail)
    last = f"; its last heartbeat said: {said}" if said else ""
    return f"no heartbeat {since} ({f.get('misses', '?')} missed){last}"


def _hanging(f: dict[str, Any], tz: ZoneInfo) -> str:
    """``res_… on claude-… has held $0.40 for 5m 1s (since 03:12) without a settle; …``"""
    res_id = f.get("reservation_id", "?")
    on = f" on {f['model']}" if f.get("model") else ""
    since = f.get("created_at")
    held = ""
    if isinstance(since, int | float):
        at = f.get("at")
        long = f" for {duration(at - since)}" if isinstance(at, int | float) else ""
        held = f"{long} (since {clock_time(since, tz)})"
    agent = "/".join(str(f.get("scope") or "<scope>").split("/")[:3])
    return (
        f"{res_id}{_in_conversation(f)}{on} has held {_usd(f.get('held_micros'))}{held}"
        f" without a settle; `/agent release {res_id}` ends it, `/agent holds {agent}` lists"
        " them"
    )


_SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "half_open_requested": lambda f: (
        f"cool-down over ({f.get('reason', '')}); approve a trial of"
        f" {_calls(f.get('trial_calls'))} within {_usd(f.get('trial_budget_micros'))}"
    ),
    "budget_exhausted": _budget_exhausted,
    "model_budget_exhausted": _model_budget_exhausted,
    "budget_threshold": _budget_threshold,
    "model_budget_threshold": _model_budget_threshold,
    "overrun": _overrun,
    "hold_expired": lambda f: (
        f"{f.get('reservation_id', '')}{_in_conversation(f)} held {_usd(f.get('held_micros'))}"
        " and never settled;"
        " the hold was released"
    ),
    "runaway": lambda f: (
        f"{_streams(f)}: {_count(f.get('count'), 'item')} where about"
        f" {f.get('expected_count', '?')} {_were(f.get('expected_count'))} expected;"
        " the whole batch was rejected"
        f" (`/agent dedup {f.get('scope', '')}` lists it; `/agent breaker"
        f" {f.get('scope', '<scope>')} open` stops the agent)"
    ),
    "duplicate_burst": lambda f: (
        f"{_burst_counts(f)} rejected in"
        f" {duration(f.get('window_seconds', 0))} (`/agent dedup {f.get('scope', '')}` shows"
        " them; the agent was told each time: is it ignoring the verdict?)"
    ),
    "attempts_exhausted": lambda f: (
        f"task {f.get('task_id', '?')} asked for attempt {f.get('attempts', '?')}"
        f" of {f.get('limit', '?')}"
    ),
    "scope_violation": lambda f: (
        f"token {f.get('token_id', '?')} of {f.get('token_scope', '?')} called {f.get('path', '?')}"
        + (
            f" for {f['tried']}"
            if f.get("tried") and f["tried"].split()[-1] not in f.get("path", "")
            else ""
        )
    ),
    "job_run_cap": lambda f: (
        f"job {f.get('job', '?')} ran {_count(f.get('runs'), 'time')} this hour"
        f" (cap {f.get('limit', '?')}); further runs are skipped"
    ),
    "routing_promoted": lambda f: (
        f"intent {f.get('intent', '?')} now routes {f.get('from_tier', '?')} →"
        f" {f.get('to_tier', '?')} (failure rate {float(f.get('failure_rate', 0)):.0%})"
    ),
}


def summary(kind: str, facts: dict[str, Any], tz: ZoneInfo) -> str:
    """One sentence with the figures of the latest firing.

    Every string fact is put on one line and escaped first (a task id, a reason):
    the agent chose it, so it must not mention anyone, link or start a line. A task id
    is the agent's free text: a credential in it is masked and its marks taken out
    (:func:`bot.escape.plain_line`; the event masks it too, since recheck28 Kc L1).

    Example:
        >>> facts = {"task_id": "<!here>\\nall clear", "attempts": 3, "limit": 3}
        >>> summary("attempts_exhausted", facts, ZoneInfo("UTC"))
        'task &lt;!here&gt; all clear asked for attempt 3 of 3'
    """
    f = {
        k: slack_text(plain_line(v) if k == "task_id" else v, FACT_CHARS)
        if isinstance(v, str)
        else v
        for k, v in facts.items()
    }
    if kind.startswith("breaker_opened"):
        return _breaker(f)
    if kind == "heartbeat_missed":
        return _heartbeat(f, tz, facts.get("detail"))  # (the raw text: cut, then escaped)
    if kind == "hold_hanging":
        return _hanging(f, tz)
    if (fmt := _SUMMARIES.get(kind)) is not None:
        return fmt(f)
    shown = [
        f"{k}: {slack_text(str(v), FACT_CHARS)}"
        for k, v in facts.items()
        if k not in ("at", "scope")
    ]
    return ", ".join(shown) or kind
