"""``/agent routing``: route decisions, the calls that followed them and what they were
charged, learned promotions (and when they lapse), and their revert."""

from __future__ import annotations

from dataclasses import replace

from bot.api_routing import ensure_routing, routing_stats
from bot.blocks import actions, button, context, echo, section
from bot.commands import ActionResult, Context, Reply, UsageError, action, subcommand
from bot.commands_core import is_known_scope, local_time
from bot.known_scopes import did_you_mean, meant, unseen
from bot.slack.limits import BUTTON_TEXT
from guards.errors import NotFound
from guards.routing.records import Promotion
from guards.scopes import Scope, ScopeError
from guards.store import Tx

REVERT_ACTION = "routing_revert"
NO_PROMOTIONS = "promotions: none"


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
    climbs = _climbs(stats.promotions)
    # the figures as the stats word them; the promotions here, in the policy's zone
    lines = replace(stats, promotions=[]).lines()
    if lines and lines[-1] == NO_PROMOTIONS:
        lines.pop()
    lines += [_climb_line(ctx, c, stats.review_after) for c in climbs] or [NO_PROMOTIONS]
    text = "\n".join(lines)
    blocks = [section(f"*Model routing, last 24 h*\n{text}")]
    if scope is not None and not stats.decisions:
        note = await ctx.ns.store.read(lambda tx: _unknown(ctx, tx, scope))
        if note:
            text += f"\n{note}"
            blocks.append(context(note))
    for climb in climbs[:10]:  # one button per intent and namespace: it reverts the climb
        latest = climb[-1]
        value = f"{latest.intent} {latest.namespace}"
        label = f"Revert {latest.intent} ({latest.namespace})"
        if len(label) > BUTTON_TEXT:  # Slack's limit for a button: the intent, then as it fits
            label = f"{label[: BUTTON_TEXT - 2]}…)"
        blocks.append(actions(button(label, REVERT_ACTION, value)))
    return Reply(text=text, blocks=blocks)


def _climbs(promotions: list[Promotion]) -> list[list[Promotion]]:
    """The active promotions by intent and namespace, each oldest first: a promotion on top
    of another (small → medium, then medium → large) is one climb, which lapses and
    reverts whole (audit24 C L8: two lines and two buttons, one click undoing both)."""
    climbs: dict[tuple[str, str], list[Promotion]] = {}
    for p in sorted(promotions, key=lambda p: p.id):
        climbs.setdefault((p.namespace, p.intent), []).append(p)
    return list(climbs.values())


def _climb_line(ctx: Context, climb: list[Promotion], review_after: int | None) -> str:
    """``promoted: summary in acme small → medium since 05:03, lapses Sun 06 Dec 05:03 (…)``,
    times in the policy's zone as every reply words them (audit24 C L7: they were UTC)."""
    first, latest = climb[0], climb[-1]
    if len(climb) == 1:
        steps = f"{first.from_tier} → {first.to_tier} since {local_time(ctx, first.promoted_at)}"
    else:
        steps = first.from_tier + "".join(
            f" → {p.to_tier} at {local_time(ctx, p.promoted_at)}" for p in climb
        )
    lapses = (
        "until reverted"
        if review_after is None
        else f"lapses {local_time(ctx, latest.promoted_at + review_after)}"
    )
    which = f" {latest.from_tier}" if len(climb) > 1 else ""
    return (
        f"promoted: {latest.intent} in {latest.namespace} {steps}, {lapses}"
        f" ({latest.failures} of {latest.calls}{which} calls failed or were rejected by"
        f" validation); revert: /agent routing revert {latest.intent} {latest.namespace}"
    )


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
    return ActionResult(done=f"↩️ {reply.text} — <@{ctx.actor}> at {local_time(ctx)}")
