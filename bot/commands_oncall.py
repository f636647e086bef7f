"""``/agent oncall``: who answers now (``status``, how the fleet is doing, is in
:mod:`bot.commands_status`).

``oncall`` shows each rotation's person on call and the next hand-off, the overrides
booked ahead, and the escalation chain; ``oncall override`` lets a responder take a
shift, now or from a later time (``from sat 09:00``), or end the overrides (read and
booked by :mod:`bot.commands_oncall_override`). A rotation limited to hours shows when
they begin again while it is off them (the chain passes it over then).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bot.alerts.oncall import (
    OnCallNow,
    Override,
    hours_text,
    next_change,
    on_call,
    rotation_zone,
)
from bot.alerts.quiet import quiet_until, until_text
from bot.alerts.render_time import clock_time, duration
from bot.blocks import MAX_BLOCKS, clip, context, fit_text, header, line_sections
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_oncall_override import day_time, override
from bot.people import LEFT, People
from bot.responders import engine_of, local_time
from bot.slack.limits import LIST_TEXT
from guards.config import Policy
from guards.config_hours import QuietHours
from guards.words import plural

__all__: list[str] = []

_PERIODS = {"day": "daily", "week": "weekly"}
MAX_LISTED = 45  # agents in /agent status: three sections of 15 lines
MAX_BOOKED = 10  # overrides booked ahead listed in /agent oncall


# -- on-call --------------------------------------------------------------------------


@subcommand(
    "oncall",
    usage="oncall [override @user <duration> [rotation] [from <when>] | override clear [rotation]]",
)
async def cmd_oncall(ctx: Context, args: list[str]) -> Reply:
    """Who is on call now per rotation, and the next hand-off; `override` takes a shift.

    ``from sat 09:00`` books it ahead (the policy's time zone; a start within the last
    minute means now); ``override clear [rotation]`` ends the override on now and cancels
    those booked."""
    if args and args[0].lower() == "override":
        return await override(ctx, args[1:])
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
        zone = rotation_zone(rotation, tz)
        every = f"{_PERIODS[rotation.period]}, hand-off {rotation.handoff}"
        if zone != tz:
            every += f" {zone.key}"
        if rotation.hours is not None or rotation.days is not None:
            every += f", hours {hours_text(rotation)}"
        line = f"*{rotation.name}* ({every}): {_mention(who.user)}{_off_hours(who, zone, now)}"
        # the next change of person, not of shift (one person alone: never handed off)
        change = next_change(rotation, tz, now, overrides, gone)
        if who.override is not None:  # until its end, or a later booking taking over first
            ends = who.override.ends_at if change is None else min(who.override.ends_at, change[0])
            line += f" (override until {local_time(ends, ctx)})"
        if change is not None:
            when = datetime.fromtimestamp(change[0], tz).strftime("%a %d %b %H:%M %Z")
            line += f"\n    next hand-off {when} → {_mention(change[1])}"
        line += "".join(f"\n    {w}" for w in _left_lines(rotation.users, who.skipped, gone))
        lines.append(line)
    tail = [_booked_lines(overrides, tz, now)]
    chain = engine.chain
    if chain.steps:
        steps = " → ".join(
            _step(s.notify, engine.policy) + (f" after {duration(s.after)}" if s.after else "")
            for s in chain.steps
        )
        repeat = f"; repeats {chain.repeat}×" if chain.repeat else ""
        tail.append([f"Escalation: {steps}{repeat}"])
    quiet = policy.alerts.quiet_hours
    if quiet is not None:
        tail.append([_quiet_line(quiet, tz, now)])
    return _oncall_reply(lines, [group for group in tail if group], tz)


def _oncall_reply(rotations: list[str], tail: list[list[str]], tz: ZoneInfo) -> Reply:
    """Whole rotations over as many sections as fit one message, then "… and N more
    rotations"; the bookings, the chain and quiet hours (``tail``, groups of lines) are
    always shown, each group in sections of its own, so the chain is whole up to a
    section's 3,000 characters. (One section of them all was cut mid-rotation and lost
    the chain: audit24 L3; one section of the tail lost it after many bookings: review24 L1.)"""

    def more(hidden: int) -> str:
        return f"… and {plural(hidden, 'more rotation')}"

    ends = [
        block for group in tail for block in line_sections(group, per_section=MAX_BOOKED + 1)[0]
    ]
    room = LIST_TEXT - sum(len(b["text"]["text"]) for b in ends) - len(more(len(rotations)))
    shown: list[str] = []
    for line in (clip(r) for r in rotations):
        if len(line) + 1 > room:
            break
        shown.append(line)
        room -= len(line) + 1
    # the header, "… and N more rotations", the tail's sections and the zone's context
    sections = MAX_BLOCKS - 3 - len(ends)
    listed, placed = line_sections(shown, per_section=10, max_sections=sections)
    blocks = [header("On call"), *listed]
    if placed < len(rotations):
        blocks.append(context(more(len(rotations) - placed)))
    lines = [line for group in tail for line in group]
    text = fit_text([f"*On call* ({tz.key})"], rotations, more=more, tail=lines)
    return Reply(text=text, blocks=[*blocks, *ends, context(tz.key)])


def _quiet_line(quiet: QuietHours, tz: ZoneInfo, now: float) -> str:
    """``Quiet hours 22:00-07:00 (a P1 pages nobody in them, a P0 does): now, until 07:00``."""
    zone = f" {quiet.timezone}" if quiet.timezone else ""
    line = f"Quiet hours {hours_text(quiet)}{zone} (a P1 pages nobody in them, a P0 does)"
    until = quiet_until(quiet, tz, now)
    if until is not None:
        line += f": now, until {until_text(until, tz, now)}"
    return line


def _step(notify: str, policy: Policy) -> str:
    """A step as the chain line shows it: ``webhook pager (events.example)`` for a webhook
    (its host only: a url's path may hold a receiver's key), else as the policy writes it."""
    hook = policy.webhooks.get(notify[8:]) if notify.startswith("webhook:") else None
    if hook is None:
        return notify
    return f"webhook {notify[8:]} ({urlsplit(hook.url).hostname})"


def _booked_lines(overrides: list[Override], tz: ZoneInfo, now: float) -> list[str]:
    """``Booked: <@U1> for primary Sat 05 Dec 09:00 → 21:00, by <@U2>``, soonest first."""
    booked = sorted((o for o in overrides if o.booked(now)), key=lambda o: o.starts_at)
    lines = [
        f"Booked: <@{o.user}> for {o.rotation} {day_time(o.starts_at, tz, now)}"
        f" → {clock_time(o.ends_at, tz, now=o.starts_at)}"
        + (f", by <@{o.created_by}>" if o.created_by else "")
        for o in booked[:MAX_BOOKED]
    ]
    if len(booked) > MAX_BOOKED:
        lines.append(f"… and {len(booked) - MAX_BOOKED} more booked")
    return lines


def _left_lines(users: list[str], skipped: tuple[str, ...], gone: frozenset[str]) -> list[str]:
    """A warning per user of a rotation (or override) who left the workspace."""
    lines = []
    for user in dict.fromkeys([*skipped, *users]):
        if user in gone:
            fix = "remove them from the policy" if user in users else "`oncall override clear`"
            lines.append(f"⚠️ <@{user}> {LEFT}: skipped; {fix}")
    return lines


def _off_hours(who: OnCallNow, zone: ZoneInfo, now: float) -> str:
    """`` · off hours until 08:00 (Europe/Berlin)``: the chain passes the rotation over
    until then (nothing while it is on hours, or an override holds)."""
    if who.resumes_at is None:
        return ""
    return f" · off hours until {clock_time(who.resumes_at, zone, now=now)} ({zone.key})"


def _mention(user: str | None) -> str:
    return f"<@{user}>" if user is not None else f"nobody (everyone in it {LEFT})"
