"""``/agent alerts``, ``ack`` and ``silence``: the open alerts, and acting on them.

Who may act on alerts: admins, and the responders of the policy (see
:mod:`bot.responders`). Anyone may look.

The on-call and status commands are in :mod:`bot.commands_oncall`, the alert
message buttons in :mod:`bot.commands_alert_buttons`; their handlers, and the
responder helpers, stay importable from here.
"""

from __future__ import annotations

from typing import Any

from bot.alerts import operations as ops
from bot.alerts.model import Alert
from bot.alerts.render import alert_line, duration
from bot.commands import Context, Reply, UsageError, context, header, section, subcommand
from bot.commands_alert_buttons import SILENCE_BUTTON_SECONDS as SILENCE_BUTTON_SECONDS
from bot.commands_alert_buttons import act_ack as act_ack
from bot.commands_alert_buttons import act_escalate as act_escalate
from bot.commands_alert_buttons import act_resolve as act_resolve
from bot.commands_alert_buttons import act_silence as act_silence
from bot.commands_alert_buttons import act_unsilence as act_unsilence
from bot.commands_alert_buttons import lifted_silences, still_silenced
from bot.commands_oncall import cmd_oncall as cmd_oncall
from bot.commands_oncall import cmd_status as cmd_status
from bot.responders import duration_arg, local_time
from bot.responders import engine_of as engine_of
from bot.responders import require_responder as require_responder
from bot.responders import responders as responders
from guards.store import Tx

__all__: list[str] = []

_TIER_NAMES = {"P0": "P0 — pages on-call", "P1": "P1 — posted", "P2": "P2 — for the digest"}
LIFT_WORDS = ("off", "lift", "end")


def _alert_id(text: str) -> int:
    number = ops.alert_number(text)
    if number is None:
        raise UsageError(f"{text[:40]!r} is not an alert id; `/agent alerts` lists them")
    return number


# -- alerts, ack, silence -------------------------------------------------------------


@subcommand("alerts", usage="alerts")
async def cmd_alerts(ctx: Context, args: list[str]) -> Reply:
    """Open alerts by tier, with their counts and age; silenced ones are marked."""
    if args:
        raise UsageError("`alerts` takes nothing more (act on one with `ack <id>` or `silence`)")
    engine = engine_of(ctx)
    now = ctx.ns.clock.now()

    def read(tx: Tx) -> tuple[list[Alert], list[Any]]:
        silences = tx.all(
            "SELECT id, fingerprint, scope, created_by, expires_at FROM silences"
            " WHERE ended_at IS NULL AND expires_at > ? ORDER BY expires_at",
            (now,),
        )
        return engine.open_alerts(tx), silences

    alerts, silences = await ctx.ns.store.write(read)
    if not alerts and not silences:
        return Reply.text_only("No open alerts. 🌙")
    blocks: list[dict[str, Any]] = [header(f"Open alerts: {len(alerts)}")]
    lines = [f"*Open alerts: {len(alerts)}*"]
    for tier in ("P0", "P1", "P2"):
        mine = [a for a in alerts if a.tier == tier]
        if not mine:
            continue
        body = "\n".join(alert_line(a, now=now) for a in mine[:25])
        if len(mine) > 25:
            body += f"\n… and {len(mine) - 25} more"
        blocks.append(section(f"*{_TIER_NAMES[tier]}*\n{body}"))
        lines += [f"{tier}:", body]
    if silences:
        text = "\n".join(
            f"🔕 {fp or (scope + ' and below')} until {local_time(until, ctx)} (by <@{by}>)"
            for _, fp, scope, by, until in silences
        )
        blocks.append(context(text))
        lines.append(text)
    hint = "`/agent ack <id>` · `/agent silence <id or scope> <duration>`"
    if silences:
        hint += " · `/agent silence <target> off` lifts a silence"
    blocks.append(context(hint))
    return Reply(text="\n".join(lines), blocks=blocks)


