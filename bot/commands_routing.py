"""``/agent routing``: route decisions, the calls that followed them and what they were
charged, learned promotions (and when they lapse), and their revert."""

from __future__ import annotations

from bot.api_routing import ensure_routing, routing_stats
from bot.blocks import actions, button, context, echo, section
from bot.commands import ActionResult, Context, Reply, UsageError, action, subcommand
from bot.commands_core import is_known_scope
from bot.known_scopes import did_you_mean, meant, unseen
from bot.slack.limits import BUTTON_TEXT
from guards.errors import NotFound
from guards.scopes import Scope, ScopeError
from guards.store import Tx

REVERT_ACTION = "routing_revert"


@subcommand("routing", usage="routing [scope] | routing revert <intent> [namespace]")
async def cmd_routing(ctx: Context, args: list[str]) -> Reply:
    """The last day's route decisions, the calls that followed them by the model charged,
    what they cost against the largest model, and promotions learned from failures."""
    if args and args[0].lower() == "revert":
        if len(args) not in (2, 3):
            raise UsageError("name the intent to revert")
        return await _revert(ctx, intent=args[1], namespace=args[2] if len(args) == 3 else None)
    if len(args) > 1:
        raise UsageError()
    scope = None
    if args:
        try:
            scope = Scope.parse(args[0]).path
        except ScopeError as exc:
            raise UsageError(str(exc)) from None
    now = ctx.ns.clock.now()
    stats = await routing_stats(ctx.ns, since=now - 86_400, until=now + 1, scope=scope)
    text = "\n".join(stats.lines())
    blocks = [section(f"*Model routing, last 24 h*\n{text}")]
    if scope is not None and not stats.decisions:
        note = await ctx.ns.store.read(lambda tx: _unknown(ctx, tx, scope))
        if note:
            text += f"\n{note}"
            blocks.append(context(note))
    for promotion in stats.promotions[:10]:
        value = f"{promotion.intent} {promotion.namespace}"
        label = f"Revert {promotion.intent} ({promotion.namespace})"
        if len(label) > BUTTON_TEXT:  # Slack's limit for a button: the intent, then as it fits
            label = f"{label[: BUTTON_TEXT - 2]}…)"
        blocks.append(actions(button(label, REVERT_ACTION, value)))
    return Reply(text=text, blocks=blocks)


def _unknown(ctx: Context, tx: Tx, scope: str) -> str | None:
    """What to say about a scope Nightshift does not know (None: it knows it)."""
    if is_known_scope(ctx, tx, scope):
        return None
    return f"_{unseen(scope)}._{did_you_mean(meant(ctx.ns.policy, tx, scope))}"


async def _revert(ctx: Context, *, intent: str, namespace: str | None) -> Reply:
    await ctx.require_admin("revert a routing promotion")
    service = ensure_routing(ctx.ns)
    try:
        reverted = await ctx.ns.store.write(
            lambda tx: service.revert_promotion(
                tx, intent=intent, actor=ctx.actor, namespace=namespace
            )
        )
    except NotFound:  # its message quotes the intent as typed: quoted here as user text is
        where = f" in `{echo(namespace)}`" if namespace else ""
        raise NotFound(
            f"Intent `{echo(intent)}` has no active promotion{where};"
            " `/agent routing` lists the current ones."
        ) from None
    where = ", ".join(sorted({p.namespace for p in reverted}))
    return Reply.text_only(
        f"Reverted the promotion of `{intent}` in {where}: it routes by its own rules again.",
        ephemeral=False,
    )


@action(REVERT_ACTION)
async def revert_button(ctx: Context, value: str) -> ActionResult:
    intent, _, namespace = value.partition(" ")
    reply = await _revert(ctx, intent=intent, namespace=namespace or None)
    when = ctx.ns.clock.now()
    from guards.clock import to_datetime

    return ActionResult(
        done=f"↩️ {reply.text} — <@{ctx.actor}> at {to_datetime(when).strftime('%H:%M')} UTC"
    )
