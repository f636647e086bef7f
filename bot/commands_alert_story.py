"""``/agent alert <id>``: one alert's story, oldest first, for the post-mortem.

What it is (tier, kind, scope, the title and sentence of its message, first and last
firing, how many), where its message is, then what happened to it, each line with its
time in the policy's time zone (named once; a date where the time is not today):

- its first and last firing, and its post to the alerts channel (or why there is none);
- each step of its escalation chain (the ``escalations`` rows): whom it paged, or that
  it told the channel or paged nobody; taken by Escalate now, withdrawn unsent, folded
  into a storm summary, or refused by Slack (its page's outbox row failed); a webhook
  step's page delivered, retrying (the last error) or failed; and the steps skipped
  because they fell due while none was taken (Nightshift down, or running without a
  chain: an ``alert.steps_skipped`` audit row, :mod:`bot.alerts.catch_up`);
- its acknowledgement and resolution (by whom, or the condition that cleared it);
- every silence that held it (made on it, on its ``kind:scope``, or on a kind or a scope
  that covers it, while it was open): who, when, until when, and its lift or its end;
- the ``audit`` rows that name it (``#12 kind:scope``) and say something the rows above
  do not.

Everyone may read it, as ``/agent alerts``. A story too long for one Slack message (an
alert that re-fired 10,000 times is one count; a chain of 40 steps over many rounds is
not) keeps its beginning and its end and sums up the lines between ("… 28 more steps
from 19:05 to 19:32: <@U01> paged ×14 · <@U04> paged ×14"): no line is cut.

Example:
    >>> # /agent alert 12   (or #12)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.alerts import operations as ops
from bot.alerts.catch_up import SKIPPED_ACTION
from bot.alerts.engine import AlertEngine
from bot.alerts.model import Alert
from bot.alerts.render import TIER_ICONS, title
from bot.alerts.render_summary import summary
from bot.alerts.render_time import clock_time, duration
from bot.alerts.targets import SilenceTarget
from bot.blocks import MAX_TEXT, context, echo, header, line_sections, section
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_alert_story_rows import StoryRows, read_story
from bot.escape import CHANNEL_ID, member_or_name, operator_mentions, slack_text
from bot.responders import engine_of
from guards.config_people import MEMBER_ID
from guards.errors import NotFound
from guards.words import clip_chars

__all__ = ["cmd_alert"]

# A line of the story is short by construction: each text in it is cut first (a reason
# at 200 characters, a rotation's name at 60, Slack's error at 100).
SUMMARY_CHARS = 300  # kept for the line that sums up the lines left out
HEAD_CHARS = 900  # what it is: its title, its message's sentence, its facts
SUMMED_LABELS = 4  # kinds of line named in the summing-up line, the most frequent first
# the audit rows that say what the rows of the alert already say
_TOLD = ("alert.ack", "alert.resolve", "alert.escalate")
# a `user:` step the alert.steps_skipped row names by id: a mention, as the other lines
_SKIPPED_USER = re.compile(rf"\(user ({MEMBER_ID.pattern}), due ")


@dataclass(frozen=True, slots=True)
class _Line:
    """One line of the story: when, what, and how a summing-up counts it."""

    at: float
    text: str
    label: str  # "<@U01> paged", "silence": what "… 28 more steps: <label> ×n" counts
    page: bool = False  # an escalation step (the summing-up speaks of steps when all are)
    first: bool = False  # before the other lines of its instant (steps skipped, then the taken)


# an alert that joined a storm summary nobody saw it in (bot.alerts.storm_alone)
_GONE = "its storm summary was deleted in Slack before it showed it"


def _channel(channel: str) -> str:
    return f"<#{channel}>" if CHANNEL_ID.fullmatch(channel) else f"`{slack_text(channel, 80)}`"


def _message(rows: StoryRows) -> str:
    """Where its message is, or why it has none."""
    alert, post = rows.alert, rows.post
    if post is not None and post[0] == "failed":
        where = _channel(str(alert.channel or post[1] or "?"))
        error = str(post[2]).removeprefix("Slack error ")
        return f"⚠️ Its post to {where} was refused by Slack ({slack_text(error, 100)})"
    gone = rows.missed.post is not None  # (its storm summary was deleted in Slack)
    if alert.posted_at is not None and alert.channel:
        channel = str(post[1]) if post is not None and post[1] else alert.channel
        if gone:
            return f"Its message: {_channel(channel)}, posted on its own: {_GONE}"
        return f"Its message: {_channel(channel)}"
    if gone:
        return f"No message: {_GONE}, and it was resolved before it could be posted on its own"
    if alert.folded_into:
        return "No message of its own: a storm summary in the alerts channel carried it"
    if alert.tier == "P2":
        return "Not posted: a P2 is collected for the digest (`/agent alerts`, `/agent digest`)"
    if alert.was_silenced:
        return "Not posted: a silence held it"
    return "Not posted yet"


def _state(alert: Alert) -> str:
    return {
        "resolved": "✅ resolved",
        "silenced": "🔕 silenced, open",
        "acked": "👀 acknowledged, open",
        "open": "open, unacknowledged",
    }[alert.state]


class _Story:
    """The lines of one alert's story, with times as ``clock_time`` words them."""

    def __init__(self, engine: AlertEngine, rows: StoryRows, now: float) -> None:
        self.engine, self.rows, self.now = engine, rows, now
        self.tz = engine.tz

    def at(self, ts: float) -> str:
        return clock_time(ts, self.tz, now=self.now)

    def head(self) -> list[str]:
        alert = self.rows.alert
        icon = "✅" if alert.resolved_at is not None else TIER_ICONS.get(alert.tier, "⚪")
        what = summary(alert.kind, alert.facts, self.tz)
        fired = f"fired {alert.count:,}×" if alert.count != 1 else "fired once"
        facts = [
            f"`#{alert.id}`",
            f"`{alert.kind}:{slack_text(alert.scope)}`",
            _state(alert),
            fired,
            f"first {self.at(alert.first_at)}",
        ]
        if alert.count > 1:
            facts.append(f"last {self.at(alert.last_at)}")
        facts.append(f"times in {self.tz.key}")
        return [
            f"*{icon} {alert.tier} · {title(alert)}* — `{slack_text(alert.scope)}`: {what}",
            " · ".join(facts),
            _message(self.rows),
        ]

    def lines(self) -> list[_Line]:
        alert = self.rows.alert
        more = f" (the first of {alert.count:,})" if alert.count > 1 else ""
        out = [_Line(alert.first_at, f"🔥 fired{more}", "firing")]
        if alert.posted_at is not None and alert.channel:
            gone = self.rows.missed.post is not None
            alone = " on its own: its storm summary was deleted in Slack" if gone else ""
            text = f"posted in {_channel(alert.channel)}{alone}"
            out.append(_Line(alert.posted_at, text, "post"))
        out += [self._step(r) for r in self.rows.steps]
        if alert.acked_at is not None:
            mtta = duration(alert.mtta or 0)
            by = member_or_name(alert.acked_by or "?")
            text = f"👀 acknowledged by {by} ({mtta} after it fired)"
            out.append(_Line(alert.acked_at, text, "acknowledgement"))
        for s in self.rows.silences:
            out += self._silence(s)
        out += self._audit()
        if alert.count > 1:
            last = "in all" if alert.resolved_at is not None else "so far"
            text = f"🔥 last firing ({alert.count:,} {last})"
            out.append(_Line(alert.last_at, text, "firing"))
        if alert.resolved_at is not None:
            out.append(_Line(alert.resolved_at, self._resolved(), "resolution"))
        # stable: a row's order within a second
        return sorted(out, key=lambda line: (line.at, not line.first))

    def _step(self, r: Any) -> _Line:
        esc_id, position, notify, target, at, manual_by, withdrawn_at, folded = r
        chain = self.engine.chain
        step = chain.describe(int(position)) if chain.steps else f"step {int(position) + 1}"
        name = str(notify).partition(":")[2] if str(notify).startswith("rotation:") else ""
        which = f"{slack_text(name, 60)}, {step}" if name else step
        if target is not None:
            who = member_or_name(str(target))
            text, label = f"📟 paged {who} ({which})", f"{who} paged"
        elif notify == "channel":
            text, label = f"📣 told the channel ({step})", "the channel told"
        elif str(notify).startswith("webhook:"):  # bot.webhooks
            hook = slack_text(str(notify)[8:], 64)
            text, label = f"📟 paged webhook {hook} ({step})", f"webhook {hook} paged"
        else:
            text, label = f"⚠️ {which}: paged nobody", "steps paging nobody"
        if manual_by:
            text += f" — Escalate now by {member_or_name(str(manual_by))}"
        if withdrawn_at is not None:
            text += f" — withdrawn unsent at {self.at(float(withdrawn_at))}"
        sent = self.rows.webhooks.get(int(esc_id))  # bot.webhooks_rows.delivery_notes
        missed = self.rows.missed.pages
        if withdrawn_at is None and int(esc_id) in missed:  # (bot.alerts.storm_alone)
            alone = missed[int(esc_id)]
            text += f" — {_GONE}: " + (
                f"paged on its own at {self.at(alone)}" if alone is not None else "not sent"
            )
        elif withdrawn_at is None and folded and sent is None:  # (a webhook's storm: sent says)
            text += " — sent in a storm summary"
        if sent is not None and withdrawn_at is None:
            text += f" — {slack_text(sent, 120)}"
        error = self.rows.refused.get(int(esc_id))
        if error is not None:  # the outbox keeps "Slack error user_not_found"
            error = error.removeprefix("Slack error ")
            text += f" — ⚠️ Slack refused it ({slack_text(error, 100)})"
        return _Line(float(at), text, label, page=True)

    def _silence(self, s: Any) -> list[_Line]:
        fp, scope, kind, alert_id, by, made, until, ended_at, ended_by, starts, reason = s
        on = SilenceTarget(fp, scope, alert_id, kind=kind).name
        on = f"`{slack_text(on, 120)}`"
        # a silence booked ahead is told at its start, with when it was booked and why
        booked = f"; booked at {self.at(float(made))}" if starts is not None else ""
        why = f" — {slack_text(str(reason))}" if reason else ""
        lines = [
            _Line(
                float(made if starts is None else starts),
                f"🔕 silenced by {member_or_name(str(by))} until {self.at(float(until))}"
                f" (on {on}{booked}){why}",
                "silence",
            )
        ]
        end = self.rows.alert.resolved_at
        if ended_at is not None and (end is None or float(ended_at) <= end):
            who = member_or_name(str(ended_by or "?"))
            early = duration(float(until) - float(ended_at))
            text = f"🔔 silence on {on} lifted by {who}, {early} before its end"
            lines.append(_Line(float(ended_at), text, "silence lifted"))
        elif ended_at is None and float(until) <= (end if end is not None else self.now):
            lines.append(_Line(float(until), f"🔔 silence on {on} ran out", "silence ended"))
        return lines

    def _audit(self) -> list[_Line]:
        """Audit rows naming the alert that the rows above do not tell already."""
        alert = self.rows.alert
        escalated_by: set[str | None] = {str(r[5]) for r in self.rows.steps if r[5]}
        told: dict[str, set[str | None]] = {
            "alert.ack": {alert.acked_by},
            "alert.resolve": {alert.resolved_by},
            "alert.escalate": escalated_by,
        }
        out = []
        for at, actor, action, after, detail in self.rows.audit:
            if action in _TOLD and actor in told[action]:
                continue
            if action == SKIPPED_ACTION:  # steps passed over after a downtime (catch_up)
                said = _SKIPPED_USER.sub(r"(<@\1>, due ", slack_text(str(detail), 300))
                text = f"⏭️ {said} ({slack_text(str(after), 60)})"
                out.append(_Line(float(at), text, "steps skipped", page=True, first=True))
                continue
            said = f" → {slack_text(str(after), 100)}" if after else ""
            said += f" ({slack_text(str(detail), 80)})" if detail else ""
            text = f"{member_or_name(str(actor))} *{slack_text(str(action), 40)}*{said}"
            out.append(_Line(float(at), text, str(action)))
        return out

    def _resolved(self) -> str:
        alert = self.rows.alert
        by = f" by {member_or_name(alert.resolved_by)}" if alert.resolved_by else ""
        # its reason is Slack markup as the engine wrote it ("trial approved by <@U1>"),
        # as the alert's message shows it; an older row named the operator by id
        why = f" — {operator_mentions(alert.resolve_reason)}" if alert.resolve_reason else ""
        return f"✅ resolved{by}{why}"


