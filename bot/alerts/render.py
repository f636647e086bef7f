"""Alert messages as Block Kit, and every user-facing string of the alerts feature.

A channel message shows the tier, what happened with its figures, the count of
firings, who was paged, the state (acknowledged, silenced, resolved) and the
buttons that still make sense: Acknowledge, Silence 1h (Unsilence while silenced),
Escalate now, Resolve; a half-open request adds Approve trial / Keep open, a budget
alert adds Raise budget. Storm summaries render in :mod:`bot.alerts.render_storm`, a
firing's sentence in :mod:`bot.alerts.render_summary`, durations and clock times in
:mod:`bot.alerts.render_time`.

What an agent chose (the scope, which for a model breaker is ``model:<its model
name>``, a task id, a reason) is shown through :func:`bot.escape.slack_text`: on one
line and escaped, so ``<!channel>`` or a ``<http://…|link>`` shows as text.

Example:
    >>> parse_trial_request(trial_request_value("acme/a/b", 1_767_600_000.0))
    ('acme/a/b', 1767600000.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.model import Alert, tagged
from bot.alerts.render_summary import summary
from bot.alerts.render_time import clock_time, duration
from bot.blocks import actions, button, context, header, section
from bot.escape import member_or_name, slack_text
from guards.money import format_usd
from guards.tokens import ACTOR_PREFIX

__all__ = [
    "HELD_BY",
    "KIND_TITLES",
    "MODEL_BACK",
    "OUTAGE_ALERT",
    "OUTAGE_OF",
    "WITH_IT",
    "WITH_IT_COUNT",
    "BudgetSet",
    "Paged",
    "Silenced",
    "alert_line",
    "alert_message",
    "parse_trial_request",
    "resolver",
    "storm_nudge",
    "title",
    "trial_request_value",
]

TIER_ICONS = {"P0": "🔴", "P1": "🟠", "P2": "🟡"}
# A model's outage (policy alerts.inhibit_by_model), in an alert's facts: an agent's alert
# waiting behind its model's (HELD_BY: the model's breaker key, OUTAGE_ALERT: the model's
# alert; MODEL_BACK: the model's breaker closed and the agent's trial runs), one posted
# after it (OUTAGE_OF), and the agents a model's alert holds back (WITH_IT: the first of
# them, WITH_IT_COUNT: how many).
HELD_BY = "held_by"
MODEL_BACK = "outage_model_back"
OUTAGE_OF = "outage_of"
OUTAGE_ALERT = "outage_alert"
WITH_IT = "outage_agents"
WITH_IT_COUNT = "outage_agents_count"
WITH_IT_NAMED = 5  # the agents a model's alert names
KIND_TITLES = {
    "breaker_opened_spend": "Breaker opened on spend rate",
    "breaker_opened_failures": "Breaker opened on failures",
    "breaker_opened_manual": "Breaker forced open",
    "half_open_requested": "Breaker waits for a trial approval",
    "budget_exhausted": "Budget refused a call",
    "model_budget_exhausted": "Model budget refused a call",
    "budget_threshold": "Budget warning",
    "model_budget_threshold": "Model budget warning",
    "overrun": "Spend over its hold",
    "hold_expired": "Hold expired without a settle",
    "hold_hanging": "Call hanging on its hold",
    "runaway": "Runaway output",
    "duplicate_burst": "Burst of duplicates",
    "heartbeat_missed": "Heartbeat missed",
    "attempts_exhausted": "Task out of attempts",
    "scope_violation": "Token used outside its scope",
    "job_run_cap": "Job hit its run cap",
    "routing_promoted": "Routing promoted a tier",
}


@dataclass(frozen=True, slots=True)
class Paged:
    """One escalation step taken: whom it notified (None: the channel, or nobody) and when."""

    user: str | None
    at: float
    step: str
    manual_by: str | None = None
    note: str | None = None  # "withdrawn": never sent; "folded": sent in a storm summary;
    # a webhook step's: how its page went ("delivered", "retrying, last: HTTP 503")
    nobody: bool = False  # a step that named people and paged none (its thread says why)
    webhook: str | None = None  # a step that paged a webhook (bot.webhooks): its name


def title(alert: Alert) -> str:
    return KIND_TITLES.get(alert.kind, alert.kind.replace("_", " ").capitalize())


def _scope(alert: Alert) -> str:
    """The alert's scope as mrkdwn (a model breaker's holds the agent's model name)."""
    return slack_text(alert.scope)


@dataclass(frozen=True, slots=True)
class Silenced:
    """The silence that holds an alert: who made it, when, and until when."""

    by: str
    at: float
    until: float


