"""``/agent alerts``, ``ack`` and ``silence``: the open alerts, and acting on them.

Who may act on alerts: admins, and the responders of the policy (see
:mod:`bot.responders`). Anyone may look.

The on-call and status commands are in :mod:`bot.commands_oncall`, the alert
message buttons in :mod:`bot.commands_alert_buttons`; their handlers, and the
responder helpers, stay importable from here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts import operations as ops
from bot.alerts.model import ALERT_TIERS, Alert, kinds_named
from bot.alerts.render import alert_line, title
from bot.alerts.render_time import clock_time, duration
from bot.blocks import clip, context, echo, fit_text, header, line_sections
from bot.chat_words import join_duration, typed
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_alert_buttons import SILENCE_BUTTON_SECONDS as SILENCE_BUTTON_SECONDS
from bot.commands_alert_buttons import act_ack as act_ack
from bot.commands_alert_buttons import act_escalate as act_escalate
from bot.commands_alert_buttons import act_resolve as act_resolve
from bot.commands_alert_buttons import act_silence as act_silence
from bot.commands_alert_buttons import act_unsilence as act_unsilence
from bot.commands_alert_buttons import lifted_silences, still_silenced
from bot.commands_oncall import cmd_oncall as cmd_oncall
from bot.commands_oncall import cmd_status as cmd_status
from bot.commands_oncall_override import day_time, starts_from
from bot.escape import slack_text
from bot.known_scopes import close_scope, did_you_mean, known_scope, meant, named_scopes
from bot.responders import duration_arg, local_time
from bot.responders import engine_of as engine_of
from bot.responders import require_responder as require_responder
from bot.responders import responders as responders
from guards.breaker_kinds import model_key
from guards.config import ALERT_KINDS, Policy
from guards.scopes import Scope, ScopeError
from guards.store import Tx

__all__: list[str] = []

_TIER_NAMES = {"P0": "P0 — pages on-call", "P1": "P1 — posted", "P2": "P2 — for the digest"}
LIFT_WORDS = ("off", "lift", "end")
MAX_FILTER = 200  # characters of an `alerts` filter (a kind:scope is far shorter)
GROUP_AT = 5  # more alerts of one kind in a tier than this: one line for the kind
GROUP_SHOWN = 3  # alerts named on a kind's line
PER_SECTION = 11  # lines in a section: the tier's title and 10 alerts
SECTIONS_PER_TIER = 2
SECTION_CHARS = 1_400  # at most: 6 sections, the silences and the rest in one Slack message
MAX_SILENCES = 10
MAX_REASON = 200  # characters of a silence's reason
MAX_AHEAD_DAYS = 30  # a silence is booked at most this far ahead
START_GRACE = 60  # seconds: a start typed this recently means now
REASON_MARKS = ("--", "—", "–")  # `--`, and the dashes phones make of it
SILENCES_CHARS = 1_000


def _alert_id(text: str) -> int:
    number = ops.alert_number(text)
    if number is None:
        raise UsageError(f"{text[:40]!r} is not an alert id; `/agent alerts` lists them")
    return number


# -- alerts, ack, silence -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Filter:
    """What ``alerts <filter>`` keeps: one kind (or a family), a scope and below, or both."""

    text: str
    kinds: tuple[str, ...] = ()
    scope: str | None = None

    def keeps(self, alert: Alert) -> bool:
        if self.kinds and alert.kind not in self.kinds:
            return False
        return self.scope is None or (
            alert.scope == self.scope or alert.scope.startswith(self.scope + "/")
        )

    def concerns(self, fingerprint: str | None, scope: str | None) -> bool:
        """Whether a silence (on a fingerprint, or a kind or everything on a subtree) may
        hold an alert this filter keeps: not one on another team's subtree (audit23
        tenants F5: `alerts kiri` listed `acme`'s silences)."""
        if self.scope is None:
            return True
        where = scope if scope else (fingerprint or "").partition(":")[2]
        if not where:  # on every scope
            return True
        return (
            where == self.scope
            or where.startswith(self.scope + "/")
            or self.scope.startswith(where + "/")
        )


def _refuse_filter(text: str, why: str, *, meant: str | None = None) -> UsageError:
    close = difflib.get_close_matches(text.lower(), ALERT_KINDS, n=1, cutoff=0.7)
    hint = did_you_mean(meant) or (f" Did you mean `{close[0]}`?" if close else "")
    kinds = ", ".join(f"`{k}`" for k in sorted(ALERT_KINDS))
    return UsageError(
        f"`{echo(text)}` {why}.{hint} `alerts` takes one filter: a scope and everything"
        " below it (`acme`, `acme/alice`, `acme/alice/rss-bot`, `model:<name>`), an alert"
        f" kind, or `kind:scope`. The kinds: {kinds} (`breaker_opened` takes all three"
        " breaker kinds)."
    )


