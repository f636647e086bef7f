"""``/agent credit <reservation id> <amount|all> <reason…>``: take a charge back.

An absurd settle (a unit bug reporting $400 for a $0.40 call, a leaked token) is charged
in full and stops its agent, user and namespace for the rest of the window. An admin
takes back up to what it was charged (:mod:`guards.credits`): the budgets regain that
room in the windows the charge was booked in, the audit log keeps who, how much and why
(``ledger.credit``), and ``nightshift ledger verify`` counts it.

Example:
    >>> # /agent credit res_0196c8f3a2b41f0e2d7c9a 399.60 unit bug in rss-bot
"""

from __future__ import annotations

from bot.blocks import echo
from bot.chat_words import typed
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_core import parse_amount
from bot.digest import rollup
from bot.escape import mask_secrets, slack_text
from bot.responders import engine_of
from guards.credits import Credited
from guards.errors import InvalidInput, NotFound
from guards.money import usd_for
from guards.scopes import LEVELS
from guards.store import Tx

__all__ = ["cmd_credit", "regained"]


@subcommand("credit", usage="credit <reservation id> <amount|all> <reason…>")
async def cmd_credit(ctx: Context, args: list[str]) -> Reply:
    """Take back a settled charge, or part of it (admins; a reason is required): its
    budgets regain that room in the windows it was charged to."""
    await ctx.require_admin("take back charges")  # first: a refusal is audited, typo or not
    if len(args) < 3:
        raise UsageError(
            "`credit` needs a reservation id, an amount (or `all`) and a reason:"
            " a reason is required (it is kept in the audit log)"
        )
    res_id = args[0].strip("`")
    if not res_id.startswith("res_") or len(res_id) > 64:
        raise UsageError(
            f"`{echo(res_id, 64)}` is not a reservation id (`res_…`: the overrun alert"
            " names the one charged)"
        )
    try:
        amount = None if args[1].lower() == "all" else parse_amount(args[1])
    except InvalidInput as exc:
        raise UsageError(exc.message) from None
    reason = mask_secrets(typed(args[2:]))  # kept for good and read by everyone
    ledger = ctx.ns.ledger

    engine = engine_of(ctx)

    def take_back(tx: Tx) -> tuple[Credited, str, list[str]]:
        done = ledger.credit(
            tx, res_id=res_id, amount_micros=amount, reason=reason, actor=ctx.actor
        )
        rollup.take_back(tx, reservation=done.reservation, micros=done.amount_micros)
        usd = usd_for(done.amount_micros)(done.amount_micros)
        what = f"{usd} of the charge of {done.reservation.id} taken back"
        engine.charge_taken_back(
            tx,
            scope=done.reservation.scope,
            by=ctx.actor,
            what=what,
            model=done.reservation.counted_model,
        )
        namespace = done.reservation.scope.partition("/")[0]
        # a breaker the charge tripped keeps it in its window: it stops the agent still
        scope = done.reservation.scope
        stopping = [
            b.scope
            for b in ctx.ns.breakers.list(tx, within=scope)
            if not b.scope.startswith("model:") and (scope + "/").startswith(b.scope + "/")
        ]
        return done, ledger.periods(namespace, tx.clock.now())[0], stopping

    try:
        done, today, stopping = await ctx.ns.store.write(take_back)
    except NotFound:
        return Reply.text_only(f"There is no reservation `{echo(res_id, 64)}`.")
    r = done.reservation
    usd = usd_for(done.amount_micros, done.net_micros, r.charged_micros)
    text = "\n".join(
        [
            f"↩️ <@{ctx.user_id}> took back *{usd(done.amount_micros)}* of the charge of"
            f" `{r.id}` (`{slack_text(r.scope)}`).",
            f"Its charge now counts *{usd(done.net_micros)}* of the {usd(r.charged_micros)}"
            " settled.",
            regained(
                done,
                today=today,
                usd=usd(done.amount_micros),
                limited=r.counted_model in ctx.ns.policy.budgets.models,
            ),
            f"Reason: {slack_text(reason)}",
            *(
                f"⚠️ The breaker of `{slack_text(b)}` is not closed (its spend window keeps"
                f" the charge): `/agent breaker {slack_text(b)} close` lets it run."
                for b in stopping
            ),
        ]
    )
    return Reply.text_only(text, ephemeral=False)


def regained(done: Credited, *, today: str, usd: str, limited: bool = False) -> str:
    """Which levels and windows regain room: those the settle charged; and the
    namespace's budget for the model its hold counted, when the policy ``limited`` that
    model (``budgets.models``; review23 model budgets L1).

    >>> # "The agent, user and namespace regain $399.60 in their day of 2026-11-28, …"
    """
    r = done.reservation
    levels = list(reversed(LEVELS[: r.scope.count("/") + 1]))
    named = ", ".join(levels[:-1]) + f" and {levels[-1]}"
    day, week, month = r.periods
    past = "" if day == today else " (the day its hold was taken: today's is unchanged)"
    model = (
        f" So does {r.scope.partition('/')[0]}'s budget for {r.counted_model}"
        " (`budgets.models`), in each window it limits."
        if limited and r.counted_model
        else ""
    )
    return (
        f"The {named} regain {usd} in their day of {day}{past}, week {week}, month {month}"
        f" and total.{model}"
    )
