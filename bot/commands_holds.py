"""``/agent holds <scope>`` and ``/agent release <reservation id>``: the holds in the way.

A stuck call's hold counts against every level above it until its TTL (up to
``reservations.max_ttl_seconds``, a day by default), and its siblings meet a 402 that
says "wait for running calls to settle". ``holds`` shows which reservations hold the
money, the largest first, and until when; ``release`` (admins) ends one now, as its TTL
would: the money goes back at once, and a settle that still comes is charged in full and
flagged late, since the call may yet have spent.

Example:
    >>> # /agent holds acme/alice/bot
    >>> # /agent release res_0196c8f3a2b41f0e2d7c9a
"""

from __future__ import annotations

from collections.abc import Callable

from bot.alerts.render_time import duration
from bot.blocks import MAX_TEXT, echo, fit_text, line_sections
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_core import local_time, parse_scope_arg
from bot.escape import mask_secrets, slack_text
from bot.slack.limits import LIST_TEXT
from guards.errors import NotFound
from guards.ledger import Reservation
from guards.money import format_usd
from guards.scopes import Scope, subtree
from guards.store import Tx

__all__ = ["BY_AGENT_SQL", "MAX_HOLDS"]

MAX_HOLDS = 20  # holds listed, the largest first
MAX_AGENTS = 5  # agents summed up when the holds listed are not all of them
# (scope, holds, micros) of each scope holding now at a scope and below: (now, scope,
# *subtree(scope)). Off the open holds only, as ledger.held_under (audit26 volume F1).
BY_AGENT_SQL = (
    "SELECT scope, COUNT(*), SUM(held_micros) FROM reservations INDEXED BY reservations_due"
    " WHERE state = 'held' AND expires_at > ? AND (scope = ? OR (scope > ? AND scope < ?))"
    " GROUP BY scope"
)


def _by_agent(tx: Tx, scope: Scope, now: float) -> list[tuple[str, int, int]]:
    """(agent, holds, micros) of the agents holding most at ``scope`` and below: a stuck
    loop takes many small holds, which the largest ones listed would never name."""
    rows = tx.all(BY_AGENT_SQL, (now, scope.path, *subtree(scope.path)))
    agents: dict[str, list[int]] = {}
    for path, n, micros in rows:
        agent = "/".join(str(path).split("/")[:3])
        sums = agents.setdefault(agent, [0, 0])
        sums[0] += int(n)
        sums[1] += int(micros)
    ranked = sorted(agents.items(), key=lambda kv: (-kv[1][1], kv[0]))
    return [(agent, n, micros) for agent, (n, micros) in ranked[:MAX_AGENTS]]


def _hold_line(ctx: Context, r: Reservation, now: float) -> str:
    # the agent's own string (it counts its attempts), a token in it masked: shown to
    # any member (audit28 C1 M2)
    task = f" · task `{slack_text(mask_secrets(r.task_id))}`" if r.task_id else ""
    model = f" · {slack_text(r.model)}" if r.model else ""
    return (
        f"• `{r.id}` `{slack_text(r.scope)}` *{format_usd(r.held_micros, exact=True)}*"
        f"{model}{task}"
        f" · taken {duration(now - r.created_at)} ago, ends in"
        f" {duration(r.expires_at - now)} ({local_time(ctx, r.expires_at)})"
    )