@subcommand("ack", usage="ack <id>")
async def cmd_ack(ctx: Context, args: list[str]) -> Reply:
    """Acknowledges an alert: its escalation stops and the time to acknowledge is recorded."""
    if len(args) != 1:
        raise UsageError()
    alert_id = _alert_id(args[0])
    await require_responder(ctx, "acknowledge alerts")
    engine = engine_of(ctx)
    alert, new = await ctx.ns.store.write(
        lambda tx: ops.ack(engine, tx, alert_id=alert_id, actor=ctx.actor)
    )
    if not new:
        return Reply.text_only(
            f"#{alert_id} was already acknowledged by <@{alert.acked_by}>"
            f" at {local_time(alert.acked_at or 0, ctx)}."
        )
    return Reply.text_only(
        f"👀 <@{ctx.actor}> acknowledged #{alert_id} ({alert.scope}); escalation stopped,"
        f" {duration(alert.mtta or 0)} after it fired.",
        ephemeral=False,
    )


@subcommand("silence", usage="silence <id or scope> <duration|off>")
async def cmd_silence(ctx: Context, args: list[str]) -> Reply:
    """Silences an alert or scope for a while, across re-fires; `off` lifts it: alerts notify again.

    `off` (also `lift`, `end`) ends the active silences on that target now. The target is
    an alert id (`12`, `#12`), `kind:scope`, or a scope (`acme/alice`: it and everything
    below it), as for silencing. A lift ends the silences made on exactly that target (a
    silence on a wider scope still holds and is named in the reply). Open alerts the
    lifted silences held are posted (or their message updated) and put back on the
    escalation chain at once, as when a silence expires: a P0 pages on-call again unless
    it was acknowledged. Later firings notify as usual. Firings recorded while silenced
    stay counted; `/agent alerts` lists the active silences.
    """
    if len(args) != 2:
        raise UsageError()
    if args[1].lower() in LIFT_WORDS:
        return await _lift(ctx, args[0])
    seconds = duration_arg(args[1])
    await require_responder(ctx, "silence alerts")
    engine = engine_of(ctx)
    made = await ctx.ns.store.write(
        lambda tx: ops.silence(engine, tx, target=args[0], seconds=seconds, actor=ctx.actor)
    )
    if made.made_by is not None:
        return Reply.text_only(
            f"🔕 {made.matches} is already silenced by <@{made.made_by}>"
            f" until {local_time(made.expires_at, ctx)}; nothing changed."
        )
    also = f"; {len(made.silenced)} open alert(s) silenced now" if made.silenced else ""
    return Reply.text_only(
        f"🔕 <@{ctx.actor}> silenced {made.matches} for {duration(seconds)}"
        f" (until {local_time(made.expires_at, ctx)}){also}. Firings are still recorded.",
        ephemeral=False,
    )


async def _lift(ctx: Context, target: str) -> Reply:
    await require_responder(ctx, "lift silences")
    engine = engine_of(ctx)
    done = await ctx.ns.store.write(lambda tx: ops.lift(engine, tx, target=target, actor=ctx.actor))
    what = done.target
    on = what.name if what.alert_id is None else f"{what.name} ({what.fingerprint})"
    covered = ""
    if done.covered_by is not None:
        covered = f" {still_silenced(what.name, done.covered_by)}"
    if not done.lifted:
        return Reply.text_only(
            f"There is no active silence on {on}; nothing changed.{covered}"
            " `/agent alerts` lists the active silences."
        )
    head = lifted_silences(done, on)
    if done.notify_again:
        after = f"{len(done.notify_again)} open alert(s) notify again now"
    else:
        after = "the next firing notifies as usual"
    still = ""
    if done.still_silenced:
        still = f" {len(done.still_silenced)} open alert(s) stay silenced by another silence."
    return Reply.text_only(
        f"🔔 <@{ctx.actor}> lifted {head}; {after}.{still}{covered}", ephemeral=False
    )
