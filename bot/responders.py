"""Who may act on alerts, and what the alert commands and buttons share.

Who may act: admins, the responders of the policy (every user of a rotation and
every ``user:`` of the escalation chain), and whoever an ``oncall override`` puts on
call while it lasts, since the person woken up at 3:17 must be able to acknowledge
without being an admin. Anyone may look.

The handlers of :mod:`bot.commands_alerts`, :mod:`bot.commands_oncall` and
:mod:`bot.commands_alert_buttons` act through :func:`engine_of`, check
:func:`require_responder`, read durations with :func:`duration_arg` and show times
with :func:`local_time` (the policy's time zone).

Example:
    >>> # await require_responder(ctx, "acknowledge alerts")  # raises NotAdmin if not allowed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.alerts.engine import AlertEngine
from bot.alerts.model import Alert
from bot.alerts.render_time import clock_time
from bot.chat_words import duration_word
from bot.commands import Context, NotAdmin, UsageError
from guards.config import Policy, parse_duration

if TYPE_CHECKING:
    from bot.app import Nightshift

RESPONDERS = "admins and the people on call (rotations, escalation users, overrides)"

__all__ = [
    "duration_arg",
    "engine_for",
    "engine_of",
    "local_time",
    "require_responder",
    "resolved_words",
    "responders",
]


def engine_of(ctx: Context) -> AlertEngine:
    """The running engine, or one built from the policy (it holds no state of its own)."""
    return engine_for(ctx.ns)


def engine_for(ns: Nightshift) -> AlertEngine:
    """:func:`engine_of` for code that has the process, not a command's context."""
    component = ns.extras.get("alerts")
    if component is not None:
        engine: AlertEngine = component.engine
        return engine
    return AlertEngine(policy=ns.policy, ledger=ns.ledger)


def responders(policy: Policy) -> set[str]:
    users = {u for r in policy.oncall.rotations for u in r.users}
    users.update(s.notify[5:] for s in policy.oncall.escalation if s.notify.startswith("user:"))
    return users


async def require_responder(ctx: Context, what: str, *, alert_id: int | None = None) -> None:
    """Pass for responders, people on call by override and, for ``alert_id``, anyone it
    paged while it is open; anyone else must be an admin.

    Refusals are audited (by ``require_admin``).
    """
    if ctx.user_id in responders(ctx.ns.policy):
        return
    now = ctx.ns.clock.now()
    # on call by override; or paged for this alert, still open (and taken out of the
    # rotation since, by a reload: the person paged at 3 a.m. can still acknowledge it)
    on_call = await ctx.ns.store.fetch(
        "SELECT 1 FROM oncall_overrides WHERE user_id = ? AND starts_at <= ? AND ends_at > ?"
        " UNION ALL SELECT 1 FROM escalations e JOIN alerts a ON a.id = e.alert_id"
        " WHERE e.alert_id = ? AND e.target = ? AND a.resolved_at IS NULL LIMIT 1",
        (ctx.user_id, now, now, alert_id, ctx.user_id),
    )
    if on_call:
        return
    try:
        await ctx.require_admin(what, not_a="not an admin nor on call")
    except NotAdmin:
        raise NotAdmin(what, who=RESPONDERS) from None


def duration_arg(text: str) -> int:
    """A typed duration (``30m``, ``2h``, ``90min``) in seconds; a UsageError when it is not
    one, or when it is a bare number (``30``: minutes or seconds? it asks)."""
    text = duration_word(text)
    if text.isascii() and text.replace(".", "", 1).isdigit():
        raise UsageError(f"`{text}` what? Write `{text}m` for minutes (or `{text}h`, `{text}s`)")
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if seconds <= 0:
        raise UsageError("the duration must be more than zero, e.g. 30m or 2h")
    return seconds


def local_time(ts: float, ctx: Context) -> str:
    """``ts`` as a clock time in the policy's time zone (with the day when not today)."""
    return clock_time(ts, engine_of(ctx).tz, now=ctx.ns.clock.now())


def resolved_words(ctx: Context, alert: Alert) -> str:
    """``resolved at 12:19 (no new firing for 4s)``, or ``resolved by <@U1> at 12:19``."""
    by = f" by <@{alert.resolved_by}>" if alert.resolved_by else ""
    why = f" ({alert.resolve_reason})" if alert.resolve_reason else ""
    return f"resolved{by} at {local_time(alert.resolved_at or 0, ctx)}{why}"
