"""Catching up an escalation chain that fell behind, and saying what it skipped.

A step taken more than :data:`LATE` after it fell due, or whose next step is due too,
catches up: of the steps due by now only the latest (with any steps due at the same
instant) is taken, and the rest are skipped. Paging each of them, and every repeat
round, in the same second would give nobody time to acknowledge, and would use the
chain up.

The steps passed over are said where the other passed-over steps are (left the
workspace, off hours, the same person twice): one line in the alert's thread, and an
``alert.steps_skipped`` audit row that ``/agent alert <id>`` tells (audit27 B2 L1: they
were in an INFO log only, and a post-mortem could not tell the secondary was never
paged, nor why). Why says what happened: Nightshift was down when they fell due (a
downtime the heartbeat watchdog recorded: stopped, or its database refusing writes), or
it ran and could take none (no escalation chain for a while, a step failing).

Example:
    >>> # skipped = catch_up(chain, alert, now)
    >>> # if skipped.steps: say_skipped(tx, skipped, chain=chain, tz=tz, now=now)
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.alerts.escalation import Chain
from bot.alerts.model import Alert
from bot.alerts.render_time import clock_time
from bot.outbox import enqueue_thread_reply
from guards.events import NIGHTSHIFT
from guards.store import Tx
from guards.words import plural

__all__ = ["LATE", "SKIPPED_ACTION", "CaughtUp", "catch_up", "say_skipped"]

log = logging.getLogger(__name__)
#: seconds past its time after which a step catches up rather than replaying the chain
LATE = 60.0
SKIPPED_ACTION = "alert.steps_skipped"  # the audit row `/agent alert <id>` tells
_NAMED = 3  # skipped steps named before "and N more"
# a downtime the watchdog recorded (bot.alerts.heartbeats) while one of the steps fell due
_DOWN = "SELECT 1 FROM watchdog_downtime WHERE down_from <= ? AND down_until >= ? LIMIT 1"


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """The alert at the step to take now, and the steps passed over: (position, due)."""

    alert: Alert
    steps: tuple[tuple[int, float], ...] = ()


def catch_up(chain: Chain, alert: Alert, now: float) -> CaughtUp:
    """``alert`` at the latest step due by ``now``, when its own fell due long ago or the
    step after it is due too (Nightshift was down); with the steps it passes over."""
    position, due = alert.esc_step, alert.esc_at
    assert position is not None and due is not None
    entry = chain.entry(alert.tier) or 0
    following = chain.following(position, entry=entry)
    if now - due <= LATE and (following is None or due + following[1] > now):
        return CaughtUp(alert)  # on time, and the next step is not due yet
    start, start_due = position, due  # the first step of the latest instant due
    walked: list[tuple[int, float]] = []
    skipped: tuple[tuple[int, float], ...] = ()
    # at most every position of the chain (its steps, each round): the walk always ends
    # at the latest step due, never short of it (review27 R2 L3: a cap of 500 positions
    # took the 500th of 606 as the latest; the next, armed in the past, came in the same
    # second with a second note and page)
    for _ in range(len(chain.steps) * (chain.repeat + 1)):
        walked.append((position, due))
        following = chain.following(position, entry=entry)
        if following is None or due + following[1] > now:
            break
        position, due = following[0], due + following[1]
        if following[1] > 0:  # a later instant; steps 0 s apart are taken together
            start, start_due, skipped = position, due, tuple(walked)
    if not skipped:
        return CaughtUp(alert)
    return CaughtUp(dataclasses.replace(alert, esc_step=start, esc_at=start_due), skipped)


def say_skipped(tx: Tx, caught: CaughtUp, *, chain: Chain, tz: ZoneInfo, now: float) -> None:
    """The steps ``caught`` passed over, in the alert's thread (when it has one) and in an
    audit row its story tells: which, when they fell due, and why none was taken."""
    alert = caught.alert
    assert alert.esc_step is not None
    taken = chain.describe(alert.esc_step)
    why = _while(tx, caught.steps)
    what = f"{_steps(caught, chain=chain, tz=tz, now=now, mention=False)} fell due {why}"
    count = plural(len(caught.steps), "escalation step")
    log.info("alert #%d: %s fell due %s; skipped, taking %s", alert.id, count, why, taken)
    tx.audit(
        actor=NIGHTSHIFT,
        action=SKIPPED_ACTION,
        target=f"#{alert.id} {alert.fingerprint}",
        after=f"took {taken}",
        detail=f"{what}: skipped",
        # the tick's instant, the step's own: the story tells this row before the step
        # taken, which a later reading of a real clock would put after it (review27 R2 L1)
        at=now,
    )
    if alert.posted_at is not None and alert.channel is not None:
        said = _steps(caught, chain=chain, tz=tz, now=now, mention=True)
        enqueue_thread_reply(
            tx,
            parent=alert.post_ref,
            text=(
                f"⏭️ {said[0].upper()}{said[1:]} fell due {why}: skipped, and the latest step"
                f" due ({taken}) is taken now; paging every step due in the same second would"
                " give nobody time to acknowledge."
            ),
            channel=alert.channel,
        )


def _while(tx: Tx, steps: tuple[tuple[int, float], ...]) -> str:
    """Why the steps were not taken when they fell due: Nightshift was down then (the
    watchdog's downtimes: stopped, or its database refusing writes), or it ran and took
    none (review27 R2 L2: a reload that gave the alerts a chain back was said to end a
    time "Nightshift was not running", though it ran throughout)."""
    first, last = steps[0][1], steps[-1][1]
    if tx.one(_DOWN, (last, first)) is not None:
        return "while Nightshift was down (stopped, or its database refusing writes)"
    return (
        "while no step could be taken (Nightshift ran without an escalation chain, or"
        " taking a step failed)"
    )


def _steps(caught: CaughtUp, *, chain: Chain, tz: ZoneInfo, now: float, mention: bool) -> str:
    """``step 2 of 3 (secondary, due 00:05) and step 3 of 3 (<@U0ABC>, due 00:15)``: the
    first few steps passed over, then how many more."""
    named = [
        f"{chain.describe(p)} ({_whom(chain, p, mention=mention)}, due"
        f" {clock_time(due, tz, now=now)})"
        for p, due in caught.steps[:_NAMED]
    ]
    if len(caught.steps) > _NAMED:
        named.append(f"{len(caught.steps) - _NAMED} more")
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


def _whom(chain: Chain, position: int, *, mention: bool) -> str:
    """Whom a step names: a rotation, the channel, a webhook, or a person: in the thread
    their mention, as its other lines name people (review27 R2 L5: "user U0ABC" was
    unreadable); in the audit row their id, as audit rows name people (the story shows
    it as a mention)."""
    kind, _, name = chain.step(position).notify.partition(":")
    if kind == "channel":
        return "the channel"
    if kind == "webhook":
        return f"webhook {name}"
    if kind == "user":
        return f"<@{name}>" if mention else f"user {name}"
    return name or kind
