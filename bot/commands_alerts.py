"""``/agent`` alerts, ack, silence, oncall, status, and the alert message buttons.

Who may act on alerts: admins, and the responders of the policy (every user of a
rotation and every ``user:`` of the escalation chain), since the person woken up at
3:17 must be able to acknowledge without being an admin. Anyone may look.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.alerts import operations as ops
from bot.alerts.engine import AlertEngine
from bot.alerts.fleet import AgentStatus, fleet
from bot.alerts.model import Alert
from bot.alerts.oncall import handoffs, on_call, rotation_named
from bot.alerts.render import alert_line, clock_time, duration
from bot.commands import (
    ActionResult,
    Context,
    Reply,
    UsageError,
    action,
    context,
    header,
    section,
    subcommand,
)
from bot.outbox import OutboxHealth, outbox_health
from guards.config import Policy, parse_duration
from guards.errors import InvalidInput
from guards.money import format_usd
from guards.store import Tx

__all__: list[str] = []

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^@?([UW][A-Z0-9]{2,})$")
_TIER_NAMES = {"P0": "P0 — pages on-call", "P1": "P1 — posted", "P2": "P2 — for the digest"}
_PERIODS = {"day": "daily", "week": "weekly"}
SILENCE_BUTTON_SECONDS = 3600
LIFT_WORDS = ("off", "lift", "end")


def engine_of(ctx: Context) -> AlertEngine:
    """The running engine, or one built from the policy (it holds no state of its own)."""
    component = ctx.ns.extras.get("alerts")
    if component is not None:
        engine: AlertEngine = component.engine
        return engine
    return AlertEngine(policy=ctx.ns.policy, ledger=ctx.ns.ledger)


def responders(policy: Policy) -> set[str]:
    users = {u for r in policy.oncall.rotations for u in r.users}
    users.update(s.notify[5:] for s in policy.oncall.escalation if s.notify.startswith("user:"))
    return users


async def require_responder(ctx: Context, what: str) -> None:
    """Pass for responders of the policy; anyone else must be an admin (refusals audited)."""
    if ctx.user_id in responders(ctx.ns.policy):
        return
    await ctx.require_admin(what)


def _seconds(text: str) -> int:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if seconds <= 0:
        raise UsageError("the duration must be more than zero, e.g. 30m or 2h")
    return seconds


def _alert_id(text: str) -> int:
    digits = text.strip().lstrip("#")
    if not digits.isdigit():
        raise UsageError(f"{text[:40]!r} is not an alert id; `/agent alerts` lists them")
    return int(digits)


def _user(text: str) -> str:
    m = _MENTION.match(text.strip())
    if not m:
        raise UsageError(f"{text[:40]!r} is not a user: mention them, e.g. @dana")
    return m.group(1) or m.group(2)


def _local(ts: float, ctx: Context) -> str:
    return clock_time(ts, engine_of(ctx).tz, now=ctx.ns.clock.now())


# -- alerts, ack, silence -------------------------------------------------------------


@subcommand("alerts", usage="alerts")
async def cmd_alerts(ctx: Context, args: list[str]) -> Reply:
    """Open alerts by tier, with their counts and age; silenced ones are marked."""
    engine = engine_of(ctx)
    now = ctx.ns.clock.now()

    def read(tx: Tx) -> tuple[list[Alert], list[Any]]:
        silences = tx.all(
            "SELECT id, fingerprint, scope, created_by, expires_at FROM silences"
            " WHERE ended_at IS NULL AND expires_at > ? ORDER BY expires_at",
            (now,),
        )
        return engine.open_alerts(tx), silences

    alerts, silences = await ctx.ns.store.write(read)
    if not alerts and not silences:
        return Reply.text_only("No open alerts. 🌙")
    blocks: list[dict[str, Any]] = [header(f"Open alerts: {len(alerts)}")]
    lines = [f"*Open alerts: {len(alerts)}*"]
    for tier in ("P0", "P1", "P2"):
        mine = [a for a in alerts if a.tier == tier]
        if not mine:
            continue
        body = "\n".join(alert_line(a, now=now) for a in mine[:25])
        if len(mine) > 25:
            body += f"\n… and {len(mine) - 25} more"
        blocks.append(section(f"*{_TIER_NAMES[tier]}*\n{body}"))
        lines += [f"{tier}:", body]
    if silences:
        text = "\n".join(
            f"🔕 {fp or (scope + ' and below')} until {_local(until, ctx)} (by <@{by}>)"
            for _, fp, scope, by, until in silences
        )
        blocks.append(context(text))
        lines.append(text)
    hint = "`/agent ack <id>` · `/agent silence <id or scope> <duration>`"
    if silences:
        hint += " · `/agent silence <target> off` lifts a silence"
    blocks.append(context(hint))
    return Reply(text="\n".join(lines), blocks=blocks)


@subcommand("ack", usage="ack <id>")
async def cmd_ack(ctx: Context, args: list[str]) -> Reply:
    """Acknowledges an alert: its escalation stops and the time to acknowledge is recorded."""
    if len(args) != 1:
        raise UsageError()
    alert_id = _alert_id(args[0])
    await require_responder(ctx, "acknowledge alerts")
    engine = engine_of(ctx)
    alert, new = await ctx.ns.store.write(
        lambda tx: ops.ack(engine, tx, alert_id=alert_id, actor=ctx.actor)
    )
    if not new:
        return Reply.text_only(
            f"#{alert_id} was already acknowledged by <@{alert.acked_by}>"
            f" at {_local(alert.acked_at or 0, ctx)}."
        )
    return Reply.text_only(
        f"👀 <@{ctx.actor}> acknowledged #{alert_id} ({alert.scope}); escalation stopped,"
        f" {duration(alert.mtta or 0)} after it fired.",
        ephemeral=False,
    )


@subcommand("silence", usage="silence <id or scope> <duration|off>")
async def cmd_silence(ctx: Context, args: list[str]) -> Reply:
    """Silences an alert or scope for a while, across re-fires; `off` lifts it: alerts notify again.

    `off` (also `lift`, `end`) ends the active silences on that target now. The target is
    an alert id (`12`, `#12`), `kind:scope`, or a scope (`acme/alice`: it and everything
    below it), as for silencing. A lift ends the silences made on exactly that target (a
    silence on a wider scope still holds and is named in the reply). Open alerts the
    lifted silences held are posted (or their message updated) and put back on the
    escalation chain at once, as when a silence expires: a P0 pages on-call again unless
    it was acknowledged. Later firings notify as usual. Firings recorded while silenced
    stay counted; `/agent alerts` lists the active silences.
    """
    if len(args) != 2:
        raise UsageError()
    if args[1].lower() in LIFT_WORDS:
        return await _lift(ctx, args[0])
    seconds = _seconds(args[1])
    await require_responder(ctx, "silence alerts")
    engine = engine_of(ctx)
    made = await ctx.ns.store.write(
        lambda tx: ops.silence(engine, tx, target=args[0], seconds=seconds, actor=ctx.actor)
    )
    also = f"; {len(made.silenced)} open alert(s) silenced now" if made.silenced else ""
    return Reply.text_only(
        f"🔕 <@{ctx.actor}> silenced {made.matches} for {duration(seconds)}"
        f" (until {_local(made.expires_at, ctx)}){also}. Firings are still recorded.",
        ephemeral=False,
    )


async def _lift(ctx: Context, target: str) -> Reply:
    await require_responder(ctx, "lift silences")
    engine = engine_of(ctx)
    done = await ctx.ns.store.write(lambda tx: ops.lift(engine, tx, target=target, actor=ctx.actor))
    what = done.target
    on = what.scope or what.fingerprint
    if what.alert_id is not None:
        on = f"#{what.alert_id} ({what.fingerprint})"
    covered = ""
    if done.covered_by is not None:
        wider, by = done.covered_by
        covered = (
            f" {what.name} is still silenced by {wider.matches} (set by <@{by}>):"
            f" `/agent silence {wider.name} off` lifts that one."
        )
    if not done.lifted:
        return Reply.text_only(
            f"There is no active silence on {on}; nothing changed.{covered}"
            " `/agent alerts` lists the active silences."
        )
    setters = " and ".join(dict.fromkeys(f"<@{s.created_by}>" for s in done.lifted))
    left = duration(max(s.left for s in done.lifted))
    head = (
        f"the silence on {on} (set by {setters}, had {left} left)"
        if len(done.lifted) == 1
        else f"{len(done.lifted)} silences on {on} (set by {setters}, up to {left} left)"
    )
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


# -- on-call --------------------------------------------------------------------------


@subcommand("oncall", usage="oncall [override @user <duration> [rotation] | override clear]")
async def cmd_oncall(ctx: Context, args: list[str]) -> Reply:
    """Who is on call now per rotation, and the next hand-off; `override` takes a shift."""
    if args and args[0].lower() == "override":
        return await _override(ctx, args[1:])
    if args:
        raise UsageError()
    policy = ctx.ns.policy
    if not policy.oncall.rotations:
        return Reply.text_only("No rotations: add `oncall.rotations` to the policy file.")
    engine = engine_of(ctx)
    now = ctx.ns.clock.now()
    overrides = await ctx.ns.store.write(lambda tx: engine.overrides(tx, now))
    tz = engine.tz
    lines = []
    for rotation in policy.oncall.rotations:
        who = on_call(rotation, tz, now, overrides)
        shifts = handoffs(rotation, tz, now, 2)
        every = f"{_PERIODS[rotation.period]}, hand-off {rotation.handoff}"
        line = f"*{rotation.name}* ({every}): <@{who.user}>"
        if who.override is not None:
            line += f" (override until {_local(who.override.ends_at, ctx)})"
        when = datetime.fromtimestamp(shifts[0].ends_at, tz).strftime("%a %d %b %H:%M %Z")
        line += f"\n    next hand-off {when} → <@{shifts[1].user}>"
        lines.append(line)
    chain = engine.chain
    if chain.steps:
        steps = " → ".join(
            f"{s.notify}" + (f" after {duration(s.after)}" if s.after else "") for s in chain.steps
        )
        repeat = f"; repeats {chain.repeat}×" if chain.repeat else ""
        lines.append(f"Escalation: {steps}{repeat}")
    text = f"*On call* ({tz.key})\n" + "\n".join(lines)
    return Reply(text=text, blocks=[header("On call"), section("\n".join(lines)), context(tz.key)])


async def _override(ctx: Context, args: list[str]) -> Reply:
    policy = ctx.ns.policy
    if not policy.oncall.rotations:
        return Reply.text_only("No rotations: add `oncall.rotations` to the policy file.")
    engine = engine_of(ctx)
    if args and args[0].lower() == "clear":
        rotation = _rotation(policy, args[1] if len(args) > 1 else None)
        await require_responder(ctx, "change who is on call")
        n = await ctx.ns.store.write(
            lambda tx: ops.end_overrides(engine, tx, rotation=rotation, actor=ctx.actor)
        )
        return Reply.text_only(
            f"Ended {n} override(s) of {rotation}; the schedule applies again.", ephemeral=False
        )
    if len(args) not in (2, 3):
        raise UsageError()
    user = _user(args[0])
    seconds = _seconds(args[1])
    rotation = _rotation(policy, args[2] if len(args) == 3 else None)
    await require_responder(ctx, "change who is on call")
    made = await ctx.ns.store.write(
        lambda tx: ops.override(
            engine, tx, rotation=rotation, user=user, seconds=seconds, actor=ctx.actor
        )
    )
    return Reply.text_only(
        f"<@{user}> is on call for {rotation} until {_local(made.ends_at, ctx)}"
        f" (set by <@{ctx.actor}>).",
        ephemeral=False,
    )


def _rotation(policy: Policy, name: str | None) -> str:
    if name is None:
        return policy.oncall.rotations[0].name
    rotation = rotation_named(policy.oncall, name)
    if rotation is None:
        known = ", ".join(r.name for r in policy.oncall.rotations)
        raise UsageError(f"no rotation {name[:40]!r}; rotations: {known}")
    return rotation.name


# -- status ---------------------------------------------------------------------------


def _agent_line(agent: AgentStatus, ctx: Context, now: float) -> str:
    config = ctx.ns.policy.heartbeats
    if agent.last_seen is None:
        beat = "no heartbeats"
    elif agent.heartbeat_missed:
        beat = f"💔 heartbeat missed (last {_local(agent.last_seen, ctx)})"
    else:
        late = " ⚠️ late" if agent.heartbeat_overdue(config, now) else ""
        status = f" ({agent.heartbeat_status})" if agent.heartbeat_status else ""
        beat = f"♥ {duration(now - agent.last_seen)} ago{status}{late}"
    if agent.breaker_state == "closed":
        breaker = "breaker closed"
    else:
        where = f" at {agent.breaker_scope}" if agent.breaker_scope else ""
        reason = f": {agent.breaker_reason}" if agent.breaker_reason else ""
        breaker = f"⛔ breaker {agent.breaker_state.replace('_', ' ')}{where}{reason}"
    icon = "🟢" if agent.healthy else "🔴"
    alerts = f" · {agent.open_alerts} open alert(s)" if agent.open_alerts else ""
    return (
        f"{icon} `{agent.scope}` · {beat} · {breaker} ·"
        f" {format_usd(agent.spent_today_micros)} today{alerts}"
    )


@subcommand("status", usage="status")
async def cmd_status(ctx: Context, args: list[str]) -> Reply:
    """The fleet: agents, last heartbeat, breaker state, spend today, Slack delivery."""
    now = ctx.ns.clock.now()
    ledger = ctx.ns.ledger

    def read(tx: Tx) -> tuple[list[AgentStatus], list[Any]]:
        counts = tx.all("SELECT tier, COUNT(*) FROM alerts WHERE resolved_at IS NULL GROUP BY tier")
        return fleet(tx, ledger=ledger, now=now), counts

    agents, counts = await ctx.ns.store.write(read)
    delivery = _delivery_line(await outbox_health(ctx.ns.store), ctx, now)
    if not agents:
        return Reply.text_only(
            "No agents yet: an agent appears with its first reservation or heartbeat.\n" + delivery
        )
    bad = sum(1 for a in agents if not a.healthy)
    open_alerts = " · ".join(f"{t} {n}" for t, n in sorted(counts)) or "none"
    head = f"Fleet: {len(agents)} agent(s), {bad} need a look · open alerts: {open_alerts}"
    lines = [_agent_line(a, ctx, now) for a in agents[:40]]
    if len(agents) > 40:
        lines.append(f"… and {len(agents) - 40} more")
    blocks = [header("Fleet status"), section(head), section("\n".join(lines)), context(delivery)]
    return Reply(text="\n".join([head, *lines, delivery]), blocks=blocks)


def _delivery_line(health: OutboxHealth, ctx: Context, now: float) -> str:
    """How the outbox is doing: what waits, what failed for good, the last error."""
    if health.ok and not health.pending:
        return "Slack delivery: ✅ nothing waiting"
    parts = [f"{health.pending} waiting"]
    if health.oldest_pending_at is not None:
        parts.append(f"oldest since {_local(health.oldest_pending_at, ctx)}")
    if health.failed:
        parts.append(f"⚠️ {health.failed} failed for good")
    if health.last_error:
        parts.append(f"last error: {health.last_error[:120]}")
    return "Slack delivery: " + " · ".join(parts)


# -- buttons --------------------------------------------------------------------------


def _button_id(value: str) -> int:
    if not value.isdigit():
        raise InvalidInput("value", "this button does not name an alert")
    return int(value)


@action("alert_ack")
async def act_ack(ctx: Context, value: str) -> ActionResult:
    alert_id = _button_id(value)
    await require_responder(ctx, "acknowledge alerts")
    engine = engine_of(ctx)
    alert, new = await ctx.ns.store.write(
        lambda tx: ops.ack(engine, tx, alert_id=alert_id, actor=ctx.actor)
    )
    if not new:
        return ActionResult(
            ephemeral=f"#{alert_id} was already acknowledged by <@{alert.acked_by}>."
        )
    # the engine has re-rendered every copy of the alert (channel and DMs) in the same
    # transaction; replacing the clicked copy's buttons here would undo that with stale text
    return ActionResult(
        ephemeral=f"👀 you acknowledged #{alert_id} at {_local(alert.acked_at or 0, ctx)}"
    )


@action("alert_silence_1h")
async def act_silence(ctx: Context, value: str) -> ActionResult:
    alert_id = _button_id(value)
    await require_responder(ctx, "silence alerts")
    engine = engine_of(ctx)
    made = await ctx.ns.store.write(
        lambda tx: ops.silence(
            engine, tx, target=str(alert_id), seconds=SILENCE_BUTTON_SECONDS, actor=ctx.actor
        )
    )
    return ActionResult(
        ephemeral=f"🔕 you silenced #{alert_id} for 1h (until {_local(made.expires_at, ctx)})"
    )


@action("alert_escalate")
async def act_escalate(ctx: Context, value: str) -> ActionResult:
    alert_id = _button_id(value)
    await require_responder(ctx, "escalate alerts")
    engine = engine_of(ctx)
    who = await ctx.ns.store.write(
        lambda tx: ops.escalate_now(engine, tx, alert_id=alert_id, actor=ctx.actor)
    )
    target = "the channel" if who == "channel" else f"<@{who}>"
    return ActionResult(ephemeral=f"Escalated #{alert_id}: notified {target}.")


@action("alert_resolve")
async def act_resolve(ctx: Context, value: str) -> ActionResult:
    alert_id = _button_id(value)
    await require_responder(ctx, "resolve alerts")
    engine = engine_of(ctx)
    alert = await ctx.ns.store.write(
        lambda tx: ops.resolve(engine, tx, alert_id=alert_id, actor=ctx.actor)
    )
    at = _local(alert.resolved_at or 0, ctx)
    if alert.resolved_by:
        return ActionResult(ephemeral=f"✅ #{alert_id} resolved by <@{alert.resolved_by}> at {at}")
    return ActionResult(
        ephemeral=f"✅ #{alert_id} resolved at {at} ({alert.resolve_reason or 'condition cleared'})"
    )
