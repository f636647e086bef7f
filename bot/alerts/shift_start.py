"""The DM a person gets when their on-call shift starts (``oncall.notify_shift_start``).

Every :data:`TICK_SECONDS` the tick looks at who is on call for each rotation *now*: a
person whose shift (the rotation's hand-off to them) or override has not been told yet
gets one DM, through the outbox, and a row in ``oncall_shift_notices`` records it, so a
shift is told once, restarts included. Only the shifts on now are looked at: after a
downtime, a shift that began and ended meanwhile is not told (no burst of stale DMs);
one that began meanwhile and is still on is told at the first tick. A person back on
call when an override of their shift ends is not told again (their shift was); someone
who put themselves on call from now has just read the reply, and is not told either.

Example:
    >>> # await tick(ns)  # 1: one person told their shift started
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.alerts.messages import AlertMessages
from bot.alerts.oncall import OnCallNow, next_change, on_call
from bot.alerts.render_time import clock_time
from bot.outbox import enqueue
from bot.people import departed
from guards.store import Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["TICK_SECONDS", "ShiftStart", "shift_starts", "tick"]

TICK_SECONDS = 30
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


async def tick(ns: Nightshift) -> int:
    """Tell each person whose shift started and who was not told yet; returns how many."""
    policy = ns.policy
    if not policy.oncall.notify_shift_start or not policy.oncall.rotations:
        return 0
    alerts = ns.extras.get("alerts")
    if alerts is None:  # not started (yet)
        return 0
    engine: AlertMessages = alerts.engine
    return await ns.store.write(lambda tx: _tell(tx, engine=engine))


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
        if not cur.rowcount or start.silent:
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


def shift_starts(engine: AlertMessages, tx: Tx, now: float) -> list[ShiftStart]:
    """Who is on call now for each rotation, as shifts to tell (told ones included: the
    caller's insert skips those)."""
    oncall, tz = engine.policy.oncall, engine.tz
    overrides = engine.overrides(tx, now)
    starts = []
    for rotation in oncall.rotations:
        gone = departed(oncall, [*rotation.users, *(o.user for o in overrides)])
        who = on_call(rotation, tz, now, overrides, gone)
        if who.user is None:
            continue
        change = next_change(rotation, tz, now, overrides, gone)
        until = change[0] if change is not None else who.until
        text = f"You are on call for {rotation.name} until {clock_time(until, tz, now=now)}"
        text += f" ({tz.key})"
        if change is not None and change[1] is not None:
            text += f", then <@{change[1]}>"
        starts.append(_start(who, who.user, text))
    return starts


def _start(who: OnCallNow, user: str, text: str) -> ShiftStart:
    override = who.override
    if override is None:
        shift = who.shift
        return ShiftStart(who.rotation, user, shift.starts_at, shift.ends_at, text + ".")
    by = f" (override by <@{override.created_by}>)" if override.created_by else " (override)"
    # put on call from now by themselves: the command's reply told them
    silent = override.created_by == user and override.starts_at == override.created_at
    return ShiftStart(
        who.rotation, user, override.starts_at, override.ends_at, text + by + ".", silent
    )
