"""The alert message buttons: Acknowledge, Silence 1h, Escalate now, Resolve.

Each button's ``value`` is the alert id; the clicker must be a responder of the
policy or an admin (:func:`bot.responders.require_responder`). The answer goes to
the clicker only: the engine re-renders every copy of the alert itself.
"""

from __future__ import annotations

from bot.alerts import operations as ops
from bot.commands import ActionResult, Context, action
from bot.responders import engine_of, local_time, require_responder
from guards.errors import InvalidInput

__all__: list[str] = []

SILENCE_BUTTON_SECONDS = 3600


def _button_id(value: str) -> int:
    if not value.isdigit():
        raise InvalidInput("value", "this button does not name an alert")
    return int(value)


@action("alert_ack")
async def act_ack(ctx: Context, value: str) -> ActionResult:
    alert_id = _button_id(value)
    await require_responder(ctx, "acknowledge alerts")
    engine = engine_of(ctx)
    alert, new = await ctx.ns.store.write(
        lambda tx: ops.ack(engine, tx, alert_id=alert_id, actor=ctx.actor)
    )
    if not new:
        return ActionResult(
            ephemeral=f"#{alert_id} was already acknowledged by <@{alert.acked_by}>."
        )
    # the engine has re-rendered every copy of the alert (channel and DMs) in the same
    # transaction; replacing the clicked copy's buttons here would undo that with stale text
    return ActionResult(
        ephemeral=f"👀 you acknowledged #{alert_id} at {local_time(alert.acked_at or 0, ctx)}"
    )


@action("alert_silence_1h")
async def act_silence(ctx: Context, value: str) -> ActionResult:
    alert_id = _button_id(value)
    await require_responder(ctx, "silence alerts")
    engine = engine_of(ctx)
    made = await ctx.ns.store.write(
        lambda tx: ops.silence(
            engine, tx, target=str(alert_id), seconds=SILENCE_BUTTON_SECONDS, actor=ctx.actor
        )
    )
    return ActionResult(
        ephemeral=f"🔕 you silenced #{alert_id} for 1h (until {local_time(made.expires_at, ctx)})"
    )


@action("alert_escalate")
async def act_escalate(ctx: Context, value: str) -> ActionResult:
    alert_id = _button_id(value)
    await require_responder(ctx, "escalate alerts")
    engine = engine_of(ctx)
    who = await ctx.ns.store.write(
        lambda tx: ops.escalate_now(engine, tx, alert_id=alert_id, actor=ctx.actor)
    )
    target = "the channel" if who == "channel" else f"<@{who}>"
    return ActionResult(ephemeral=f"Escalated #{alert_id}: notified {target}.")


@action("alert_resolve")
async def act_resolve(ctx: Context, value: str) -> ActionResult:
    alert_id = _button_id(value)
    await require_responder(ctx, "resolve alerts")
    engine = engine_of(ctx)
    alert = await ctx.ns.store.write(
        lambda tx: ops.resolve(engine, tx, alert_id=alert_id, actor=ctx.actor)
    )
    at = local_time(alert.resolved_at or 0, ctx)
    if alert.resolved_by:
        return ActionResult(ephemeral=f"✅ #{alert_id} resolved by <@{alert.resolved_by}> at {at}")
    return ActionResult(
        ephemeral=f"✅ #{alert_id} resolved at {at} ({alert.resolve_reason or 'condition cleared'})"
    )
