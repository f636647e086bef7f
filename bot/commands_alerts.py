"""``/agent alerts`` and ``ack``: the open alerts, and acting on them.

Who may act on alerts: admins, and the responders of the policy (see
:mod:`bot.responders`). Anyone may look.

``silence`` is in :mod:`bot.commands_silence`, the on-call command in
:mod:`bot.commands_oncall`, the status command in :mod:`bot.commands_status`, the alert
message buttons in :mod:`bot.commands_alert_buttons`; their handlers, and the responder
helpers, stay importable from here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from bot.alerts import operations as ops
from bot.alerts.model import ALERT_TIERS, Alert, kinds_named
from bot.alerts.render import alert_line, title
from bot.alerts.render_time import duration
from bot.blocks import clip, context, echo, fit_text, header, line_sections
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_alert_buttons import SILENCE_BUTTON_SECONDS as SILENCE_BUTTON_SECONDS
from bot.commands_alert_buttons import act_ack as act_ack
from bot.commands_alert_buttons import act_escalate as act_escalate
from bot.commands_alert_buttons import act_resolve as act_resolve
from bot.commands_alert_buttons import act_silence as act_silence
from bot.commands_alert_buttons import act_unsilence as act_unsilence
from bot.commands_breakers import known_models
from bot.commands_oncall import cmd_oncall as cmd_oncall
from bot.commands_silence import span_text, why_text
from bot.commands_status import cmd_status as cmd_status
from bot.escape import member_or_name, slack_text
from bot.known_scopes import close_scope, did_you_mean, known_scope, named_scopes
from bot.narrowing import skip_of, unused_skip, where
from bot.responders import engine_of as engine_of
from bot.responders import local_time
from bot.responders import require_responder as require_responder
from bot.responders import responders as responders
from bot.slack.limits import BLOCKS_TEXT, SECTION_TEXT, text_chars
from guards.breaker_kinds import MODEL_PREFIX, model_key
from guards.config import ALERT_KINDS, Policy
from guards.prices import undated
from guards.scopes import Scope, ScopeError
from guards.store import Tx

__all__: list[str] = []

_TIER_NAMES = {"P0": "P0 — pages on-call", "P1": "P1 — posted", "P2": "P2 — for the digest"}
MAX_FILTER = 200  # characters of an `alerts` filter (a kind:scope is far shorter)
GROUP_AT = 5  # more alerts of one kind in a tier than this: one line for the kind
GROUP_SHOWN = 3  # alerts named on a kind's line
PER_SECTION = 11  # lines in a section: the tier's title and 10 alerts
SECTIONS_PER_TIER = 2
SECTION_CHARS = 1_400  # at most: 6 sections, the silences and the rest in one Slack message
MAX_SILENCES = 10
SILENCES_CHARS = 1_000
HINTS_MARGIN = 50  # characters of the blocks' budget (BLOCKS_TEXT) the tiers' hints leave


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

    def concerns(self, fingerprint: str | None, scope: str | None, kind: str | None) -> bool:
        """Whether a silence (on a fingerprint, or a kind or everything on a subtree) may
        hold an alert this filter keeps: not one on another team's subtree (audit23
        tenants F5: `alerts kiri` listed `acme`'s silences), nor one of another kind
        (recheck31 L3)."""
        held = kind or (fingerprint or "").partition(":")[0]  # the kind (or family) it holds
        if (
            self.kinds
            and held
            and not any(k == held or k.startswith(held + "_") for k in self.kinds)
        ):
            return False
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


def _parse_filter(tx: Tx, text: str, policy: Policy, *, models: set[str]) -> _Filter:
    """The filter of ``alerts <text>``, or UsageError listing what is accepted.

    ``models``: the models Nightshift prices or routes to; ``model:<name>`` of one of them
    (or a snapshot of one) is a filter even while it has no alert (recheck26 Ka L3: the
    ``breakers model:<name>`` reply recommends it)."""
    if len(text) > MAX_FILTER:
        raise _refuse_filter(text, f"is too long for a filter (at most {MAX_FILTER} characters)")
    kind_text, colon, scope_text = text.partition(":")
    if colon and kind_text.lower() == "model":  # a model's breaker alerts: `model:<name>`
        kind_text, scope_text = "", text
    elif not colon:
        kinds = kinds_named(text)
        if kinds:
            return _Filter(text, kinds=kinds)
        kind_text, scope_text = "", text
    kinds = kinds_named(kind_text) if kind_text else ()
    if kind_text and not kinds:
        raise _refuse_filter(text, f"names no alert kind before the colon ({echo(kind_text)})")
    if scope_text[: len(MODEL_PREFIX)].lower() == MODEL_PREFIX:  # (in any case, as breakers)
        name = scope_text[len(MODEL_PREFIX) :].strip().lower()
        scope = model_key(name) if name else None
        if scope is not None and (name in models or undated(name) in models):
            return _Filter(text, kinds=kinds, scope=scope)
        if scope is None or not known_scope(policy, tx, scope):
            near = difflib.get_close_matches(name, sorted(models), n=1, cutoff=0.75)
            model = f"model:{near[0]}" if near else None
            raise _refuse_filter(
                text,
                "names no model Nightshift prices, routes to or has an alert of",
                meant=f"{kind_text}:{model}" if model and kind_text else model,
            )
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
) -> list[tuple[str, list[Alert]]]:
    """One line per alert, or per kind when a kind has many (with the alerts it covers)."""
    by_kind: dict[str, list[Alert]] = {}
    for a in alerts:
        by_kind.setdefault(a.kind, []).append(a)
    grouped = {k for k, group in by_kind.items() if len(group) > GROUP_AT}
    if flt is not None and len(flt.kinds) == 1:
        grouped = set()  # filtered to one kind: list them one by one
    out: list[tuple[str, list[Alert]]] = []
    for a in alerts:
        if a.kind not in grouped:
            out.append((alert_line(a, now=now, ran_out=a.id in ran_out), [a]))
        elif a is by_kind[a.kind][0]:
            out.append((_group_line(by_kind[a.kind], flt=flt), by_kind[a.kind]))
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


def _narrower(
    flt: _Filter | None, *, hidden: list[Alert], tier: list[Alert], skip: int, room: int
) -> tuple[str, bool]:
    """How to see the alerts a tier's list leaves out: the scopes they are under (below the
    filter's), each a filter of the same kind, as many as ``room`` characters hold (the
    others by a ``+N``); in a fleet of one namespace, its users (audit26 client L1:
    "`<kind>:<namespace or agent>`" led back to the same list). With whether it named
    scopes (which a ``+N`` passes over)."""
    kind = flt.text.partition(":")[0] if flt is not None and flt.kinds else ""
    within = flt.scope if flt is not None else None
    again = "/agent alerts" + (f" {slack_text(flt.text)}" if flt is not None else "")
    lists = f": `/agent alerts {kind + ':' if kind else ''}<scope>` lists one"
    under = where(
        [a.scope for a in hidden],
        among=[a.scope for a in tier],
        within=within,
        again=again,
        skip=skip,
        room=room - len(" · under ") - len(lists),
    )
    if under is not None:
        return f" · under {under}{lists}", True
    if not kind:  # one scope holds them all: a kind narrows
        return f" (`/agent alerts <kind>{':' + within if within else ''}` narrows)", False
    return "", False


def _unused_skip(skip: int, flt: _Filter | None) -> UsageError:
    """``alerts … +N`` where no hint names scopes to pass over, the list empty included."""
    command = "/agent alerts" + (f" {echo(flt.text)}" if flt is not None else "")
    return unused_skip(skip, again=command, example="/agent alerts <kind> +N")


def _more_alerts(n: int, tier: str = "") -> str:
    return f"… and {n} more{' ' + tier if tier else ''} alert{'s' if n != 1 else ''}"


@subcommand("alerts", usage="alerts [scope|kind]")
async def cmd_alerts(ctx: Context, args: list[str]) -> Reply:
    """Open alerts by tier, with counts and age; a scope or kind narrows: `alerts acme/alice`;
    a cut list's hint gives `+N` to name more scopes."""
    args, skip = skip_of(args, command="alerts")
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
    models = known_models(ctx)
    flt = (
        await ctx.ns.store.read(lambda tx: _parse_filter(tx, args[0], policy, models=models))
        if args
        else None
    )

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
        silences = [s for s in silences if flt.concerns(s[1], s[2], s[3])]
    alerts = [a for a in every if flt.keeps(a)] if flt else every
    if skip and not alerts:  # nothing to pass over (recheck26 Kc L1: "No open alerts")
        raise _unused_skip(skip, flt)
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
    cut: list[tuple[dict[str, Any], str, list[Alert], list[Alert]]] = []  # hints to write
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
        left_out = [a for _, group in lines[len(shown) :] for a in group]
        hidden = len(left_out)
        if hidden:  # its hint is written once the room left is known (below)
            blocks.append(context(_more_alerts(hidden, tier)))
            cut.append((blocks[-1], _more_alerts(hidden, tier), left_out, mine))
        entries += [
            (f"{tier}:", 0),
            *((line, len(group)) for line, group in shown),
            *([(_more_alerts(hidden, tier), hidden)] if hidden else []),
        ]
    tz = engine.tz
    shown_silences = [
        f"🔕 {ops.SilenceTarget(fp, scope, kind=kind).matches} until {local_time(until, ctx)}"
        f" (by {member_or_name(by)}){why_text(reason)}"
        if starts is None or starts <= now
        else f"Booked: 🔕 {ops.SilenceTarget(fp, scope, kind=kind).matches}"
        f" {span_text(starts, until, tz, now)} (by {member_or_name(by)}){why_text(reason)}"
        for _, fp, scope, kind, by, until, starts, reason in silences[:MAX_SILENCES]
    ]
    if len(silences) > MAX_SILENCES:
        shown_silences.append(f"… and {len(silences) - MAX_SILENCES} more silences")
    if shown_silences:
        blocks.append(context(clip("\n".join(shown_silences), SILENCES_CHARS)))
    named = False  # whether a hint names scopes (a `+N` passes over them)
    if cut:  # each cut tier names the scopes of its rest, in the room the message leaves
        share = (BLOCKS_TEXT - text_chars(blocks) - HINTS_MARGIN) // len(cut)
        for block, words, left_out, mine in cut:
            room = min(SECTION_TEXT, share + len(words)) - len(words)
            narrower, names = _narrower(flt, hidden=left_out, tier=mine, skip=skip, room=room)
            block["elements"][0]["text"] = words + narrower
            named = named or names
    if skip and not named:
        raise _unused_skip(skip, flt)

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
            f"#{alert_id} was already acknowledged by {member_or_name(alert.acked_by or '')}"
            f" at {local_time(alert.acked_at or 0, ctx)}."
        )
    return Reply.text_only(
        f"👀 <@{ctx.actor}> acknowledged #{alert_id} ({slack_text(alert.scope)});"
        f" escalation stopped, {duration(alert.mtta or 0)} after it fired.",
        ephemeral=False,
    )
