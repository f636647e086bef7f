"""``/agent oncall override``: reading and booking an override (a helper of
:mod:`bot.commands_oncall`, not a command module of its own).

``override @user <duration> [rotation] [from <when>]`` puts someone on call, now or from
a later time in the policy's zone; ``override clear [rotation]`` ends the one on now and
cancels those booked.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.alerts import operations as ops
from bot.alerts.oncall import Override, on_call, rotation_named
from bot.alerts.render_time import clock_time
from bot.alerts.when import MAX_AHEAD_DAYS, START_GRACE, WhenError, now_note, start_at
from bot.blocks import echo
from bot.chat_words import join_duration
from bot.commands import Context, Reply, UsageError
from bot.escape import member_or_name, mentioned
from bot.people import LEFT, People
from bot.responders import duration_arg, engine_of, local_time, require_responder
from guards.config import Policy, Rotation
from guards.store import Tx

__all__ = ["day_time", "override", "starts_from"]

OVERRIDE_CHECK_SECONDS = 1.0  # the override waits no longer for Slack's users.info
_NAMED = 5  # the overrides a warning names before "and N more"
_FROM = (
    "`from 09:00`, `from today 09:00`, `from tomorrow 09:00`, `from sat 09:00` or"
    " `from 2026-12-05 09:00`"
)


def _user(text: str) -> str:
    user = mentioned(text)
    if user is None:
        raise UsageError(
            f"`{echo(text)}` is not a user: pick them from the list Slack shows as you type @"
            " (a name typed in full is not a mention)"
        )
    return user


async def override(ctx: Context, args: list[str]) -> Reply:
    """``oncall override @user <duration> [rotation] [from <when>]`` and ``override clear
    [rotation]``: book someone on call, now or ahead, or end the overrides."""
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
    starts_at, taken_as_now = None, None
    if "from" in (words := [a.lower() for a in args[2:4]]):
        at = 2 + words.index("from")
        when = args[at + 1 :]
        if len(when) > 1 and rotation_named(ctx.ns.policy.oncall, when[-1]) is not None:
            raise UsageError(  # (recheck28 L5: it said "`primary` is not a time")
                f"the rotation goes before `from`: `oncall override {args[0]} {args[1]}"
                f" {when[-1]} from {' '.join(when[:-1])}`"
            )
        args, starts_at = args[:at], starts_from(when, engine.tz, now)
        if (taken_as_now := now_note(when, starts_at, now)) is not None:
            starts_at = None  # typed within the last minute: now, as one without `from`
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

    def book(tx: Tx) -> tuple[Override, list[Override] | None]:
        at = tx.clock.now()
        earlier = engine.overrides(tx, at)
        same = _booked(
            earlier,
            _rotation_of(policy, rotation),
            user,
            seconds=seconds,
            starts_at=starts_at,
            now=at,
            tz=engine.tz,
        )
        if same is not None:  # a command typed again: nothing to book (review27 R2 L4)
            return same, None
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
    if overlapped is None:
        return Reply.text_only(_already(made, tz=engine.tz, now=now, ctx=ctx))
    if made.starts_at > made.created_at:
        text = (
            f"<@{user}> is on call for {rotation} from {day_time(made.starts_at, engine.tz, now)}"
            f" until {clock_time(made.ends_at, engine.tz, now=made.starts_at)} ({engine.tz.key}),"
            f" booked by <@{ctx.actor}>."
        )
    else:
        text = (
            f"<@{user}> is on call for {rotation} until {local_time(made.ends_at, ctx)}"
            f" (set by <@{ctx.actor}>)."
        )
        if taken_as_now:
            text += f" {taken_as_now}"
    if overlapped:  # the one booked last holds while both do (recheck28 L4)
        text += "\n" + _displaced(overlapped, rotation=rotation, tz=engine.tz, now=now)
    return Reply.text_only(text, ephemeral=False)


def _booked(
    earlier: list[Override],
    rotation: Rotation,
    user: str,
    *,
    seconds: int,
    starts_at: float | None,
    now: float,
    tz: ZoneInfo,
) -> Override | None:
    """The override asked for, when it is booked already and holds: the same person,
    rotation and length, from the same start (one from now is the same as one that
    started within the last minute, :data:`~bot.alerts.when.START_GRACE`: the command
    typed twice), and no override booked after it takes any of its time (recheck27 Ka
    M1: U21, then U22, then U21 again was told "already" while U22 stayed on call)."""
    name = rotation.name.lower()
    for o in earlier:
        if o.rotation.lower() != name or o.user != user:
            continue
        if round(o.ends_at - o.starts_at) != seconds:
            continue
        if starts_at is None and not o.starts_at <= now <= o.starts_at + START_GRACE:
            continue
        if starts_at is not None and o.starts_at != max(starts_at, now):
            continue
        if _holds(o, earlier, rotation=rotation, tz=tz, now=now):
            return o
    return None


def _holds(
    o: Override, earlier: list[Override], *, rotation: Rotation, tz: ZoneInfo, now: float
) -> bool:
    """Whether ``o`` is the override on call from ``now`` (or its start) to its end, by
    :func:`~bot.alerts.oncall.on_call`'s own rule (the one booked last holds): who holds
    changes only where another override starts, so those are the instants asked."""
    name = rotation.name.lower()
    at = max(o.starts_at, now)
    starts = {p.starts_at for p in earlier if p.rotation.lower() == name}
    instants = [at, *sorted(t for t in starts if at < t < o.ends_at)]
    return all(on_call(rotation, tz, t, earlier).override is o for t in instants)


def _already(o: Override, *, tz: ZoneInfo, now: float, ctx: Context) -> str:
    """What the same override booked again is told, only to whoever typed it: nothing
    changed, no second copy, no audit row, as `budget set` to the limit set already."""
    by = member_or_name(o.created_by or "?")
    if o.starts_at > now:
        return (
            f"<@{o.user}> is on call for {o.rotation} from {day_time(o.starts_at, tz, now)}"
            f" until {_until(o, tz)} ({tz.key}) already, booked by {by}: nothing changed."
        )
    return (
        f"<@{o.user}> is on call for {o.rotation} until {local_time(o.ends_at, ctx)} already"
        f" (set by {by}): nothing changed."
    )


def _displaced(overlapped: list[Override], *, rotation: str, tz: ZoneInfo, now: float) -> str:
    """The one warning naming each distinct override the new one takes the place of:
    one booked twice (a command retried) is named once (audit27 B1 L2, B2 L2).

    >>> from zoneinfo import ZoneInfo
    >>> o = Override(rotation="primary", user="U09", starts_at=0.0, ends_at=3600.0)
    >>> _displaced([o, o], rotation="primary", tz=ZoneInfo("UTC"), now=0.0)[:75]
    "⚠️ It takes the place of <@U09>'s override of primary (00:00 today → 01:00)"
    """
    named = list(
        dict.fromkeys(
            (f"<@{o.user}>'s", f"({day_time(o.starts_at, tz, now)} → {_until(o, tz)})")
            for o in overlapped
        )
    )
    wins = f"the one booked last wins (`/agent oncall override clear {rotation}` ends them all)."
    if len(named) == 1:
        [(whose, times)] = named
        return (
            f"⚠️ It takes the place of {whose} override of {rotation} {times}"
            f" while both hold: {wins}"
        )
    said = [f"{whose} {times}" for whose, times in named[:_NAMED]]
    if len(named) > _NAMED:
        said.append(f"{len(named) - _NAMED} more")
    listed = ", ".join(said[:-1]) + " and " + said[-1]
    return (
        f"⚠️ It takes the place of {len(named)} overrides of {rotation} while they overlap"
        f" it: {listed}; {wins}"
    )


def _until(o: Override, tz: ZoneInfo) -> str:
    return clock_time(o.ends_at, tz, now=o.starts_at)


def _overlap(o: Override, made: Override) -> bool:
    """Whether ``o`` is another override of ``made``'s rotation over some of its time."""
    return (
        o.rotation.lower() == made.rotation.lower()
        and o.starts_at < made.ends_at
        and made.starts_at < o.ends_at
    )


