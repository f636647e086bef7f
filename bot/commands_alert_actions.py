"""``/agent resolve``, ``escalate`` and ``unack``: the alert buttons as commands, and
taking back an acknowledgement.

``resolve <id> [reason…]`` and ``escalate <id>`` run the Resolve and Escalate now
buttons' own code (:func:`~bot.commands_alert_buttons.resolve_as`,
:func:`~bot.commands_alert_buttons.escalate_as`): the same people may, the same audit
rows, the same redraw of the alert's messages, the same refusals. They are the way to
act on an alert whose message Slack refused with its buttons (sent as its text alone).

``unack <id>`` undoes an acknowledgement (a pocket tap): the alert is open again, as if
never acknowledged, and its escalation runs again from now: the step it was waiting for
comes after the chain's wait before that step, counted from now, not at once
(:func:`unack`). Only the person who acknowledged it, or an admin, may; it is audited
``alert.unack``.

Example:
    >>> # /agent unack 12
    >>> # -> "↩️ you took back your acknowledgement of #12 (made at 03:17). Its escalation
    >>> #    runs again from now: step 2 of 3 pages <@U04> at 03:25 (in 5m), …"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.alerts import operations as ops
from bot.alerts.engine import AlertEngine
from bot.alerts.escalate_now import refuse_resolved
from bot.alerts.model import Alert
from bot.alerts.quiet import due_in_quiet, mark
from bot.alerts.render_time import clock_time, duration
from bot.blocks import echo
from bot.chat_words import typed
from bot.commands import Context, NotAdmin, Reply, UsageError, subcommand
from bot.commands_alert_buttons import escalate_as, resolve_as, resolved_reply
from bot.escape import mask_secrets, member_or_name
from bot.responders import engine_of, local_time, require_responder, resolved_words
from guards.errors import Conflict
from guards.store import Tx

__all__ = ["Unacked", "unack"]

MAX_REASON = 200  # characters of a resolve's reason shown on the alert


def _alert_id(text: str) -> int:
    number = ops.alert_number(text)
    if number is None:
        raise UsageError(
            f"`{echo(text)}` is not an alert id (a whole number: `12` or `#12`);"
            " `/agent alerts` lists the open ones"
        )
    return number


@subcommand("resolve", usage="resolve <id> [reason…]")
async def cmd_resolve(ctx: Context, args: list[str]) -> Reply:
    """Resolves an alert (the Resolve button).

    A reason, if given, is shown on the alert's messages.
    """
    if not args:
        raise UsageError()
    alert_id = _alert_id(args[0])
    await require_responder(ctx, "resolve alerts", alert_id=alert_id)
    said = mask_secrets(typed(args[1:]).strip())[:MAX_REASON]  # commas and all
    reason = said or None
    alert, silent, new = await resolve_as(ctx, alert_id, reason=reason)
    if not new:
        return Reply.text_only(
            f"#{alert_id} was already {resolved_words(ctx, alert)}; nothing changed."
        )
    return Reply.text_only(resolved_reply(ctx, alert, silent))


@subcommand("escalate", usage="escalate <id>")
async def cmd_escalate(ctx: Context, args: list[str]) -> Reply:
    """Pages an alert's next step now (Escalate now)."""
    if len(args) != 1:
        raise UsageError()
    alert_id = _alert_id(args[0])
    await require_responder(ctx, "escalate alerts", alert_id=alert_id)
    return Reply.text_only(await escalate_as(ctx, alert_id))


@subcommand("unack", usage="unack <id>")
async def cmd_unack(ctx: Context, args: list[str]) -> Reply:
    """Undoes an ack: the alert escalates again.

    Only who acknowledged it, or an admin, may.
    """
    if len(args) != 1:
        raise UsageError()
    alert_id = _alert_id(args[0])
    engine = engine_of(ctx)
    alert = await ctx.ns.store.read(lambda tx: engine.get(tx, alert_id))
    admin = False
    if alert.acked_by != ctx.actor:
        await require_responder(ctx, "take back acknowledgements", alert_id=alert_id)
        if alert.acked_at is not None and alert.resolved_at is None:
            admin = await _admin_for(ctx, alert)
    done = await ctx.ns.store.write(
        lambda tx: unack(engine, tx, alert_id=alert_id, actor=ctx.actor, admin=admin)
    )
    return Reply.text_only(_unacked_words(ctx, engine, done))


async def _admin_for(ctx: Context, alert: Alert) -> bool:
    """Pass admins (True) for someone else's acknowledgement; refuse anyone else."""
    what = f"take back the acknowledgement of #{alert.id}"
    try:
        await ctx.require_admin(what, not_a="not who acknowledged it, nor an admin")
    except NotAdmin:
        who = member_or_name(alert.acked_by or "?")  # a token's too (token:tok_…)
        raise NotAdmin(what, who=f"{who} (who acknowledged it) and admins") from None
    return True


@dataclass(frozen=True, slots=True)
class Unacked:
    """An acknowledgement taken back: the alert now, who had acknowledged it and when,
    and the step its escalation waits for (``due`` None: nothing pages by itself)."""

    alert: Alert
    acked_by: str
    acked_at: float
    due: float | None
    target: str | None  # whom that step pages now (None: the channel, or nobody)


