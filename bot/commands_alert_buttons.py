"""The alert message buttons: Acknowledge, Silence 1h (Unsilence), Escalate now, Resolve;
and Acknowledge all on an alert storm summary.

Each button's ``value`` is the alert id, tagged with the instant it first fired
(``"20~1767225611123"``): a click on a message whose alert this database does not have
(restored from an older copy, which gives its numbers again) changes nothing and says
so; messages posted before the tag carry the id alone. The clicker must be a responder
of the policy or an admin (:func:`bot.responders.require_responder`). The answer goes
to the clicker only: the engine re-renders every copy of the alert itself.

Escalate now's value also names the step it was rendered at (``"20:1"``; a plain
``"20"`` from older messages means the current step): a double click, or a click on
an alert that was acknowledged or escalated meanwhile, pages nobody and tells the
clicker what happened (:func:`bot.alerts.operations.escalate_now`).

Silence 1h on an alert that resolved before the click (a stale copy) still silences
its fingerprint, as ``/agent silence <id>`` does, and says so: the silence holds the
alert's next firings, and how to lift it.

A silenced alert shows Unsilence instead of Silence 1h. It lifts the silences made on
that alert (its ``#id`` or fingerprint), as ``/agent silence <id> off`` does; a
silence on a wider scope holds other alerts too, so the button names it and the
command that lifts it instead. :func:`lifted_silences` and :func:`still_silenced`
word a lift for the button and the command alike.

Resolve and Escalate now act through :func:`resolve_as` and :func:`escalate_as`, which
``/agent resolve`` and ``escalate`` (:mod:`bot.commands_alert_actions`) run too: the
same audit rows, redraws and refusals, for an alert whose message went out without
buttons.

Acknowledge all's value is the storm summary's outbox ref (``fold:pages:U02:17``),
not its alert ids. It acknowledges the summary's alerts still open, as the clicker,
in one write (:func:`bot.alerts.operations.ack_storm`), and the summary then says who
acknowledged how many, without the button. A second click, or one on a summary whose
alerts are all handled, changes nothing and tells the clicker what became of them.

Example:
    >>> # the click: await dispatch_action(ctx, "alert_unsilence", "12")
    >>> # -> "🔔 you lifted the silence on #12 (set by <@U1>, had 50m left); it notifies again."
"""

from __future__ import annotations

from bot.alerts import operations as ops
from bot.alerts.model import TAG_DIGITS, Alert, button_tag
from bot.alerts.render_storm import STORM_ACK_ACTION, storm_handled, storm_others, storm_split
from bot.alerts.render_time import duration
from bot.alerts.storm_names import seed_first_at, storm_ref
from bot.commands import ActionResult, Context, action
from bot.escape import member_or_name
from bot.responders import engine_of, local_time, require_responder, resolved_words
from guards.errors import Conflict, InvalidInput
from guards.store import Tx

__all__ = [
    "escalate_as",
    "lifted_silences",
    "resolve_as",
    "resolved_reply",
    "still_silenced",
]

SILENCE_BUTTON_SECONDS = 3600


def _button_id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > ops.MAX_ALERT_ID_DIGITS:
        raise InvalidInput("value", "this button does not name an alert")
    return int(value)


def _untagged(value: str) -> tuple[str, str | None]:
    """``"20~1767225611123"`` -> ``("20", "1767225611123")``; messages posted before
    buttons were tagged carry the value alone (``None``)."""
    value, sep, tag = value.partition("~")
    if sep and not (tag.isascii() and tag.isdigit() and len(tag) <= TAG_DIGITS):
        raise InvalidInput("value", "this button does not name an alert")
    return value, tag if sep else None


def _escalate_value(value: str) -> tuple[int, int | None]:
    """``"20:1"`` -> ``(20, 1)``; the plain ``"20"`` of older messages -> ``(20, None)``."""
    alert, sep, step = value.partition(":")
    if not sep:
        return _button_id(alert), None
    if not (step.isascii() and step.isdigit()) or len(step) > ops.MAX_ALERT_ID_DIGITS:
        raise InvalidInput("value", "this button does not name an escalation step")
    return _button_id(alert), int(step)


async def _clicked(ctx: Context, value: str, doing: str) -> int:
    """The alert a button names, once the clicker may act on alerts (``doing``), and
    only when it is the alert the message was posted for: a database restored from a
    backup gives the numbers of the alerts made since to new alerts (audit23 backup 1:
    an old breaker message's Acknowledge stopped a new P0's pages)."""
    plain, tag = _untagged(value)
    alert_id = _button_id(plain)
    await _may_act(ctx, alert_id, tag, doing)
    return alert_id


async def _may_act(ctx: Context, alert_id: int, tag: str | None, doing: str) -> None:
    await require_responder(ctx, doing, alert_id=alert_id)
    if tag is not None:
        _check_tag(ctx, alert_id, tag, await _first_at(ctx, alert_id))


async def _first_at(ctx: Context, alert_id: int) -> float | None:
    rows = await ctx.ns.store.fetch("SELECT first_at FROM alerts WHERE id = ?", (alert_id,))
    return float(rows[0][0]) if rows else None