def _summed(left_out: list[_Line], at: Callable[[float], str]) -> str:
    """``… 28 more steps from 19:05 to 19:32: <@U01> paged ×14 · <@U04> paged ×14``."""
    noun = "steps" if all(line.page for line in left_out) else "events"
    counts = Counter(line.label for line in left_out).most_common()
    named = " · ".join(f"{label} ×{n}" for label, n in counts[:SUMMED_LABELS])
    if len(counts) > SUMMED_LABELS:
        named += " · …"
    span = f"from {at(left_out[0].at)} to {at(left_out[-1].at)}"
    return f"… {len(left_out)} more {noun} {span}: {named}"


def _fit_story(lines: list[_Line], *, room: int, at: Callable[[float], str]) -> list[str]:
    """The story's lines within ``room`` characters: all of them, or its beginning and its
    end around one line that sums up those between (whole lines only)."""
    shown = [f"`{at(line.at)}` {line.text}" for line in lines]
    if sum(len(s) + 1 for s in shown) <= room:
        return shown
    budget = room - SUMMARY_CHARS
    first, last = 0, len(shown)  # shown[:first] and shown[last:] are kept
    front = True
    while first < last:
        k = first if front else last - 1
        if len(shown[k]) + 1 > budget:
            break
        budget -= len(shown[k]) + 1
        if front:
            first += 1
        else:
            last -= 1
        front = not front
    if first >= last:
        return shown
    middle = _summed(lines[first:last], at)
    return [*shown[:first], middle[:SUMMARY_CHARS], *shown[last:]]


