"""Escalate now, by hand: the next step of an alert's chain at once, unless a click is stale.

The button carries the step it was rendered at, so a double click, or a click on a copy
the timer or someone else has overtaken, pages nobody and tells the clicker what happened.
:mod:`bot.alerts.operations` re-exports :func:`escalate_now`.

Example:
    >>> # who = await store.write(lambda tx: escalate_now(engine, tx, alert_id=20, actor="U1"))
"""

from __future__ import annotations

import dataclasses

from bot.alerts.engine import AlertEngine
from bot.alerts.model import Alert
from bot.alerts.render_time import clock_time
from bot.escape import member_or_name
from guards.errors import Conflict
from guards.store import Tx

__all__ = ["REPEAT_CLICK_SECONDS", "escalate_now", "refuse_resolved"]

REPEAT_CLICK_SECONDS = 60  # a stepless Escalate now click this soon after one by hand repeats it


def refuse_resolved(engine: AlertEngine, alert: Alert, now: float, *, then: str) -> None:
    """A Conflict naming who resolved ``alert`` and when, if it is resolved: ``then`` says
    what did not happen ("nobody was paged", "nothing changed")."""
    if alert.resolved_at is None:
        return
    by = f" by <@{alert.resolved_by}>" if alert.resolved_by else ""
    at = clock_time(alert.resolved_at, engine.tz, now=now)
    raise Conflict(f"#{alert.id} was already resolved{by} at {at}; {then}.", state="resolved")


def escalate_now(
    engine: AlertEngine, tx: Tx, *, alert_id: int, actor: str, at_step: int | None = None
) -> str:
    """Take the next step of the chain at once; returns who was notified (or ``channel``).

    ``at_step`` is the step the clicked Escalate now button was rendered at (its value
    ``"<id>:<step>"``): the click pages only while the alert is still at that step, so
    a double click, or a click on a copy the timer or someone else has overtaken, pages
    nobody. ``None`` (a button posted before values carried the step, or an alert's
    first post, rendered before its chain was armed) means the current step; such a
    click within ``REPEAT_CLICK_SECONDS`` of an escalation by hand is taken for the same
    click again. Only an escalation that happens is audited.

    Example:
        >>> # who = escalate_now(engine, tx, alert_id=20, actor="U1", at_step=1)  # "U04"

    Raises:
        Conflict: the alert is resolved, acknowledged, silenced, P2, through its chain,
            or no longer at ``at_step``; the message tells the clicker what happened,
            and nothing was written.
    """
    now = tx.clock.now()
    alert = engine.get(tx, alert_id)
    name = f"#{alert_id}"
    refuse_resolved(engine, alert, now, then="nobody was paged")
    if alert.acked_at is not None:
        at = clock_time(alert.acked_at, engine.tz, now=now)
        by = member_or_name(alert.acked_by or "?")  # a token's too (token:tok_…)
        raise Conflict(
            f"{name} was acknowledged by {by} at {at}, so its escalation"
            " stopped; nobody was paged.",
            state="acked",
        )
    if alert.silence_id is not None:
        raise Conflict(f"alert {name} is silenced; it does not page anyone", state="silenced")
    if not engine.chain.steps:
        raise Conflict("there is no escalation chain: add oncall.escalation to the policy")
    if alert.tier == "P2":
        raise Conflict(f"alert {name} is P2: it is collected for the digest, not paged")
    if at_step is not None and alert.esc_step != at_step:
        raise Conflict(_moved_on(engine, tx, alert, at_step, now), state="escalated")
    if alert.esc_step is None:
        entry = engine.chain.entry(alert.tier)
        if _last_escalation(tx, alert.id) is not None or entry is None:
            raise Conflict(
                f"alert {name} has been through its whole escalation chain; everyone in it"
                " was notified"
            )
        # never put on the chain (a conversation stopped by its own budget pages nobody
        # by itself): by hand it starts where its tier enters the chain
        alert = dataclasses.replace(alert, esc_step=entry)
    if at_step is None:
        last = _last_escalation(tx, alert.id, manual=True)
        if last is not None and now - last[1] < REPEAT_CLICK_SECONDS:
            raise Conflict(_already(engine, alert, last, now), state="escalated")
    alert = _past_the_clicker(engine, tx, alert, actor, now)
    who = engine.escalate(tx, alert, now, manual_by=actor)
    # after it: the row says who was notified (a user, the channel, or nobody)
    tx.audit(actor=actor, action="alert.escalate", target=f"{name} {alert.fingerprint}", after=who)
    return who


def _past_the_clicker(engine: AlertEngine, tx: Tx, alert: Alert, actor: str, now: float) -> Alert:
    """The alert at the first step from its next one that notifies someone other than the
    clicker (the person paged asking for help must not be paged again): steps that would
    page only the clicker are passed over. With none left, the click is refused with how to
    reach someone else (a chain of one step is the README's default)."""
    assert alert.esc_step is not None
    position: int | None = alert.esc_step
    entry = engine.chain.entry(alert.tier) or 0
    while position is not None:
        _, target = engine.step_target(tx, position, now)
        if target != actor:
            return dataclasses.replace(alert, esc_step=position)
        following = engine.chain.following(position, entry=entry)
        position = following[0] if following is not None else None
    step = engine.chain.step(alert.esc_step)
    later = engine.chain.following(alert.esc_step, entry=entry) is not None
    raise Conflict(
        f"Escalate now would page you again: the next step of #{alert.id}"
        f" ({engine.chain.describe(alert.esc_step)}) notifies {step.notify}, and that is you"
        f"{' (so does every step after it)' if later else ''}; nobody was paged. Hand it over with"
        " `/agent oncall override @someone 1h` (then Escalate now pages them), or add a step"
        " to `oncall.escalation` in the policy."
    )


# (step, at, manual_by) of an escalations row
_Escalation = tuple[int, float, str | None]


def _last_escalation(
    tx: Tx, alert_id: int, *, step: int | None = None, manual: bool = False
) -> _Escalation | None:
    """The latest step taken for the alert (at ``step``; by hand only with ``manual``)."""
    row = tx.one(
        "SELECT step, at, manual_by FROM escalations WHERE alert_id = ?"
        " AND (? IS NULL OR step = ?) AND (? = 0 OR manual_by IS NOT NULL)"
        " ORDER BY id DESC LIMIT 1",
        (alert_id, step, step, int(manual)),
    )
    return None if row is None else (int(row[0]), float(row[1]), row[2])


def _already(engine: AlertEngine, alert: Alert, taken: _Escalation, now: float) -> str:
    """``#20 was already escalated to step 2 of 3 by <@U1> at 03:17; nobody else was paged.``"""
    step, at, by = taken
    who = f"by <@{by}>" if by else "on its timer"
    when = clock_time(at, engine.tz, now=now)
    return (
        f"#{alert.id} was already escalated to {engine.chain.describe(step)} {who} at {when};"
        " nobody else was paged."
    )


def _moved_on(engine: AlertEngine, tx: Tx, alert: Alert, at_step: int, now: float) -> str:
    """Why a click on a button rendered at ``at_step`` pages nobody: the alert moved on."""
    taken = _last_escalation(tx, alert.id, step=at_step)
    if taken is not None:
        return _already(engine, alert, taken, now)
    if alert.esc_step is None:
        return f"#{alert.id} has been through its whole escalation chain; nobody else was paged."
    return (
        f"This button of #{alert.id} is out of date: the alert is at"
        f" {engine.chain.describe(alert.esc_step)} now. Nobody was paged."
    )
