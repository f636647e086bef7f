"""``/agent oncall`` and ``/agent status``: who answers now, and how the fleet is doing.

``oncall`` shows each rotation's person on call and the next hand-off, the overrides
booked ahead, and the escalation chain; ``oncall override`` lets a responder take a
shift, now or from a later time (``from sat 09:00``), or end the overrides. ``status``
shows every agent's last heartbeat, breaker and spend today, and how Slack delivery (the
outbox) is doing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts import operations as ops
from bot.alerts.escalation import Chain
from bot.alerts.fleet import DISABLED_BREAKERS, AgentStatus, Fleet, fleet
from bot.alerts.oncall import (
    Override,
    WhenError,
    next_change,
    on_call,
    rotation_named,
    start_at,
)
from bot.alerts.render_time import clock_time, duration
from bot.blocks import context, echo, fit_text, header, line_sections, section
from bot.chat_words import join_duration
from bot.commands import Context, Reply, UsageError, subcommand
from bot.escape import mentioned, operator_mentions, slack_text
from bot.outbox import OutboxHealth, outbox_health
from bot.people import LEFT, People
from bot.responders import duration_arg, engine_of, local_time, require_responder
from bot.storage_notice import refused_text
from guards.config import Policy
from guards.money import format_usd
from guards.store import Tx

__all__: list[str] = []

_PERIODS = {"day": "daily", "week": "weekly"}
MAX_LISTED = 45  # agents in /agent status: three sections of 15 lines
OVERRIDE_CHECK_SECONDS = 1.0  # the override waits no longer for Slack's users.info
MAX_BOOKED = 10  # overrides booked ahead listed in /agent oncall
_FROM = "`from 09:00`, `from tomorrow 09:00`, `from sat 09:00` or `from 2026-12-05 09:00`"


def _user(text: str) -> str:
    user = mentioned(text)
    if user is None:
        raise UsageError(
            f"`{echo(text)}` is not a user: pick them from the list Slack shows as you type @"
            " (a name typed in full is not a mention)"
        )
    return user


# -- on-call --------------------------------------------------------------------------


@subcommand(
    "oncall",
    usage="oncall [override @user <duration> [rotation] [from <when>] | override clear [rotation]]",
)
async def cmd_oncall(ctx: Context, args: list[str]) -> Reply:
    """Who is on call now per rotation, and the next hand-off; `override` takes a shift.

    ``from sat 09:00`` books it ahead (the policy's time zone); ``override clear
    [rotation]`` ends the override on now and cancels those booked."""
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
    people: People | None = ctx.ns.extras.get("people")
    gone = frozenset[str]()
    if people is not None:  # stale answers are asked again, for the next look
        people.want(people.policy_users(o.user for o in overrides))
        gone = people.gone
    lines = []
    for rotation in policy.oncall.rotations:
        who = on_call(rotation, tz, now, overrides, gone)
        every = f"{_PERIODS[rotation.period]}, hand-off {rotation.handoff}"
        line = f"*{rotation.name}* ({every}): {_mention(who.user)}"
        if who.override is not None:
            line += f" (override until {local_time(who.override.ends_at, ctx)})"
        # the next change of person, not of shift (one person alone: never handed off)
        if (change := next_change(rotation, tz, now, overrides, gone)) is not None:
            when = datetime.fromtimestamp(change[0], tz).strftime("%a %d %b %H:%M %Z")
            line += f"\n    next hand-off {when} → {_mention(change[1])}"
        line += "".join(f"\n    {w}" for w in _left_lines(rotation.users, who.skipped, gone))
        lines.append(line)
    lines += _booked_lines(overrides, tz, now)
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
    # first: a refusal is audited, typo or not (audit15 L4)
    await require_responder(ctx, "change who is on call")
    if args and args[0].lower() == "clear":
        rotation = _rotation(policy, args[1] if len(args) > 1 else None)
        done = await ctx.ns.store.write(
            lambda tx: ops.end_overrides(engine, tx, rotation=rotation, actor=ctx.actor)
        )
        return _cleared(done, rotation)
    args = join_duration(args, 1)  # `2 h`, `2 hours`
    now = ctx.ns.clock.now()
    starts_at = None
    if "from" in (words := [a.lower() for a in args[2:4]]):
        at = 2 + words.index("from")
        when = args[at + 1 :]
        if len(when) > 1 and rotation_named(ctx.ns.policy.oncall, when[-1]) is not None:
            raise UsageError(  # (recheck28 L5: it said "`primary` is not a time")
                f"the rotation goes before `from`: `oncall override {args[0]} {args[1]}"
                f" {when[-1]} from {' '.join(when[:-1])}`"
            )
        args, starts_at = args[:at], _start(when, engine.tz, now)
    if len(args) not in (2, 3):
        raise UsageError()
    user = _user(args[0])
    seconds = duration_arg(args[1])
    rotation = _rotation(policy, args[2] if len(args) == 3 else None)
    if await _left(ctx, user):
        return Reply.text_only(
            f"<@{user}> {LEFT} (Slack says the account is deactivated or unknown): a page"
            f" to them would reach nobody. Nothing changed; put someone else on call for"
            f" {rotation}."
        )

    def book(tx: Tx) -> tuple[Override, list[Override]]:
        earlier = engine.overrides(tx, tx.clock.now())
        made = ops.override(
            engine,
            tx,
            rotation=rotation,
            user=user,
            seconds=seconds,
            actor=ctx.actor,
            starts_at=starts_at,
        )
        return made, [o for o in earlier if _overlap(o, made)]

    made, overlapped = await ctx.ns.store.write(book)
    if made.starts_at > made.created_at:
        text = (
            f"<@{user}> is on call for {rotation} from {_day_time(made.starts_at, engine.tz, now)}"
            f" until {clock_time(made.ends_at, engine.tz, now=made.starts_at)} ({engine.tz.key}),"
            f" booked by <@{ctx.actor}>."
        )
    else:
        text = (
            f"<@{user}> is on call for {rotation} until {local_time(made.ends_at, ctx)}"
            f" (set by <@{ctx.actor}>)."
        )
    for o in overlapped:  # the one booked last holds while both do (recheck28 L4)
        text += (
            f"\n⚠️ It takes the place of <@{o.user}>'s override of {rotation}"
            f" ({_day_time(o.starts_at, engine.tz, now)} → "
            f"{clock_time(o.ends_at, engine.tz, now=o.starts_at)}) while both hold: the one"
            f" booked last wins (`/agent oncall override clear {rotation}` ends them all)."
        )
    return Reply.text_only(text, ephemeral=False)


def _overlap(o: Override, made: Override) -> bool:
    """Whether ``o`` is another override of ``made``'s rotation over some of its time."""
    return (
        o.rotation.lower() == made.rotation.lower()
        and o.starts_at < made.ends_at
        and made.starts_at < o.ends_at
    )


def _start(words: list[str], tz: ZoneInfo, now: float) -> float:
    """The start ``from <when>`` names, or a UsageError saying what it takes."""
    forms = f"write {_FROM}, in {tz.key} time"
    if not words:
        raise UsageError(f"`from` needs a start: {forms}")
    try:
        return start_at(words, tz, now)
    except WhenError as exc:
        said = exc.why if exc.typed is None else f"`{echo(exc.typed)}` {exc.why}"
        raise UsageError(f"{said}; {forms}. Nothing was booked.") from None


def _day_time(ts: float, tz: ZoneInfo, now: float) -> str:
    """``03:30 today``, or ``Sat 05 Dec 09:00``: a start is never read as the wrong day."""
    said = clock_time(ts, tz, now=now)
    same_day = datetime.fromtimestamp(ts, tz).date() == datetime.fromtimestamp(now, tz).date()
    return f"{said} today" if same_day else said


def _booked_lines(overrides: list[Override], tz: ZoneInfo, now: float) -> list[str]:
    """``Booked: <@U1> for primary Sat 05 Dec 09:00 → 21:00, by <@U2>``, soonest first."""
    booked = sorted((o for o in overrides if o.booked(now)), key=lambda o: o.starts_at)
    lines = [
        f"Booked: <@{o.user}> for {o.rotation} {_day_time(o.starts_at, tz, now)}"
        f" → {clock_time(o.ends_at, tz, now=o.starts_at)}"
        + (f", by <@{o.created_by}>" if o.created_by else "")
        for o in booked[:MAX_BOOKED]
    ]
    if len(booked) > MAX_BOOKED:
        lines.append(f"… and {len(booked) - MAX_BOOKED} more booked")
    return lines


def _overrides(n: int) -> str:
    return "1 override" if n == 1 else f"{n} overrides"


def _cleared(done: ops.OverridesEnded, rotation: str) -> Reply:
    """What ``override clear`` says: how many it ended now and cancelled ahead."""
    if not done.ended and not done.cancelled:
        return Reply.text_only(f"No override of {rotation} to end; the schedule applies.")
    if not done.ended:
        noun = "override" if done.cancelled == 1 else "overrides"
        text = f"Cancelled {done.cancelled} booked {noun}"
        return Reply.text_only(f"{text} of {rotation}; the schedule applies.", ephemeral=False)
    text = f"Ended {_overrides(done.ended)}"
    if done.cancelled:
        text += f" and cancelled {done.cancelled} booked"
    return Reply.text_only(f"{text} of {rotation}; the schedule applies again.", ephemeral=False)


def _left_lines(users: list[str], skipped: tuple[str, ...], gone: frozenset[str]) -> list[str]:
    """A warning per user of a rotation (or override) who left the workspace."""
    lines = []
    for user in dict.fromkeys([*skipped, *users]):
        if user in gone:
            fix = "remove them from the policy" if user in users else "`oncall override clear`"
            lines.append(f"⚠️ <@{user}> {LEFT}: skipped; {fix}")
    return lines


def _mention(user: str | None) -> str:
    return f"<@{user}>" if user is not None else f"nobody (everyone in it {LEFT})"


async def _left(ctx: Context, user: str) -> bool:
    """Whether ``user`` left the workspace, by Slack's ``users.info`` (no: unknown, in
    the shell, or Slack too slow to answer: the override is not refused for that)."""
    people: People | None = ctx.ns.extras.get("people")
    if people is None:
        return False
    try:
        return await asyncio.wait_for(people.check(user), OVERRIDE_CHECK_SECONDS)
    except TimeoutError:
        return False


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
        beat = f"💔 heartbeat missed (last {local_time(agent.last_seen, ctx)})"
    else:
        late = " ⚠️ late" if agent.heartbeat_overdue(config, now) else ""
        status = f" ({agent.heartbeat_status})" if agent.heartbeat_status else ""
        beat = f"♥ {duration(now - agent.last_seen)} ago{status}{late}"
    if agent.breaker_state == "closed":
        breaker = "breaker closed"
    else:
        where = f" at {agent.breaker_scope}" if agent.breaker_scope else ""
        reason = (
            f": {operator_mentions(slack_text(agent.breaker_reason))}"
            if agent.breaker_reason
            else ""
        )
        breaker = f"⛔ breaker {agent.breaker_state.replace('_', ' ')}{where}{reason}"
    icon = "🟢" if agent.healthy else "🔴"
    alerts = f" · {agent.open_alerts} open alert(s)" if agent.open_alerts else ""
    if agent.unanswered:  # a P2 waits for the digest, not a person (audit24 agreement F3)
        alerts += f", {agent.unanswered} P0/P1 unanswered"
    spent = format_usd(agent.spent_today_micros, exact=True)  # not $0.00 under a cent
    return f"{icon} `{agent.scope}` · {beat} · {breaker} · {spent} today{alerts}"


MAX_ZONED = 3  # namespaces on a clock of their own named in the times line


def _times_line(ctx: Context, agents: list[AgentStatus], now: float) -> str:
    """``Times in Europe/Berlin``, and whose day "today" is when a namespace listed keeps
    its own (its spend today is of its day, the clock times of the policy's zone:
    audit24 agreement F2)."""
    policy = ctx.ns.policy
    zoned: dict[str, str] = {}
    for agent in agents:
        namespace = agent.scope.split("/", 1)[0]
        zone = policy.namespace_timezone(namespace)
        if zone != policy.timezone:
            zoned.setdefault(namespace, zone)
    line = f"Times in {policy.timezone}"
    if not zoned:
        return line

    def day(zone: str) -> str:
        return datetime.fromtimestamp(now, ZoneInfo(zone)).strftime("%a %Y-%m-%d")

    own = "; ".join(
        f"for {slack_text(ns)}, {day(zone)} ({zone})"
        for ns, zone in list(zoned.items())[:MAX_ZONED]
    )
    if len(zoned) > MAX_ZONED:
        own += f"; {len(zoned) - MAX_ZONED} more on their own day (`/agent budget <namespace>`)"
    return f'{line} · "today" is {day(policy.timezone)}; {own}'


def _more_agents(fleet: Fleet) -> Callable[[int], str]:
    """The line for the N agents left out of the end of the list (unhealthy ones first)."""

    def more(hidden: int) -> str:
        shown = fleet.total - hidden
        bad = fleet.need_a_look - min(shown, fleet.need_a_look)
        agents = "agent" if hidden == 1 else "agents"
        if not bad:
            return f"… and {hidden} more {agents} (healthy)"
        if bad == hidden:
            why = "`/agent alerts` and `/agent breakers` say why"
            return f"… and {hidden} more {agents}, all need a look ({why})"
        return f"… and {hidden} more {agents}: {bad} need a look, {hidden - bad} healthy"

    return more


@subcommand("status", usage="status")
async def cmd_status(ctx: Context, args: list[str]) -> Reply:
    """The fleet: agents, last heartbeat, breaker state, spend today, Slack delivery."""
    if args:
        raise UsageError("`status` takes nothing more (`budget <scope>` shows one scope)")
    now = ctx.ns.clock.now()
    ledger = ctx.ns.ledger

    def read(tx: Tx) -> tuple[Fleet, list[Any], bool]:
        counts = tx.all("SELECT tier, COUNT(*) FROM alerts WHERE resolved_at IS NULL GROUP BY tier")
        limited = ledger.limits_anything(tx)
        return fleet(tx, ledger=ledger, now=now, limit=MAX_LISTED), counts, limited

    view, counts, limited = await ctx.ns.store.read(read)  # the whole fleet: off the writer
    health = await outbox_health(ctx.ns.store)
    delivery = _delivery_line(health, ctx, now)
    storage = _storage(ctx, now)  # every agent call refused: said before anything else
    warnings = _unguarded(ctx.ns.policy, limited=limited, transport=ctx.transport)
    times = _times_line(ctx, view.agents, now)
    if not view.total:
        empty = "No agents yet: an agent appears with its first reservation or heartbeat."
        shown = [times] if health.oldest_pending_at is not None else []  # a time, its zone
        return Reply.text_only("\n".join([*storage, empty, delivery, *warnings, *shown]))
    open_alerts = " · ".join(f"{t} {n}" for t, n in sorted(counts)) or "none"
    head = (
        f"Fleet: {view.total} agent(s), {view.need_a_look} need a look · open alerts: {open_alerts}"
    )
    lines = [_agent_line(a, ctx, now) for a in view.agents]
    more = _more_agents(view)
    listed, placed = line_sections(lines, per_section=15, max_sections=3)
    # the counts and the delivery line first: nothing below can push them out
    blocks = [header("Fleet status"), *map(section, storage), section(head), context(delivery)]
    blocks += [context(w) for w in warnings] + [context(times)] + listed
    if placed < view.total:
        blocks.append(context(more(view.total - placed)))
    text = fit_text(
        [*storage, head, *warnings],
        lines[:placed],
        more=more,
        total=view.total,
        tail=[delivery, times],
    )
    return Reply(text=text, blocks=blocks)


def _storage(ctx: Context, now: float) -> list[str]:
    """The database refusing writes (every agent call answered 503), said first: the fleet
    read off it looks healthy (audit24 resources M3)."""
    store = ctx.ns.store
    if (lost := store.file_lost()) is not None:
        return [f"🔴 Nightshift refuses every write: {slack_text(lost, 400)}"]
    if (outage := store.outage()) is not None:
        return [refused_text(outage, tz=ZoneInfo(ctx.ns.policy.timezone), now=now)]
    return []


def _unguarded(policy: Policy, *, limited: bool, transport: str) -> list[str]:
    """What the set-up leaves unguarded, said where the operator looks (the start-up
    WARNINGs scroll away): no budget anywhere, nobody paged."""
    lines = []
    if not limited:
        lines.append(
            "⚠️ No budgets: nothing refuses a call before it starts (the spend-rate breaker"
            " acts only after money is charged). `/agent budget set <scope> <amount> day`"
            " or `budgets.defaults` in the policy"
        )
    if not policy.breakers.enabled:
        lines.append(DISABLED_BREAKERS)
    if transport != "shell" and not Chain.from_policy(policy).steps:  # whom a page goes to
        lines.append(
            "⚠️ Nobody is paged: there is no on-call rotation nor escalation chain"
            " (`oncall` in the policy); alerts are only posted"
        )
    return lines


def _delivery_line(health: OutboxHealth, ctx: Context, now: float) -> str:
    """How the outbox is doing: what waits, what failed for good, the last error."""
    if health.ok and not health.pending:
        return "Slack delivery: ✅ nothing waiting"
    parts = [f"{health.pending} waiting"]
    if health.oldest_pending_at is not None:
        parts.append(f"oldest since {local_time(health.oldest_pending_at, ctx)}")
    if health.failed:
        parts.append(f"⚠️ {health.failed} failed for good")
    if health.last_error:
        parts.append(f"last error: {health.last_error[:120]}")
    return "Slack delivery: " + " · ".join(parts)