def starts_from(
    words: list[str],
    tz: ZoneInfo,
    now: float,
    *,
    thing: str = "an override",
    ahead_days: int = MAX_AHEAD_DAYS,
) -> float:
    """The start ``from <when>`` names, or a UsageError saying what it takes. One within
    the last minute (:data:`~bot.alerts.when.START_GRACE`: ``from 23:30`` typed at
    23:30:20) is returned as it is, not later than ``now``: the caller starts it now.

    ``thing`` is what starts (the refusals name it), ``ahead_days`` how far ahead it may
    start, at most :data:`~bot.alerts.when.MAX_AHEAD_DAYS` (a silence: 30).

    Example:
        >>> # starts_from(["sat", "02:00"], tz, now, thing="a silence", ahead_days=30)
    """
    forms = f"write {_FROM}, in {tz.key} time"
    if not words:
        raise UsageError(f"`from` needs a start: {forms}")
    far = f"{thing} starts at most {ahead_days} days ahead"
    try:
        at = start_at(words, tz, now, grace=START_GRACE)
    except WhenError as exc:
        why = far if exc.typed is None else exc.why.replace("an override", thing)
        said = why if exc.typed is None else f"`{echo(exc.typed)}` {why}"
        raise UsageError(f"{said}; {forms}. Nothing was booked.") from None
    if ahead_days < MAX_AHEAD_DAYS and at - now > ahead_days * 86_400:
        raise UsageError(f"{far}; {forms}. Nothing was booked.")
    return at


def day_time(ts: float, tz: ZoneInfo, now: float) -> str:
    """``03:30 today``, or ``Sat 05 Dec 09:00``: a start is never read as the wrong day."""
    said = clock_time(ts, tz, now=now)
    same_day = datetime.fromtimestamp(ts, tz).date() == datetime.fromtimestamp(now, tz).date()
    return f"{said} today" if same_day else said


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
    return _rotation_of(policy, name).name


def _rotation_of(policy: Policy, name: str | None) -> Rotation:
    if name is None:
        return policy.oncall.rotations[0]
    rotation = rotation_named(policy.oncall, name)
    if rotation is None:
        known = ", ".join(r.name for r in policy.oncall.rotations)
        raise UsageError(f"no rotation {name[:40]!r}; rotations: {known}")
    return rotation