def _alert_id(text: str) -> int:
    try:
        number = ops.alert_number(text)
    except NotFound:  # more digits than any alert id has
        raise UsageError(
            f"`{echo(text, 20)}` is no alert id: ids have at most {ops.MAX_ALERT_ID_DIGITS}"
            " digits (`/agent alerts` lists the open ones)"
        ) from None
    if number is None:
        raise UsageError(
            f"`{echo(text, 20)}` is not an alert id: ids are whole numbers, as `12` or `#12`"
            " (`/agent alerts` lists the open ones; `/agent alerts <scope or kind>` those of"
            " a scope or kind)"
        )
    return number


@subcommand("alert", usage="alert <id>")
async def cmd_alert(ctx: Context, args: list[str]) -> Reply:
    """One alert's story, open or resolved: whom it paged, who acknowledged, silenced or
    resolved it and when, and where its message is."""
    if len(args) != 1:  # `alert` alone may be `alerts` mistyped: say where the list is
        raise UsageError("`alert` takes one alert id; `/agent alerts` lists the open ones")
    alert_id = _alert_id(args[0])
    engine = engine_of(ctx)
    try:
        rows = await ctx.ns.store.read(lambda tx: read_story(tx, alert_id))
    except NotFound:
        keep = duration(ctx.ns.policy.retention.alerts_resolved)
        return Reply.text_only(
            f"There is no alert #{alert_id}: it may have been deleted after"
            f" `retention.alerts_resolved` ({keep} after it was resolved); `/agent alerts`"
            " lists the open ones."
        )
    story = _Story(engine, rows, ctx.ns.clock.now())
    head = [clip_chars(line, HEAD_CHARS) for line in story.head()]
    tail = [] if rows.alert.resolved_at is not None else [_next(rows.alert)]
    room = MAX_TEXT - sum(len(line) + 1 for line in (*head, *tail)) - 1
    lines = _fit_story(story.lines(), room=room, at=story.at)
    text = "\n".join([*head, *lines, *tail])
    alert = rows.alert
    blocks: list[dict[str, Any]] = [
        header(f"#{alert.id} · {alert.tier} · {title(alert)}"),
        section("\n".join(head)),
        *line_sections(lines, per_section=20)[0],
        *([context(tail[0])] if tail else []),
    ]
    return Reply(text=text, blocks=blocks)


def _next(alert: Alert) -> str:
    """What to do about an alert still open."""
    if alert.state == "open":
        return f"`/agent ack {alert.id}` takes it · `/agent silence {alert.id} <duration>`"
    if alert.state == "silenced":
        return "`/agent alerts` lists the active silences; `/agent silence <target> off` lifts one"
    return "`/agent alerts` lists the open ones"
