"""Limits set in Slack for a while (``budget set <scope> <amount> <window> for 2h``) that
have ended: the sweeper deletes them, settles their budget alerts as a change of limit
does, and says so in the scope's alerts channel.

A raise at 3 a.m. "for tonight" must not become a standing allowance nobody remembers:
the ledger stops counting it at its end already (:class:`guards.budgets.Budgets`); this
is the record and the word of it.

Example:
    >>> # every SWEEP_SECONDS, inside store.write:
    >>> # end_limits(ns, tx)
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.alerts.render_time import clock_time
from bot.escape import member_or_name
from bot.outbox import enqueue
from bot.responders import engine_for
from guards.budgets import EndedLimit
from guards.money import usd_for
from guards.store import Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["end_limits", "ended_text"]


def end_limits(ns: Nightshift, tx: Tx) -> list[EndedLimit]:
    """End the limits whose time is up, each said once, in the same transaction."""
    ended = ns.ledger.end_limits(tx)
    if not ended:
        return ended
    engine = engine_for(ns)
    tz = ZoneInfo(ns.policy.timezone)
    now = tx.clock.now()
    for limit in ended:
        engine.budget_changed(tx, scope=limit.scope)  # its alerts resolve, or show the change
        text = ended_text(limit, tz=tz, now=now)
        args = {"channel": engine.channel_for(limit.scope), "text": text}
        enqueue(tx, method="chat.postMessage", args=args)
    return ended


def ended_text(limit: EndedLimit, *, tz: ZoneInfo, now: float) -> str:
    """``⏱️ The *day* budget of `acme/alice/bot` is back to the policy file's *$10.00*:
    the $50.00 set by <@U1> until 05:12 has ended.``"""
    usd = usd_for(limit.limit_micros, *([] if limit.policy is None else [limit.policy]))
    back = f"the policy file's *{usd(limit.policy)}*" if limit.policy is not None else "no limit"
    by = member_or_name(limit.set_by)
    return (
        f"⏱️ The *{limit.window}* budget of `{limit.scope}` is back to {back}: the"
        f" {usd(limit.limit_micros)} set by {by} until {clock_time(limit.until, tz, now=now)}"
        " has ended."
    )