def _parse_filter(tx: Tx, text: str, policy: Policy) -> _Filter:
    """The filter of ``alerts <text>``, or UsageError listing what is accepted."""
    if len(text) > MAX_FILTER:
        raise _refuse_filter(text, f"is too long for a filter (at most {MAX_FILTER} characters)")
    kind_text, colon, scope_text = text.partition(":")
    if colon and kind_text == "model":  # a model's breaker alerts: `model:<name>`
        kind_text, scope_text = "", text
    elif not colon:
        kinds = kinds_named(text)
        if kinds:
            return _Filter(text, kinds=kinds)
        kind_text, scope_text = "", text
    kinds = kinds_named(kind_text) if kind_text else ()
    if kind_text and not kinds:
        raise _refuse_filter(text, f"names no alert kind before the colon ({echo(kind_text)})")
    if scope_text.startswith("model:"):
        scope = model_key(scope_text[len("model:") :]) if len(scope_text) > len("model:") else None
    else:
        try:
            scope = Scope.parse(scope_text).path
        except ScopeError:
            scope = None
    if scope is None or not known_scope(policy, tx, scope):
        meant = close_scope(tx, scope_text, named=named_scopes(policy))
        if meant is not None and kind_text:
            meant = f"{kind_text}:{meant}"
        raise _refuse_filter(
            text, "is neither a scope Nightshift knows nor an alert kind", meant=meant
        )
    return _Filter(text, kinds=kinds, scope=scope)


def _lines(
    alerts: list[Alert], *, now: float, flt: _Filter | None, ran_out: set[int]
) -> list[tuple[str, int]]:
    """One line per alert, or per kind when a kind has many (with how many alerts it covers)."""
    by_kind: dict[str, list[Alert]] = {}
    for a in alerts:
        by_kind.setdefault(a.kind, []).append(a)
    grouped = {k for k, group in by_kind.items() if len(group) > GROUP_AT}
    if flt is not None and len(flt.kinds) == 1:
        grouped = set()  # filtered to one kind: list them one by one
    out: list[tuple[str, int]] = []
    for a in alerts:
        if a.kind not in grouped:
            out.append((alert_line(a, now=now, ran_out=a.id in ran_out), 1))
        elif a is by_kind[a.kind][0]:
            out.append((_group_line(by_kind[a.kind], flt=flt), len(by_kind[a.kind])))
    return out


def _group_line(group: list[Alert], *, flt: _Filter | None) -> str:
    first = group[0]
    named = ", ".join(f"`#{a.id}` {slack_text(a.scope)}" for a in group[:GROUP_SHOWN])
    rest = len(group) - GROUP_SHOWN
    narrow = f"{first.kind}:{flt.scope}" if flt is not None and flt.scope else first.kind
    return (
        f"{title(first)} × {len(group)}: {named}, … and {rest} more"
        f" (`/agent alerts {narrow}` lists them)"
    )


def _narrower(flt: _Filter | None) -> str:
    """How to see the alerts a kind's list leaves out: the same kind under one scope."""
    if flt is None or not flt.kinds or flt.scope is not None:
        return ""  # the whole list groups them; a scope's narrows by a scope below
    return f" (`/agent alerts {flt.text}:<namespace or agent>` lists those of one)"


def _more_alerts(n: int, tier: str = "") -> str:
    return f"… and {n} more{' ' + tier if tier else ''} alert{'s' if n != 1 else ''}"


