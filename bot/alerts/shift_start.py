"""The DM a person gets when their on-call shift starts (``oncall.notify_shift_start``).

Every :data:`TICK_SECONDS` the tick looks at who is on call for each rotation *now*: a
person whose shift (the rotation's hand-off to them) or override has not been told yet
gets one DM, through the outbox, and a row in ``oncall_shift_notices`` records it, so a
shift is told once, restarts included. The tick is short so that the README's "within
30 s" of the hand-off holds with the outbox's own delay (audit27 B2 L6: a 30 s tick
told 35-42 s after it); it looks on a read connection first and asks the writer only
when someone is to be told. Only the shifts on now are looked at: after a
downtime, a shift that began and ended meanwhile is not told (no burst of stale DMs);
one that began meanwhile and is still on is told at the first tick. A person back on
call when an override of their shift ends is not told again (their shift was), nor is one
a hand-off leaves on call (a rotation of one person); someone who put themselves on call
from now has just read the reply, and is not told either.

A rotation limited to ``hours``/``days`` tells its person when its hours begin (nothing
off hours), at most once a day per person and rotation (hours in two ranges are told at
the first), "until 20:00 (Europe/Berlin), the end of its hours"; its times are in the
rotation's own zone.

Example:
    >>> # await tick(ns)  # 1: one person told their shift started
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.alerts.messages import AlertMessages
from bot.alerts.oncall import OnCallNow, hours_window, next_change, on_call, rotation_zone
from bot.alerts.render_time import clock_time
from bot.outbox import enqueue
from bot.people import departed
from guards.store import Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["TICK_SECONDS", "ShiftStart", "shift_starts", "tick"]

TICK_SECONDS = 5  # (+ the outbox: about a second for a DM) well within the 30 s promised
KEEP_SECONDS = 86_400  # a row is kept this long after its shift's end, then pruned


@dataclass(frozen=True, slots=True)
class ShiftStart:
    """One person to tell that their shift of ``rotation`` started at ``starts_at``."""

    rotation: str
    user: str
    starts_at: float
    ends_at: float
    text: str
    silent: bool = False  # recorded, not sent: they set it themselves just now
    day_from: float | None = None  # hours: told already if told since then (once a day)
    scheduled: bool = False  # a hand-off of the schedule (not an override, not hours)


async def tick(ns: Nightshift) -> int:
    """Tell each person whose shift started and who was not told yet; returns how many."""
    policy = ns.policy
    if not policy.oncall.notify_shift_start or not policy.oncall.rotations:
        return 0
    alerts = ns.extras.get("alerts")
    if alerts is None:  # not started (yet)
        return 0
    engine: AlertMessages = alerts.engine
    if not await ns.store.read(lambda tx: _untold(tx, engine=engine)):
        return 0  # the usual tick: nobody to tell, the writer is not asked
    return await ns.store.write(lambda tx: _tell(tx, engine=engine))


def _untold(tx: Tx, *, engine: AlertMessages) -> bool:
    """Whether a shift on now has no notice yet (:func:`_tell` then decides whom to DM)."""
    starts = shift_starts(engine, tx, tx.clock.now())
    return any(not _told(tx, start, "starts_at = ?", start.starts_at) for start in starts)


def _tell(tx: Tx, *, engine: AlertMessages) -> int:
    now = tx.clock.now()
    tx.execute("DELETE FROM oncall_shift_notices WHERE ends_at < ?", (now - KEEP_SECONDS,))
    told = 0
    for start in shift_starts(engine, tx, now):
        cur = tx.execute(
            "INSERT OR IGNORE INTO oncall_shift_notices"
            " (rotation, user_id, starts_at, ends_at, said_at) VALUES (?, ?, ?, ?, ?)",
            (start.rotation, start.user, start.starts_at, start.ends_at, now),
        )
        if not cur.rowcount or start.silent or _told_today(tx, start) or _goes_on(tx, start):
            continue
        enqueue(
            tx,
            method="chat.postMessage",
            args={"channel": start.user, "text": start.text},
            channel=start.user,
            ref=f"shift:{start.rotation}:{start.user}:{start.starts_at:.0f}",
        )
        told += 1
    return told


def _told_today(tx: Tx, start: ShiftStart) -> bool:
    """Whether the person was told of this rotation earlier the same day (its hours)."""
    return start.day_from is not None and _told(
        tx, start, "starts_at >= ? AND starts_at < ?", start.day_from, start.starts_at
    )


def _goes_on(tx: Tx, start: ShiftStart) -> bool:
    """Whether a hand-off of the schedule leaves the person told on call (one person in
    the rotation, or the next user left): nothing changed for them (review29 L6)."""
    return start.scheduled and _told(
        tx, start, "starts_at < ? AND ends_at >= ?", start.starts_at, start.starts_at
    )


def _told(tx: Tx, start: ShiftStart, when: str, *args: float) -> bool:
    """Whether a notice of ``start``'s rotation to its person matches ``when``."""
    row = tx.one(
        f"SELECT 1 FROM oncall_shift_notices WHERE rotation = ? AND user_id = ? AND {when} LIMIT 1",
        (start.rotation, start.user, *args),
    )
    return row is not None


def shift_starts(engine: AlertMessages, tx: Tx, now: float) -> list[ShiftStart]:
    """Who is on call now for each rotation, as shifts to tell (told ones included: the
    caller's insert skips those)."""
    oncall, tz = engine.policy.oncall, engine.tz
    overrides = engine.overrides(tx, now)
    starts = []
    for rotation in oncall.rotations:
        gone = departed(oncall, [*rotation.users, *(o.user for o in overrides)])
        who = on_call(rotation, tz, now, overrides, gone)
        if who.user is None or who.resumes_at is not None:  # nobody, or off hours
            continue
        zone = rotation_zone(rotation, tz)
        change = next_change(rotation, tz, now, overrides, gone)
        until = change[0] if change is not None else who.until
        window = hours_window(rotation, tz, now) if who.override is None else None
        if window is not None and window[1] < until:
            until, change = window[1], None
        text = f"You are on call for {rotation.name} until {clock_time(until, zone, now=now)}"
        text += f" ({zone.key})"
        if change is not None and change[1] is not None:
            text += f", then <@{change[1]}>"
        elif window is not None and until == window[1]:
            text += ", the end of its hours"
        starts.append(_start(who, who.user, text, window, zone))
    return starts


def _start(
    who: OnCallNow,
    user: str,
    text: str,
    window: tuple[float, float] | None = None,
    zone: ZoneInfo | None = None,
) -> ShiftStart:
    override = who.override
    if override is None:
        shift = who.shift
        if window is None or zone is None:
            return ShiftStart(
                who.rotation, user, shift.starts_at, shift.ends_at, text + ".", scheduled=True
            )
        # told when its hours begin (or the shift, within them), once a day
        starts = max(window[0], shift.starts_at)
        local = datetime.fromtimestamp(starts, zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        ends = min(window[1], shift.ends_at)
        return ShiftStart(who.rotation, user, starts, ends, text + ".", day_from=midnight)
    by = f" (override by <@{override.created_by}>)" if override.created_by else " (override)"
    # put on call from now by themselves: the command's reply told them
    silent = override.created_by == user and override.starts_at == override.created_at
    return ShiftStart(
        who.rotation, user, override.starts_at, override.ends_at, text + by + ".", silent
    )
