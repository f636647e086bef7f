"""Quiet hours (``alerts.quiet_hours``): a P1 falling due at night pages nobody until they end.

The on-call person is woken for a P0, and only for a P0: a P1 (a budget spent, a hold
hanging, an agent's failures when no money burns) waits for the morning, the way
PagerDuty's low-urgency incidents wait for support hours. Inside the quiet hours a P1 is
posted as ever; each step of its chain that falls due is put off to the end of the quiet
hours, and then taken if nobody has acknowledged it (its message shows the step and the
new time). The alert's thread says so once per night, and an audit row
(``alert.quiet_hours``, by ``nightshift``) tells its story. *Escalate now* (and
``/agent escalate``) pages at once: a person asked.

Example:
    >>> from guards.config_hours import QuietHours
    >>> quiet = QuietHours.model_validate("22:00-07:00")
    >>> until = quiet_until(quiet, ZoneInfo("UTC"), 1_767_657_600.0)  # Tue 6 Jan 2026, 00:00
    >>> datetime.fromtimestamp(until, ZoneInfo("UTC")).strftime("%a %H:%M")
    'Tue 07:00'
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.alerts.messages import OPEN_ALERTS
from bot.alerts.model import Alert
from bot.alerts.oncall import spans
from bot.alerts.render_time import wall_time
from bot.outbox import enqueue_thread_reply
from guards.config_hours import QuietHours
from guards.events import NIGHTSHIFT
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.paging import AlertPaging

__all__ = ["QUIET_UNTIL", "due_in_quiet", "mark", "put_off", "quiet_until", "recheck", "until_text"]

QUIET_UNTIL = "quiet_until"  # an alert's fact: the end of the quiet hours it was told of


def quiet_until(quiet: QuietHours | None, tz: ZoneInfo, now: float) -> float | None:
    """The end of the quiet hours ``now`` is in (None: none set, or not quiet now),
    read in the quiet hours' own ``timezone``, else ``tz`` (the policy's)."""
    if quiet is None:
        return None
    zone = ZoneInfo(quiet.timezone) if quiet.timezone else tz
    return next((end for start, end in spans(quiet, zone, now) if start <= now < end), None)


def until_text(until: float, tz: ZoneInfo, now: float) -> str:
    """The end of quiet hours as a person reads it (in ``tz``, the policy's): ``07:00``,
    with the day when it is a day or more away (``Mon 00:00``: a quiet weekend), and the
    zone's abbreviation when the clocks show that time twice (``01:30 EST``: the second
    01:30, the night they go back, not the one that may be past already)."""
    at = datetime.fromtimestamp(until, tz)
    return wall_time(at, "%a %H:%M" if until - now >= 86400 else "%H:%M")


def due_in_quiet(paging: AlertPaging, tier: str, due: float) -> float:
    """When a step due at ``due`` is taken: then, or for a P1 due in the quiet hours,
    at their end (what a reply promising that step must say: ``/agent unack``)."""
    if tier != "P1":
        return due
    return quiet_until(paging.policy.alerts.quiet_hours, paging.tz, due) or due


def put_off(paging: AlertPaging, tx: Tx, alert: Alert, now: float) -> bool:
    """Put off ``alert``'s due step to the end of the quiet hours, when it is a P1 and
    ``now`` is in them; returns whether it was put off."""
    if alert.tier != "P1":
        return False
    until = quiet_until(paging.policy.alerts.quiet_hours, paging.tz, now)
    if until is None:
        return False
    told = alert.facts.get(QUIET_UNTIL) == until  # said once for these quiet hours
    mark(tx, alert, until)
    if not told:  # the alert's story (`/agent alert`) tells it from this row
        tx.audit(
            actor=NIGHTSHIFT,
            action="alert.quiet_hours",
            target=f"#{alert.id} {alert.fingerprint}",
            after=f"pages at {until_text(until, paging.tz, now)}",
            detail="a P1 waits for the end of alerts.quiet_hours",
        )
    if not told and alert.posted_at is not None and alert.channel is not None:
        enqueue_thread_reply(
            tx,
            parent=alert.post_ref,
            text=(
                f"🌙 Quiet hours: a P1 pages nobody before {until_text(until, paging.tz, now)}"
                " (`alerts.quiet_hours`); it pages then if nobody has acknowledged it."
                " *Escalate now* pages at once."
            ),
            channel=alert.channel,
        )
    paging.touch(tx, paging.get(tx, alert.id), now)
    return True


def recheck(paging: AlertPaging, tx: Tx, now: float) -> int:
    """The P1s put off to the end of quiet hours, looked at again under the policy as it
    is now (a reload shortened, moved or removed the quiet hours; the clock stepped): each
    waits for the end of the quiet hours it is in now, or, out of them, pages at once.
    Returns how many moved."""
    moved = 0
    rows = tx.all(
        f"{OPEN_ALERTS} AND esc_at IS NOT NULL AND acked_at IS NULL AND silence_id IS NULL"
        f" AND esc_at = json_extract(facts, '$.{QUIET_UNTIL}')"
    )
    for row in rows:
        alert = Alert.from_row(row)
        until = quiet_until(paging.policy.alerts.quiet_hours, paging.tz, now)
        if alert.tier == "P1" and until == alert.esc_at:
            continue
        if alert.tier == "P1" and until is not None:
            mark(tx, alert, until)  # (said already tonight: the message shows the new time)
        else:
            tx.execute("UPDATE alerts SET esc_at = ? WHERE id = ?", (now, alert.id))
        paging.touch(tx, paging.get(tx, alert.id), now)
        moved += 1
    return moved


def mark(tx: Tx, alert: Alert, until: float) -> None:
    """The alert's step waits until ``until``, the end of the quiet hours, marked so."""
    facts = {**alert.facts, QUIET_UNTIL: until}
    tx.execute(
        "UPDATE alerts SET esc_at = ?, facts = ? WHERE id = ?",
        (until, json.dumps(facts), alert.id),
    )