@subcommand("alerts", usage="alerts [scope|kind]")
async def cmd_alerts(ctx: Context, args: list[str]) -> Reply:
    """Open alerts by tier, with counts and age; a scope or kind narrows: `alerts acme/alice`."""
    if len(args) > 1:
        raise UsageError(
            "`alerts` takes one filter: a scope, an alert kind or `kind:scope`"
            " (act on an alert with `ack <id>` or `silence`)"
        )
    engine = engine_of(ctx)
    now = ctx.ns.clock.now()

    # The filter is read off the writer: a typo's "did you mean" reads every scope, and
    # a refusal raised in the writer would roll its caches back (audit25 year F1).
    policy = ctx.ns.policy
    flt = await ctx.ns.store.read(lambda tx: _parse_filter(tx, args[0], policy)) if args else None

    def read(tx: Tx) -> tuple[_Filter | None, list[Alert], list[Any], set[int]]:
        silences = tx.all(  # the active ones, then those booked ahead by their start
            "SELECT id, fingerprint, scope, kind, created_by, expires_at, starts_at, reason"
            " FROM silences WHERE ended_at IS NULL AND expires_at > ?"
            " ORDER BY COALESCE(starts_at, 0) > ?, COALESCE(starts_at, expires_at)",
            (now, now),
        )
        paged = {  # open alerts that paged: with no step left, their chain ran out
            int(r[0])
            for r in tx.all(
                "SELECT DISTINCT e.alert_id FROM escalations e JOIN alerts a"
                " ON a.id = e.alert_id WHERE a.resolved_at IS NULL AND a.esc_step IS NULL"
            )
        }
        return flt, engine.open_alerts(tx), silences, paged

    flt, every, silences, ran_out = await ctx.ns.store.write(read)
    if flt is not None:
        silences = [s for s in silences if flt.concerns(s[1], s[2])]
    alerts = [a for a in every if flt.keeps(a)] if flt else every
    if flt is not None and not alerts:
        return Reply.text_only(
            f"No open alerts match `{echo(flt.text)}` ({len(every)} open in all: `/agent alerts`)."
        )
    if not alerts and not silences:
        return Reply.text_only("No open alerts. 🌙")
    what = f"Open alerts: {len(alerts)}" + (
        f" matching `{echo(flt.text)}` (of {len(every)})" if flt else ""
    )
    hint = "`/agent ack <id>` · `/agent silence <id, kind or scope> <duration>`"
    if silences:
        hint += " · `/agent silence <target> off` lifts a silence"
    if flt is None:
        hint += " · `/agent alerts <scope|kind>` narrows"
    # the count and what to do first; then each tier within its own block budget
    blocks: list[dict[str, Any]] = [header(what), context(hint)]
    entries: list[tuple[str, int]] = []  # the plain text: (line, alerts it covers)
    for tier in ALERT_TIERS:
        mine = [a for a in alerts if a.tier == tier]
        if not mine:
            continue
        lines = _lines(mine, now=now, flt=flt, ran_out=ran_out)
        listed, placed = line_sections(
            [f"*{_TIER_NAMES[tier]}* ({len(mine)})", *(line for line, _ in lines)],
            per_section=PER_SECTION,
            max_sections=SECTIONS_PER_TIER,
            limit=SECTION_CHARS,
        )
        shown = lines[: max(0, placed - 1)]
        blocks += listed
        hidden = len(mine) - sum(n for _, n in shown)
        if hidden:
            blocks.append(context(_more_alerts(hidden, tier) + _narrower(flt)))
        entries += [
            (f"{tier}:", 0),
            *shown,
            *([(_more_alerts(hidden, tier), hidden)] if hidden else []),
        ]
    tz = engine.tz
    shown_silences = [
        f"🔕 {ops.SilenceTarget(fp, scope, kind=kind).matches} until {local_time(until, ctx)}"
        f" (by <@{by}>){_why(reason)}"
        if starts is None or starts <= now
        else f"Booked: 🔕 {ops.SilenceTarget(fp, scope, kind=kind).matches}"
        f" {_span(starts, until, tz, now)} (by <@{by}>){_why(reason)}"
        for _, fp, scope, kind, by, until, starts, reason in silences[:MAX_SILENCES]
    ]
    if len(silences) > MAX_SILENCES:
        shown_silences.append(f"… and {len(silences) - MAX_SILENCES} more silences")
    if shown_silences:
        blocks.append(context(clip("\n".join(shown_silences), SILENCES_CHARS)))

    def more(n: int) -> str:
        return _more_alerts(sum(covered for _, covered in entries[len(entries) - n :]))

    text = fit_text(
        [f"*{what}*"], [line for line, _ in entries], more=more, tail=[*shown_silences, hint]
    )
    return Reply(text=text, blocks=blocks)


@subcommand("ack", usage="ack <id>")
async def cmd_ack(ctx: Context, args: list[str]) -> Reply:
    """Acknowledges an alert: its escalation stops and the time to acknowledge is recorded."""
    if len(args) != 1:
        raise UsageError()
    alert_id = _alert_id(args[0])
    await require_responder(ctx, "acknowledge alerts", alert_id=alert_id)
    engine = engine_of(ctx)
    alert, new = await ctx.ns.store.write(
        lambda tx: ops.ack(engine, tx, alert_id=alert_id, actor=ctx.actor)
    )
    if not new:
        return Reply.text_only(
            f"#{alert_id} was already acknowledged by <@{alert.acked_by}>"
            f" at {local_time(alert.acked_at or 0, ctx)}."
        )
    return Reply.text_only(
        f"👀 <@{ctx.actor}> acknowledged #{alert_id} ({slack_text(alert.scope)});"
        f" escalation stopped, {duration(alert.mtta or 0)} after it fired.",
        ephemeral=False,
    )