@subcommand("holds", usage="holds <scope>")
async def cmd_holds(ctx: Context, args: list[str]) -> Reply:
    """The holds counting now at a scope and below, the largest first: which calls hold
    the money a 402 says is held, and until when."""
    if len(args) != 1:
        raise UsageError("`holds` takes one scope")
    scope = parse_scope_arg(args[0])

    def read(tx: Tx) -> tuple[list[Reservation], int, int, float, list[tuple[str, int, int]]]:
        now = tx.clock.now()
        holds, count, total = ctx.ns.ledger.held_under(tx, scope, limit=MAX_HOLDS)
        agents = _by_agent(tx, scope, now) if count > len(holds) and scope.depth < 3 else []
        return holds, count, total, now, agents

    holds, count, total, now, agents = await ctx.ns.store.read(read)
    if not holds:
        return Reply.text_only(f"No hold counts now at `{scope.path}` or below.")
    held = format_usd(total, exact=True)
    head = f"*Holds at `{scope.path}` and below:* {count}, {held} in all"
    zone = f" (times in {ctx.ns.policy.timezone})"  # of when each ends (audit24 agreement F2)
    by_agent = (  # who holds it, when the largest holds do not say
        "By agent: "
        + " · ".join(
            f"`{slack_text(a)}` {n} hold{'s' if n != 1 else ''}, {format_usd(m, exact=True)}"
            for a, n, m in agents
        )
        if len(agents) > 1
        else ""
    )
    tail = "_An admin ends one with `/agent release <id>`; a later settle is still charged._"
    # the holds as one message takes them, over sections of whole lines (one section of
    # 3,000 showed 5 of "the 20 largest" with long scopes: audit26 volume F2)
    shown: list[str] = []
    room = LIST_TEXT - len(head) - len(zone) - len(by_agent) - len(tail) - 40
    for r in holds:
        line = _hold_line(ctx, r, now)
        if len(line) + 1 > room:
            break
        shown.append(line)
        room -= len(line) + 1
    if count > len(shown):
        head += f"; the {len(shown)} largest"
    heads = [head + zone, *([by_agent] if by_agent else [])]
    blocks, _ = line_sections([*heads, *shown, tail])
    # the notification text: a By agent line of long names, past the quarter of it that
    # fit_text keeps a line to, is left to the blocks rather than cut mid-name
    text_heads = [line for line in heads if len(line) <= MAX_TEXT // 4]
    # (its count is of the lines the head announces, not of every hold: recheck26 N3)
    more = _more_holds if len(shown) == count else _more_of_largest(len(shown))
    text = fit_text(text_heads, shown, more=more, tail=[tail])
    return Reply(text=text, blocks=blocks)


def _more_holds(n: int) -> str:
    return f"… and {n} more hold{'s' if n != 1 else ''}"


def _more_of_largest(listed: int) -> Callable[[int], str]:
    return lambda n: f"… and {n} more of the {listed} largest"


@subcommand("release", usage="release <reservation id>")
async def cmd_release(ctx: Context, args: list[str]) -> Reply:
    """End a hold now, as its TTL would (admins): its money goes back to every level at
    once; a settle that still comes is charged in full and flagged late."""
    await ctx.require_admin("end holds")  # first: a refusal is audited, typo or not
    if len(args) != 1:
        raise UsageError("`release` takes one reservation id (`/agent holds <scope>` lists them)")
    res_id = args[0].strip("`")
    if not res_id.startswith("res_") or len(res_id) > 64:
        raise UsageError(
            f"`{echo(res_id, 64)}` is not a reservation id (`res_…`:"
            " `/agent holds <scope>` lists them)"
        )

    def end(tx: Tx) -> Reservation:
        return ctx.ns.ledger.end_hold(tx, res_id=res_id, actor=ctx.actor)

    try:
        r = await ctx.ns.store.write(end)
    except NotFound:
        return Reply.text_only(f"There is no reservation `{echo(res_id, 64)}`.")
    if r.state != "held":
        why = {"expired": " (its TTL passed, or it was ended already)"}.get(r.state, "")
        return Reply.text_only(
            f"`{r.id}` of `{slack_text(r.scope)}` is {r.state}{why}: nothing to end."
        )
    return Reply.text_only(
        f"<@{ctx.user_id}> ended the hold `{r.id}` of `{slack_text(r.scope)}`:"
        f" {format_usd(r.held_micros, exact=True)} back to its budgets. If the call still"
        " settles, it is charged in full and flagged late.",
        ephemeral=False,
    )