@dataclass(frozen=True, slots=True)
class BudgetSet:
    """A limit set on a budget alert's scope since it fired: its window, by whom, when."""

    window: str
    limit_micros: int
    by: str
    at: float


def _budget_set_line(alert: Alert, change: BudgetSet, tz: ZoneInfo, now: float) -> str:
    """``💰 week budget of `acme/erin/e-bot` set to $20.00 by <@U1> at 11:03``."""
    usd = format_usd(change.limit_micros, exact=True)
    at = clock_time(change.at, tz, now=now)
    return f"💰 {change.window} budget of `{_scope(alert)}` set to {usd} by <@{change.by}> at {at}"


def resolver(actor: str) -> str:
    """Who resolved or answered an alert, as its message says it: a person as a mention
    (``<@U012ABCDEF>``), a token as ``@token:tok_…`` (``<@token:…>`` mentions nobody)."""
    return member_or_name(actor) if actor.startswith(ACTOR_PREFIX) else f"<@{actor}>"


def _state_line(alert: Alert, tz: ZoneInfo, now: float, silenced: Silenced | None) -> str | None:
    if alert.resolved_at is not None:
        by = f" by {resolver(alert.resolved_by)}" if alert.resolved_by else ""
        why = f" — {alert.resolve_reason}" if alert.resolve_reason else ""
        return f"✅ resolved{by} at {clock_time(alert.resolved_at, tz, now=now)}{why}"
    if alert.silence_id is not None:
        if silenced is None:
            return "🔕 silenced; firings are still counted"
        at, until = clock_time(silenced.at, tz, now=now), clock_time(silenced.until, tz, now=now)
        return (
            f"🔕 silenced by {member_or_name(silenced.by)} at {at} until {until};"
            " firings are still counted"
        )
    return _ack_line(alert, tz, now)


def _ack_line(alert: Alert, tz: ZoneInfo, now: float) -> str | None:
    if alert.acked_at is None:
        return None
    at = clock_time(alert.acked_at, tz, now=now)
    mtta = f" ({duration(alert.mtta or 0)} after it fired)"
    return f"👀 acknowledged by {member_or_name(alert.acked_by or '')} at {at}{mtta}"


def trial_request_value(scope: str, requested_at: float) -> str:
    """The value of the Approve trial and Keep open buttons: the breaker and the request
    they answer (the instant it began to wait), so an old message cannot answer a newer
    request (:func:`parse_trial_request`)."""
    return f"{scope} {requested_at!r}"


def parse_trial_request(value: str) -> tuple[str, float | None]:
    """``(scope, requested_at)`` of a trial button; ``None``: a button from before the
    request was named in it (it answers whichever request waits)."""
    scope, _, at = value.partition(" ")
    try:
        requested_at = float(at) if at else None
    except ValueError:
        requested_at = None
    return scope, requested_at


def _buttons(alert: Alert) -> list[dict[str, Any]]:
    value = tagged(str(alert.id), alert.first_at)
    if alert.resolved_at is not None:
        return []
    out: list[dict[str, Any]] = []
    if alert.state == "open":
        out.append(button("Acknowledge", "alert_ack", value, style="primary"))
    if alert.state in ("open", "acked"):
        out.append(button("Silence 1h", "alert_silence_1h", value))
    elif alert.state == "silenced":
        out.append(button("Unsilence", "alert_unsilence", value))
    if alert.state == "open" and alert.tier != "P2":
        out.append(button("Escalate now", "alert_escalate", value))
    if alert.kind == "half_open_requested":
        request = trial_request_value(str(alert.facts.get("scope") or alert.scope), alert.last_at)
        out.append(button("Approve trial", "breaker_approve", request, style="primary"))
        out.append(button("Keep open", "breaker_keep_open", request))
    if alert.kind in ("budget_exhausted", "budget_threshold"):
        # the scope and the window that refused: the modal opens on that window
        window = str(alert.facts.get("window") or "")
        raise_value = f"{alert.scope} {window}" if window.isalpha() else alert.scope
        out.append(button("Raise budget", "budget_raise", raise_value))
    out.append(button("Resolve", "alert_resolve", value, style="danger"))
    return out