def _check_tag(ctx: Context, alert_id: int, tag: str, first_at: float | None) -> None:
    if first_at is not None and button_tag(first_at) == tag:
        return
    fired = local_time(int(tag) / 1000, ctx)
    now = (
        f"#{alert_id} is another alert now"
        if first_at is not None
        else f"there is no #{alert_id} now"
    )
    raise Conflict(
        f"This message is about an alert #{alert_id} (it fired {fired}) that this database"
        f" does not have: {now} (was Nightshift restored from an older copy?). Nothing"
        " changed; `/agent alerts` lists the open alerts, with their own buttons."
    )


def lifted_silences(done: ops.SilenceLifted, on: str) -> str:
    """What a lift ended, for a reply: ``the silence on #12 (set by <@U1>, had 50m left)``.

    ``done.lifted`` must not be empty.
    """
    setters = " and ".join(dict.fromkeys(member_or_name(s.created_by) for s in done.lifted))
    left = duration(max(s.left for s in done.lifted))
    if len(done.lifted) == 1:
        return f"the silence on {on} (set by {setters}, had {left} left)"
    return f"{len(done.lifted)} silences on {on} (set by {setters}, up to {left} left)"


def still_silenced(
    name: str, covered: tuple[ops.SilenceTarget, str], *, until: str | None = None
) -> str:
    """The silence that still holds ``name`` after a lift, and the command that lifts it.

    Example:
        ``#12 is still silenced by acme/alice and below (set by <@U1>, until 08:00):
        `/agent silence acme/alice off` lifts that one.``
    """
    wider, by = covered
    when = f", until {until}" if until else ""
    return (
        f"{name} is still silenced by {wider.matches} (set by {member_or_name(by)}{when}):"
        f" `/agent silence {wider.name} off` lifts that one."
    )


@action("alert_ack")
async def act_ack(ctx: Context, value: str) -> ActionResult:
    alert_id = await _clicked(ctx, value, "acknowledge alerts")
    engine = engine_of(ctx)
    alert, new = await ctx.ns.store.write(
        lambda tx: ops.ack(engine, tx, alert_id=alert_id, actor=ctx.actor)
    )
    if not new:
        by = "you" if alert.acked_by == ctx.actor else member_or_name(alert.acked_by or "?")
        return ActionResult(ephemeral=f"#{alert_id} was already acknowledged by {by}.")
    # the engine has re-rendered every copy of the alert (channel and DMs) in the same
    # transaction; replacing the clicked copy's buttons here would undo that with stale text
    return ActionResult(
        ephemeral=f"👀 you acknowledged #{alert_id} at {local_time(alert.acked_at or 0, ctx)}"
    )


@action("alert_silence_1h")
async def act_silence(ctx: Context, value: str) -> ActionResult:
    alert_id = await _clicked(ctx, value, "silence alerts")
    engine = engine_of(ctx)

    def silence(tx: Tx) -> tuple[ops.SilenceMade, Alert]:
        made = ops.silence(
            engine, tx, target=str(alert_id), seconds=SILENCE_BUTTON_SECONDS, actor=ctx.actor
        )
        return made, engine.get(tx, alert_id)

    made, alert = await ctx.ns.store.write(silence)
    until = local_time(made.expires_at, ctx)
    if made.made_by is not None:
        by = "you" if made.made_by == ctx.actor else member_or_name(made.made_by)
        return ActionResult(ephemeral=f"🔕 #{alert_id} is already silenced by {by} until {until}")
    if alert.resolved_at is not None:  # gone before the click: the silence waits for the next
        return ActionResult(
            ephemeral=f"🔕 #{alert_id} was {resolved_words(ctx, alert)}; this silence holds its"
            f" next firings until {until} — `/agent silence {alert_id} off` lifts it."
        )
    return ActionResult(ephemeral=f"🔕 you silenced #{alert_id} for 1h (until {until})")


@action("alert_unsilence")
async def act_unsilence(ctx: Context, value: str) -> ActionResult:
    alert_id = await _clicked(ctx, value, "lift silences")
    engine = engine_of(ctx)

    def unsilence(tx: Tx) -> tuple[ops.SilenceLifted, Alert]:
        # a lift by alert id ends only the silences made on this alert's fingerprint;
        # a scope's silence comes back in covered_by, untouched
        done = ops.lift(engine, tx, target=str(alert_id), actor=ctx.actor)
        return done, engine.get(tx, alert_id)

    done, alert = await ctx.ns.store.write(unsilence)
    name = f"#{alert_id}"
    held = None
    if done.covered_by is not None:
        until = local_time(done.covered_until, ctx) if done.covered_until else None
        held = still_silenced(name, done.covered_by, until=until)
    if not done.lifted:
        if held:
            return ActionResult(
                ephemeral=f"Nothing changed: this button lifts only a silence set on {name}"
                f" itself, and {held}"
            )
        return ActionResult(ephemeral=f"{name} is not silenced any more; nothing changed.")
    # as for the other buttons, the engine has re-rendered the message (Silence 1h is back)
    head = f"🔔 you lifted {lifted_silences(done, name)}"
    if held:
        return ActionResult(ephemeral=f"{head}, but {held}")
    if alert.resolved_at is not None:
        after = "it is resolved, and its next firing notifies as usual"
    elif alert.acked_at is not None:
        by = member_or_name(alert.acked_by or "?")
        after = f"it is acknowledged by {by}, so its escalation stays stopped"
    else:
        after = "it notifies again"
    return ActionResult(ephemeral=f"{head}; {after}.")