def _reason(args: list[str]) -> tuple[list[str], str | None]:
    """The words before the reason's separator, and the reason as typed (None: none).

    The separator is `--` (a phone's keyboard may make it `—` or `–`: read the same),
    alone or stuck to the reason's first word.
    """
    for at, word in enumerate(args):
        said = getattr(word, "typed", word)
        mark = next((m for m in REASON_MARKS if said.startswith(m)), None)
        if mark is None:
            continue
        reason = " ".join([said[len(mark) :], typed(args[at + 1 :])]).strip()
        if not reason:
            raise UsageError(
                f"`{mark}` needs a reason after it (`-- provider maintenance`). Nothing changed."
            )
        if len(reason) > MAX_REASON:
            raise UsageError(
                f"a reason is at most {MAX_REASON} characters ({len(reason)} given);"
                " say more in the thread. Nothing changed."
            )
        return args[:at], reason
    return args, None


def _booked_start(ctx: Context, when: list[str]) -> float | None:
    """The start `from <when>` names (None: now, for one within the last minute)."""
    now = ctx.ns.clock.now()
    tz = engine_of(ctx).tz
    # a start typed at 22:00:20 for 22:00 means now, not tomorrow's (nor "past")
    at = starts_from(when, tz, now - START_GRACE, thing="a silence", ahead_days=MAX_AHEAD_DAYS)
    return at if at > now else None


@subcommand(
    "silence",
    usage="silence <id, kind[:scope] or scope> <duration|off> [from <when>] [-- reason]",
)
async def cmd_silence(ctx: Context, args: list[str]) -> Reply:
    """Silences an alert, a kind of alert or a scope for a while, across re-fires; `off` lifts it.

    The target is read as `alerts` reads its filter: an alert id (`12`, `#12`); an alert
    kind (`heartbeat_missed`, or `breaker_opened` for the three breaker kinds) on every
    scope; `kind:scope` (`heartbeat_missed:acme`): that kind on the scope and below it; a
    scope (`acme/alice`: it and everything below it); `model:<name>` for a model's
    breaker alerts. A scope or model Nightshift has not seen is silenced as asked (ahead
    of an agent's first call, say) and the reply says so first, with the scope probably
    meant (a typo would silence nothing).

    `off` (also `lift`, `end`) ends the active silences on that target now. A lift ends
    the silences made on exactly that target (`#12` and its `kind:scope` are the same
    target; a silence on a wider scope still holds and is named in the reply). Open
    alerts the lifted silences held are posted (or their message updated) and put back
    on the escalation chain at once, as when a silence expires: a P0 pages on-call again
    unless it was acknowledged. Later firings notify as usual. Firings recorded while
    silenced stay counted; `/agent alerts` lists the active silences.

    `from <when>` books it ahead (`from 22:00`, `from sat 02:00`, `from tomorrow 9:15`,
    `from 2026-12-05 02:00`, in the policy's zone; a bare time is its next one; at most
    30 days ahead): it holds nothing before its start, and at its start the open alerts
    it matches are silenced. A start within the last minute means now. `-- reason`
    (last) says why; `off` also cancels the silences booked on that target.
    """
    args, reason = _reason(args)
    args = join_duration(args, 1)  # `2 h`, `2 hours`
    booking = len(args) > 2 and args[2].lower() == "from"
    if len(args) > 1 and args[1].lower() in LIFT_WORDS and (booking or reason is not None):
        raise UsageError(
            f"`{args[1].lower()}` takes no start nor reason:"
            f" `/agent silence {echo(args[0], 80)} off`. Nothing changed."
        )
    starts_at = None
    if booking:
        args, starts_at = args[:2], _booked_start(ctx, args[3:])
    if len(args) != 2:
        raise UsageError()
    if args[1].lower() in LIFT_WORDS:
        return await _lift(ctx, args[0])
    seconds = duration_arg(args[1])
    await require_responder(ctx, "silence alerts")
    engine = engine_of(ctx)

    def make(unseen_ok: bool) -> Callable[[Tx], ops.SilenceMade]:
        return lambda tx: ops.silence(
            engine,
            tx,
            target=args[0],
            seconds=seconds,
            actor=ctx.actor,
            unseen_ok=unseen_ok,
            starts_at=starts_at,
            reason=reason,
        )

    try:
        made = await ctx.ns.store.write(make(False))
    except ops.UnseenTarget as exc:
        unseen_path, prefix, guess = exc.path, exc.prefix, exc.suggestion
        warning = f"⚠️ {exc.message}: this silence covers it"
    else:
        return _silenced(ctx, made, seconds)
    if unseen_path is not None:  # the scope probably meant, read off the writer
        close = await ctx.ns.store.read(lambda tx: meant(ctx.ns.policy, tx, unseen_path))
        guess = did_you_mean(close, prefix=prefix)
    made = await ctx.ns.store.write(make(True))
    return _silenced(ctx, made, seconds, note=f"{warning} once something there alerts.{guess}")