def alert_message(
    alert: Alert,
    *,
    tz: ZoneInfo,
    now: float,
    paged: list[Paged] | None = None,
    lead: str | None = None,
    silenced: Silenced | None = None,
    next_step: str | None = None,
    dm_reason: str | None = None,
    budget_set: Sequence[BudgetSet] = (),
) -> tuple[str, list[dict[str, Any]]]:
    """The alert as (fallback text, blocks); ``dm_reason`` makes it the page sent to a person.

    An open P0's post starts with whom its chain paged: the person mentioned, else
    ``lead``, what it paged instead and how that went ("📟 Paged via webhook pager: ",
    :func:`bot.alerts.first_page.webhook_prefix`), mentioning nobody not paged. Once its
    chain ran out, both stay (a ``channel`` step after them, or a person paged by the
    last step, included: recheck25 L1), the person as "<@U01> paged, unacknowledged: ",
    so as not to read as the one who took it (recheck22).

    ``budget_set``: limits set on a budget alert's scope since it fired, shown while it
    is open (the alert keeps its buttons: the change did not clear it).
    """
    icon = "✅" if alert.resolved_at is not None else TIER_ICONS.get(alert.tier, "⚪")
    head = f"{icon} {alert.tier} · {title(alert)}"
    what = summary(alert.kind, alert.facts, tz)
    mention = ""
    # its chain ran out (paged, no step left): nobody owns it, whoever was paged last
    last_page = paged[-1] if paged and alert.esc_step is None else None
    if alert.tier == "P0" and alert.state == "open" and not dm_reason:
        if alert.oncall_user:  # (once the chain ran out, not as if they had taken it)
            owns = "" if last_page is None else " paged, unacknowledged:"
            mention = f"<@{alert.oncall_user}>{owns} "
        elif lead:  # how the webhook page went: a step after it leaves that standing
            mention = lead
    scope = _scope(alert)
    text = f"{mention}{head} — {scope}: {what}"
    if dm_reason:
        text = f"{dm_reason}: {text}"
    blocks: list[dict[str, Any]] = [header(head)]
    if dm_reason:
        blocks.append(section(f"*{dm_reason}*"))
    # a code span: `acme/_alice_/bot` in bold would show "alice" in italics, as if it were
    # acme/alice/bot (audit26 text 3)
    blocks.append(section(f"{mention}`{scope}`\n{what}"))
    if outage := _outage_line(alert):
        blocks.append(context(outage))
        text += f" [{outage}]"
    facts = [
        f"#{alert.id}",
        f"fired {alert.count}×" if alert.count != 1 else "fired once",
        f"first {clock_time(alert.first_at, tz, now=now)}",
    ]
    if alert.count > 1:
        facts.append(f"last {clock_time(alert.last_at, tz, now=now)}")
    facts.append(tz.key)
    blocks.append(context(" · ".join(facts)))
    if paged:
        pages = []
        for p in paged:
            who = f"<@{p.user}>" if p.user else "nobody" if p.nobody else "the channel"
            who = f"webhook {p.webhook}" if p.webhook else who
            early = f" (Escalate now by <@{p.manual_by}>)" if p.manual_by else ""
            note = {"withdrawn": " (withdrawn unsent)", "folded": " (in a storm summary)"}.get(
                p.note or "", f" ({slack_text(p.note, 100)})" if p.note else ""
            )  # (a webhook step's: how it went, bot.webhooks_rows.delivery_notes)
            pages.append(f"{who} {clock_time(p.at, tz, now=now)}{early}{note}")
        blocks.append(context("paged: " + " · ".join(pages)))
    state = _state_line(alert, tz, now, silenced)
    acked = _ack_line(alert, tz, now)
    if state and acked and state != acked:  # silenced or resolved too: who took it stays
        blocks.append(context(acked))
        text += f" [{acked}]"
    if state:
        blocks.append(context(state))
        text += f" [{state}]"
    elif next_step:
        blocks.append(context(f"unacknowledged; next: {next_step}"))
    elif last_page is not None:
        last = clock_time(last_page.at, tz, now=now)
        said = f"⚠️ unacknowledged; its escalation chain ran out at {last}: nobody is paged again"
        blocks.append(context(f"{said} (`/agent ack {alert.id}` takes it)"))
        text += f" [{said}]"
    if budget_set and alert.resolved_at is None:
        blocks.append(context("\n".join(_budget_set_line(alert, c, tz, now) for c in budget_set)))
    if buttons := _buttons(alert):
        blocks.append(actions(*buttons, block_id=f"alert:{alert.id}"))
    return text, blocks