@action("alert_escalate")
async def act_escalate(ctx: Context, value: str) -> ActionResult:
    plain, tag = _untagged(value)
    alert_id, step = _escalate_value(plain)
    await _may_act(ctx, alert_id, tag, "escalate alerts")
    return ActionResult(ephemeral=await escalate_as(ctx, alert_id, at_step=step))


async def escalate_as(ctx: Context, alert_id: int, *, at_step: int | None = None) -> str:
    """Escalate now, as ``ctx.actor`` (already allowed to): the Escalate now button and
    ``/agent escalate``. Returns the words for them; a click or command that comes too
    late (acknowledged, or past that step) raises Conflict, which says why, and nothing
    is paged or audited."""
    engine = engine_of(ctx)
    who = await ctx.ns.store.write(
        lambda tx: ops.escalate_now(engine, tx, alert_id=alert_id, actor=ctx.actor, at_step=at_step)
    )
    if who == "nobody":  # everyone that step names left the workspace: its thread says so
        return (
            f"Escalated #{alert_id}: that step pages nobody (the alert's thread"
            " says why); the chain goes on to its next step."
        )
    if who.startswith("webhook:"):  # a step that pages by HTTP (bot.webhooks): sent after
        return (
            f"Escalated #{alert_id}: sending the page to webhook {who[8:]} (the alert's"
            " thread says if it does not get through)."
        )
    target = "the channel" if who == "channel" else f"<@{who}>"
    return f"Escalated #{alert_id}: notified {target}."


@action("alert_resolve")
async def act_resolve(ctx: Context, value: str) -> ActionResult:
    alert_id = await _clicked(ctx, value, "resolve alerts")
    alert, silent, _ = await resolve_as(ctx, alert_id)
    return ActionResult(ephemeral=resolved_reply(ctx, alert, silent))


async def resolve_as(
    ctx: Context, alert_id: int, *, reason: str | None = None
) -> tuple[Alert, str | None, bool]:
    """Resolve by hand, as ``ctx.actor`` (already allowed to): the Resolve button and
    ``/agent resolve`` (with its ``reason``, as typed and masked). Returns the alert, what
    :func:`~bot.alerts.operations.still_silent` says, and whether this resolved it."""
    engine = engine_of(ctx)

    def write(tx: Tx) -> tuple[Alert, str | None, bool]:
        alert, new = ops.resolve_saying(
            engine, tx, alert_id=alert_id, actor=ctx.actor, reason=reason
        )
        return alert, ops.still_silent(engine, tx, alert), new

    return await ctx.ns.store.write(write)


def resolved_reply(ctx: Context, alert: Alert, silent: str | None) -> str:
    """``✅ #12 resolved by <@U1> at 03:20``, with what :func:`resolve_as` returned."""
    at = local_time(alert.resolved_at or 0, ctx)
    if alert.resolved_by:
        said = f"✅ #{alert.id} resolved by <@{alert.resolved_by}> at {at}"
        if alert.resolve_reason:
            said += f" — {alert.resolve_reason}"
        return f"{said}. ⚠️ {silent}." if silent else said
    return f"✅ #{alert.id} resolved at {at} ({alert.resolve_reason or 'condition cleared'})"


@action(STORM_ACK_ACTION)
async def act_storm_ack(ctx: Context, value: str) -> ActionResult:
    ref, tag = storm_ref(value)
    await require_responder(ctx, "acknowledge alerts")
    engine = engine_of(ctx)

    def ack_all(tx: Tx) -> ops.StormAck:
        if tag is not None:  # the storm the message was posted for (review23 M2)
            first_at = seed_first_at(tx, ref)
            if first_at is None or button_tag(first_at) != tag:
                raise Conflict(
                    "This alert storm summary is about alerts this database does not have"
                    " (was Nightshift restored from an older copy?). Nothing changed;"
                    " `/agent alerts` lists the open alerts, with their own buttons."
                )
        return ops.ack_storm(engine, tx, ref=ref, actor=ctx.actor)

    done = await ctx.ns.store.write(ack_all)
    if not done.acked:
        return ActionResult(ephemeral=storm_handled(done))
    # the summary's button became the line saying so, in the same transaction
    count = len(done.acked)
    what = "1 alert" if count == 1 else f"{count} alerts"
    split = f" {storm_split(done)}" if done.before else ""  # (its head counts only its own)
    head = f"✅ you acknowledged {what} of this storm{split} at {local_time(done.at, ctx)}"
    return ActionResult(ephemeral="; ".join([head, *storm_others(done)]) + ".")