def _span(start: float, until: float, tz: ZoneInfo, now: float) -> str:
    """``from 22:00 today until 23:00``, ``from Sat 05 Dec 02:00 until 04:00``."""
    return f"from {day_time(start, tz, now)} until {clock_time(until, tz, now=start)}"


def _why(reason: str | None) -> str:
    return f" — {slack_text(reason)}" if reason else ""


def _silenced(ctx: Context, made: ops.SilenceMade, seconds: int, *, note: str = "") -> Reply:
    first = f"{note}\n" if note else ""
    tz, now = engine_of(ctx).tz, ctx.ns.clock.now()
    if made.made_by is not None:
        if made.starts_at is not None:
            return Reply.text_only(
                f"{first}🔕 {made.matches} is already booked silent by <@{made.made_by}>"
                f" {_span(made.starts_at, made.expires_at, tz, now)}; nothing changed."
            )
        return Reply.text_only(
            f"{first}🔕 {made.matches} is already silenced by <@{made.made_by}>"
            f" until {local_time(made.expires_at, ctx)}; nothing changed."
        )
    if made.starts_at is not None:
        return Reply.text_only(
            f"{first}🔕 <@{ctx.actor}> booked a silence of {made.matches}"
            f" {_span(made.starts_at, made.expires_at, tz, now)} ({tz.key}){_why(made.reason)}.",
            ephemeral=False,
        )
    also = f"; {len(made.silenced)} open alert(s) silenced now" if made.silenced else ""
    return Reply.text_only(
        f"{first}🔕 <@{ctx.actor}> silenced {made.matches} for {duration(seconds)}"
        f" (until {local_time(made.expires_at, ctx)}){_why(made.reason)}{also}."
        " Firings are still recorded.",
        ephemeral=False,
    )


async def _lift(ctx: Context, target: str) -> Reply:
    await require_responder(ctx, "lift silences")
    engine = engine_of(ctx)
    done = await ctx.ns.store.write(
        lambda tx: ops.lift(engine, tx, target=target, actor=ctx.actor, booked=True)
    )
    what = done.target
    on = what.name if what.alert_id is None else f"{what.name} ({what.fingerprint})"
    covered = ""
    if done.covered_by is not None:
        covered = f" {still_silenced(what.name, done.covered_by)}"
    cancelled = _cancelled(ctx, done, on)
    if cancelled and not done.lifted:
        return Reply.text_only(f"🔔 <@{ctx.actor}> {cancelled}.{covered}", ephemeral=False)
    if cancelled:
        covered = f" It also {cancelled}.{covered}"
    if not done.lifted:
        return Reply.text_only(
            f"There is no active silence on {on}; nothing changed.{covered}"
            " `/agent alerts` lists the active silences."
        )
    head = lifted_silences(done, on)
    if done.notify_again:
        after = f"{len(done.notify_again)} open alert(s) notify again now"
    else:
        after = "the next firing notifies as usual"
    still = ""
    if done.still_silenced:
        still = f" {len(done.still_silenced)} open alert(s) stay silenced by another silence."
    return Reply.text_only(
        f"🔔 <@{ctx.actor}> lifted {head}; {after}.{still}{covered}", ephemeral=False
    )


def _cancelled(ctx: Context, done: ops.SilenceLifted, on: str) -> str:
    """``cancelled the silence on acme booked from 22:00 today until 23:00 (by <@U01>)
    before its start`` (or how many), or "" when no booked silence was cancelled."""
    if not done.cancelled:
        return ""
    if len(done.cancelled) > 1:
        return f"cancelled {len(done.cancelled)} silences booked on {on} before their start"
    [b] = done.cancelled
    tz, now = engine_of(ctx).tz, ctx.ns.clock.now()
    span = _span(b.starts_at or now, b.expires_at, tz, now)
    return f"cancelled the silence on {on} booked {span} (by <@{b.created_by}>) before its start"