def unack(engine: AlertEngine, tx: Tx, *, alert_id: int, actor: str, admin: bool) -> Unacked:
    """Take back the acknowledgement of ``alert_id``: it is open as if never acknowledged
    (no ``acked_at``, no time to acknowledge), its messages show it so (Acknowledge is
    back), and the step its chain was at falls due after the chain's wait before that
    step, from now. ``actor`` must be who acknowledged it unless ``admin``.

    Example:
        >>> # done = unack(engine, tx, alert_id=12, actor="U01", admin=False)

    Raises:
        NotFound: no such alert.
        Conflict: it is resolved, not acknowledged, or acknowledged by someone else
            (and ``actor`` is no admin); nothing was written.
    """
    now = tx.clock.now()
    alert = engine.get(tx, alert_id)
    name = f"#{alert_id}"
    refuse_resolved(engine, alert, now, then="nothing changed")
    if alert.acked_at is None or alert.acked_by is None:
        raise Conflict(f"{name} is not acknowledged; nothing changed.", state="open")
    if alert.acked_by != actor and not admin:  # acknowledged again since it was checked
        at = clock_time(alert.acked_at, engine.tz, now=now)
        raise Conflict(
            f"{name} was acknowledged by {member_or_name(alert.acked_by)} at {at} meanwhile;"
            " nothing changed (only they or an admin can take it back).",
            state="acked",
        )
    # acknowledged while silenced, its chain never started (the silence's end starts only
    # unacknowledged ones): it starts now, as a new alert's does (review29 H2)
    never = (
        alert.esc_step is None
        and alert.silence_id is None
        and tx.one("SELECT 1 FROM escalations WHERE alert_id = ? LIMIT 1", (alert_id,)) is None
    )
    due = None if never else _due(engine, alert, now)
    tx.execute(
        "UPDATE alerts SET acked_at = NULL, acked_by = NULL, esc_at = ? WHERE id = ?",
        (due, alert_id),
    )
    step = alert.esc_step
    if never:
        started = engine.start_chain(tx, alert_id, now)
        step, due = started.esc_step, started.esc_at
    if due is not None and (later := due_in_quiet(engine, alert.tier, due)) != due:
        mark(tx, engine.get(tx, alert_id), later)  # a P1 due in the quiet hours: their end
        due = later
    target = None
    if due is not None and step is not None:
        _, target = engine.step_target(tx, step, now)
    if due is not None and step is not None:
        detail = f"{engine.chain.describe(step)} due at {_iso(due, engine)}"
    else:
        detail = "no escalation step to take"
    tx.audit(
        actor=actor,
        action="alert.unack",
        target=f"{name} {alert.fingerprint}",
        before=f"acknowledged by {alert.acked_by} at {_iso(alert.acked_at, engine)}",
        detail=detail,
    )
    now_alert = engine.get(tx, alert_id)
    engine.update_pages(tx, now_alert, now)  # its pages show Acknowledge again
    engine.touch(tx, now_alert, now, urgent=True)
    return Unacked(now_alert, alert.acked_by, alert.acked_at, due, target)


def _due(engine: AlertEngine, alert: Alert, now: float) -> float | None:
    """When the step the alert waits for falls due, counted from now: after the chain's
    wait before that step (between it and the step before; a P1's wait to enter the chain;
    a round's repeat wait). None: nothing pages by itself (silenced, P2, no step left)."""
    chain = engine.chain
    if alert.silence_id is not None or alert.esc_step is None or not chain.steps:
        return None
    entry = chain.entry(alert.tier)
    if entry is None:
        return None
    rnd, idx = divmod(alert.esc_step, len(chain.steps))
    if idx <= entry:
        if rnd:
            wait = chain.repeat_after
        elif alert.tier == "P1":
            wait = engine.policy.alerts.p1_escalate_after
        else:
            wait = chain.steps[idx].after
    else:
        wait = chain.steps[idx].after - chain.steps[idx - 1].after
    return now + max(0, wait)


def _iso(ts: float, engine: AlertEngine) -> str:
    """An audit row's time, as :mod:`bot.alerts.operations` writes them."""
    return datetime.fromtimestamp(ts, engine.tz).isoformat(timespec="seconds")


def _unacked_words(ctx: Context, engine: AlertEngine, done: Unacked) -> str:
    alert = done.alert
    whose = "your" if done.acked_by == ctx.actor else f"{member_or_name(done.acked_by)}'s"
    made = local_time(done.acked_at, ctx)
    head = f"↩️ you took back {whose} acknowledgement of #{alert.id} (made at {made})."
    if alert.silence_id is not None:
        return (
            f"{head} It is silenced, so nobody is paged; its escalation starts again"
            " when the silence ends."
        )
    if done.due is None or alert.esc_step is None:
        if alert.tier == "P2":
            return f"{head} It is P2: it is collected for the digest, nobody is paged."
        return (
            f"{head} Its escalation chain has no step left to take, so nobody is paged by itself."
        )
    step = engine.chain.step(alert.esc_step)
    if step.notify == "channel":
        pages = "notifies the channel"
    elif done.target is not None:
        pages = f"pages <@{done.target}>"
    elif step.notify.startswith("webhook:"):
        pages = f"pages webhook {step.notify[8:]}"
    else:
        pages = "pages nobody (everyone it names left the workspace)"
    describe = engine.chain.describe(alert.esc_step)
    wait = done.due - ctx.ns.clock.now()
    when = "at once" if wait <= 0 else f"at {local_time(done.due, ctx)} (in {duration(wait)})"
    return (
        f"{head} Its escalation runs again from now: {describe} {pages} {when},"
        " unless someone acknowledges it first."
    )