def _outage_line(alert: Alert) -> str | None:
    """A model's outage on an alert: the agents whose breakers opened with the model's
    (the model's alert), or the outage an agent's alert was part of."""
    f = alert.facts
    which = f" (#{f[OUTAGE_ALERT]})" if f.get(OUTAGE_ALERT) else ""
    if f.get(HELD_BY) and f.get(MODEL_BACK) and alert.resolved_at is None:
        return (
            f"part of {slack_text(str(f[HELD_BY]))}'s outage{which}: the model's breaker"
            " closed and this breaker's trial is running; its pages wait for the trial's"
            " result"
        )
    if f.get(HELD_BY) and alert.resolved_at is None:
        return (
            f"part of {slack_text(str(f[HELD_BY]))}'s outage{which}: its pages wait while"
            " the model's breaker is open"
        )
    if f.get(OUTAGE_OF):
        return (
            f"part of {slack_text(str(f[OUTAGE_OF]))}'s outage{which}: this breaker is still"
            " open a minute after the model's closed"
        )
    agents = f.get(WITH_IT)
    count = f.get(WITH_IT_COUNT)
    if not isinstance(agents, list) or not agents or not isinstance(count, int):
        return None
    named = ", ".join(slack_text(str(a)) for a in agents[:WITH_IT_NAMED])
    more = f" and {count - WITH_IT_NAMED} more" if count > WITH_IT_NAMED else ""
    breakers = "agent's breaker" if count == 1 else "agents' breakers"
    return (
        f"{count} {breakers} opened with it: {named}{more}; their alerts wait behind this"
        " one (`/agent alerts` lists them)"
    )


def channel_nudge(alert: Alert, *, tz: ZoneInfo, now: float) -> str:
    """The escalation step that notifies the whole channel."""
    return (
        f"<!channel> {alert.tier} #{alert.id} {title(alert)} on {_scope(alert)} is unacknowledged"
        f" since {clock_time(alert.first_at, tz, now=now)}; `/agent ack {alert.id}` takes it"
    )


def storm_nudge(alert: Alert, *, tz: ZoneInfo, now: float, gone: int | None = None) -> str:
    """The channel step for alerts folded into a storm summary (one nudge for them all).
    ``gone``: the summary was deleted in Slack, and this many of its other alerts are
    unacknowledged (the nudge is a post of its own, naming only what is open)."""
    since = clock_time(alert.first_at, tz, now=now)
    if gone is not None:
        named = f"#{alert.id} {title(alert)} on {_scope(alert)}"
        if not gone:
            return (
                f"<!channel> {alert.tier} {named} is unacknowledged since {since} (its alert"
                f" storm summary was deleted in Slack): `/agent ack {alert.id}` takes it"
            )
        others = "1 other alert" if gone == 1 else f"{gone} other alerts"
        return (
            f"<!channel> {named} and {others} of its storm are unacknowledged since {since}"
            " (their storm summary was deleted in Slack): `/agent alerts` lists them,"
            " `/agent ack <id>` takes one, `/agent silence <scope> 1h` quiets a subtree"
        )
    return (
        f"<!channel> this alert storm is unacknowledged since"
        f" {clock_time(alert.first_at, tz, now=now)} (#{alert.id} {title(alert)} on"
        f" {_scope(alert)} and others): `/agent alerts` lists them, `/agent ack <id>` takes one,"
        " `/agent silence <scope> 1h` quiets a subtree"
    )


def alert_line(alert: Alert, *, now: float, ran_out: bool = False) -> str:
    """One line for ``/agent alerts`` (``ran_out``: its escalation chain ran out, and
    nobody took it: nobody is paged again)."""
    age = duration(now - alert.first_at)
    count = f" ×{alert.count}" if alert.count > 1 else ""
    state = {
        "silenced": " · 🔕 silenced",
        "acked": f" · 👀 acked by {member_or_name(alert.acked_by or '')}",
        "resolved": " · ✅ resolved",
    }.get(alert.state, "")
    folded = " · in a storm summary" if alert.folded_into and alert.posted_at is None else ""
    if ran_out and alert.state == "open":
        folded += " · ⚠️ chain ran out: nobody is paged again"
    if alert.facts.get(HELD_BY) and alert.state == "open":
        which = f" (#{alert.facts[OUTAGE_ALERT]})" if alert.facts.get(OUTAGE_ALERT) else ""
        model = slack_text(str(alert.facts[HELD_BY]))
        if alert.facts.get(MODEL_BACK):
            folded += f" · waits for its trial after {model}'s outage{which}"
        else:
            folded += f" · waits for {model}'s outage{which}"
    # the kind is what `silence <kind>:<scope>` takes
    return (
        f"`#{alert.id}` {title(alert)} · `{alert.kind}:{_scope(alert)}`{count} · {age} old"
        f"{state}{folded}"
    )
