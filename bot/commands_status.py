"""``/agent status [scope]``: how the fleet is doing, and how Slack delivery is.

Every agent's last heartbeat, breaker and spend today, those that need a look first (a
missed heartbeat, a breaker not closed, an open P0 or P1 nobody answered), as many as
one reply holds; the counts are of the whole fleet, or of the scope given (``status
acme/alice``: its agents, with the fleet's count beside them). The "… and N more agents"
line names the scopes the others are under, those that need a look first
(:mod:`bot.narrowing`), so every agent is reachable from Slack (audit26 client M1).

Example:
    >>> # /agent status             -> the fleet
    >>> # /agent status acme/alice  -> the agents of acme/alice
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.escalation import Chain
from bot.alerts.fleet import DISABLED_BREAKERS, AgentStatus, Fleet, fleet
from bot.alerts.render_summary import STATUS_DETAIL_CHARS, heartbeat_detail
from bot.alerts.render_time import duration
from bot.blocks import context, fit_text, header, line_sections, section
from bot.commands import Context, Reply, UsageError, subcommand
from bot.digest.render import refused_words
from bot.escape import operator_mentions, slack_text
from bot.known_scopes import did_you_mean, known_scope, meant, unseen
from bot.narrowing import names_scopes, scope_to_narrow, skip_of, unused_skip, where
from bot.outbox import OutboxHealth, outbox_health
from bot.responders import local_time
from bot.slack.limits import BLOCKS_TEXT, SECTION_TEXT, text_chars
from bot.storage_notice import refused_text
from guards.config import Policy
from guards.money import format_usd
from guards.store import Tx
from guards.words import plural

__all__ = ["cmd_status"]

MAX_LISTED = 45  # agents in /agent status: three sections of 15 lines
MORE_MARGIN = 50  # characters of the blocks' budget (BLOCKS_TEXT) left unused
MORE_TEXT = 700  # the plain text's "… and N more agents" line at most, when the blocks' is longer


def _agent_line(agent: AgentStatus, ctx: Context, now: float) -> str:
    config = ctx.ns.policy.heartbeats
    if agent.last_seen is None:
        beat = "no heartbeats"
    elif agent.heartbeat_missed:
        last = [local_time(agent.last_seen, ctx)]  # and what that heartbeat said
        last.append(heartbeat_detail(agent.heartbeat_detail, STATUS_DETAIL_CHARS))
        beat = f"💔 heartbeat missed (last {': '.join(s for s in last if s)})"
    else:
        late = " ⚠️ late" if agent.heartbeat_overdue(config, now) else ""
        said = [slack_text(agent.heartbeat_status or "", 64)]
        said.append(heartbeat_detail(agent.heartbeat_detail, STATUS_DETAIL_CHARS))
        status = f" ({': '.join(s for s in said if s)})" if any(said) else ""
        beat = f"♥ {duration(now - agent.last_seen)} ago{status}{late}"
    if agent.breaker_state == "closed":
        breaker = "breaker closed"
    else:
        where = f" at {agent.breaker_scope}" if agent.breaker_scope else ""
        reason = (
            f": {operator_mentions(slack_text(agent.breaker_reason))}"
            if agent.breaker_reason
            else ""
        )
        breaker = f"⛔ breaker {agent.breaker_state.replace('_', ' ')}{where}{reason}"
    icon = "🟢" if agent.healthy else "🔴"
    alerts = f" · {plural(agent.open_alerts, 'open alert')}" if agent.open_alerts else ""
    if agent.unanswered:  # a P2 waits for the digest, not a person (audit24 agreement F3)
        alerts += f", {agent.unanswered} P0/P1 unanswered"
    spent = format_usd(agent.spent_today_micros, exact=True)  # not $0.00 under a cent
    return f"{icon} `{agent.scope}` · {beat} · {breaker} · {spent} today{alerts}{_refused(agent)}"


def _refused(agent: AgentStatus) -> str:
    """`` · refused today: 3 by a breaker, 1 over budget`` (none: nothing), as the digest
    says what refused them."""
    return f" · refused today: {refused_words(agent.refused_today)}" if agent.refused_today else ""


MAX_ZONED = 3  # namespaces on a clock of their own named in the times line


def _times_line(ctx: Context, agents: list[AgentStatus], now: float) -> str:
    """``Times in Europe/Berlin``, and whose day "today" is when a namespace listed keeps
    its own (its spend today is of its day, the clock times of the policy's zone:
    audit24 agreement F2)."""
    policy = ctx.ns.policy
    zoned: dict[str, str] = {}
    for agent in agents:
        namespace = agent.scope.split("/", 1)[0]
        zone = policy.namespace_timezone(namespace)
        if zone != policy.timezone:
            zoned.setdefault(namespace, zone)
    line = f"Times in {policy.timezone}"
    if not zoned:
        return line

    def day(zone: str) -> str:
        return datetime.fromtimestamp(now, ZoneInfo(zone)).strftime("%a %Y-%m-%d")

    own = "; ".join(
        f"for {slack_text(ns)}, {day(zone)} ({zone})"
        for ns, zone in list(zoned.items())[:MAX_ZONED]
    )
    if len(zoned) > MAX_ZONED:
        own += f"; {len(zoned) - MAX_ZONED} more on their own day (`/agent budget <namespace>`)"
    return f'{line} · "today" is {day(policy.timezone)}; {own}'


def _more_agents(fleet: Fleet, *, skip: int) -> Callable[[int, int], str]:
    """The line for the N agents left out of the end of the list (unhealthy ones first),
    and the scopes they are under, those that need a look when some do: as many as the
    line's room holds (the others by the ``+N`` it gives, :func:`bot.narrowing.where`)."""
    again = "/agent status" + (f" {fleet.within}" if fleet.within else "")
    said: dict[tuple[int, int], str] = {}
    read: dict[str, tuple[str, ...] | None] = {}  # each agent's segments, once a reply

    def more(hidden: int, room: int) -> str:
        # each line once: the plain text's fit asks for the same one at every agent it
        # places, and each reads every agent's scope (review28 R2 H1: 92 times, 20 s on
        # the event loop at 10,000 agents, every reservation waiting meanwhile)
        if (hidden, room) not in said:
            line = _more_line(fleet, hidden=hidden, room=room, skip=skip, again=again, read=read)
            said[hidden, room] = line
        return said[hidden, room]

    return more


def _more_line(
    fleet: Fleet,
    *,
    hidden: int,
    room: int,
    skip: int,
    again: str,
    read: dict[str, tuple[str, ...] | None],
) -> str:
    """The "… and N more agents" line for ``hidden`` agents in ``room`` characters."""
    shown = fleet.total - hidden
    bad = fleet.need_a_look - min(shown, fleet.need_a_look)
    agents = "agent" if hidden == 1 else "agents"
    if not bad:
        words = f"… and {hidden:,} more {agents} (healthy)"
    elif bad == hidden:
        why = "`/agent alerts` and `/agent breakers` say why"
        words = f"… and {hidden:,} more {agents}, all need a look ({why})"
    else:
        words = f"… and {hidden:,} more {agents}: {bad:,} need a look, {hidden - bad:,} healthy"
    lists = ": `/agent status <scope>` lists one"
    joint = " · those {bad:,} are under " if bad and bad != hidden else " · under "
    under = where(
        _named(fleet, shown=shown),
        among=fleet.scopes,
        within=fleet.within,
        again=again,
        skip=skip,
        room=room - len(words) - len(joint) - len(lists),
        read=read,
    )
    return f"{words}{joint.format(bad=bad)}{under}{lists}" if under else words


def _named(fleet: Fleet, *, shown: int) -> list[str]:
    """The agents whose scopes the line after the first ``shown`` names: those left out
    that need a look, when some do, else every one left out."""
    bad = fleet.need_a_look - min(shown, fleet.need_a_look)
    return fleet.scopes[shown : shown + bad] if bad else fleet.scopes[shown:]


def _check_skip(fleet: Fleet, *, shown: int, skip: int) -> None:
    """Refuse a ``+N`` (UsageError) unless the line after the first ``shown`` agents names
    scopes to pass over: never when no agent or every one is listed (recheck26 Kc L1: the
    ``+N`` was dropped without a word), nor when one scope holds those it names."""
    if skip and not names_scopes(
        _named(fleet, shown=shown), among=fleet.scopes, within=fleet.within
    ):
        again = "/agent status" + (f" {slack_text(fleet.within)}" if fleet.within else "")
        raise unused_skip(skip, again=again, example="/agent status +N")


_OPEN_ALERTS = "SELECT tier, COUNT(*) FROM alerts WHERE resolved_at IS NULL GROUP BY tier"
_OPEN_ALERTS_UNDER = (
    "SELECT tier, COUNT(*) FROM alerts WHERE resolved_at IS NULL AND (scope = ? OR scope GLOB ?)"
    " GROUP BY tier"
)


@subcommand("status", usage="status [scope]")
async def cmd_status(ctx: Context, args: list[str]) -> Reply:
    """The fleet: agents, last heartbeat, breaker state, spend today, Slack delivery; a
    scope narrows it to its agents: `status acme/alice`; a cut list's hint gives `+N` to
    name more scopes."""
    words, skip = skip_of(args, command="status")
    if len(words) > 1:
        raise UsageError("`status` takes one scope at most, as `/agent status acme/alice`")
    within = scope_to_narrow(words[0], command="status") if words else None
    now = ctx.ns.clock.now()
    ledger, policy = ctx.ns.ledger, ctx.ns.policy

    def read(tx: Tx) -> tuple[Fleet, list[Any], bool]:
        if within is None:
            counts = tx.all(_OPEN_ALERTS)
        else:  # a scope's characters are no GLOB wildcards
            counts = tx.all(_OPEN_ALERTS_UNDER, (within, within + "/*"))
        view = fleet(tx, ledger=ledger, now=now, limit=MAX_LISTED, within=within)
        if within is not None and not view.total and not known_scope(policy, tx, within):
            close = meant(policy, tx, within)
            again = f" (`/agent status {close}`)" if close else ""
            raise UsageError(f"{unseen(within)}, so it has no agents.{did_you_mean(close)}{again}")
        return view, counts, ledger.limits_anything(tx)

    view, counts, limited = await ctx.ns.store.read(read)  # the whole fleet: off the writer
    health = await outbox_health(ctx.ns.store)
    delivery = _delivery_line(health, ctx, now)
    storage = _storage(ctx, now)  # every agent call refused: said before anything else
    warnings = _unguarded(ctx.ns.policy, limited=limited, transport=ctx.transport)
    times = _times_line(ctx, view.agents, now)
    if not view.total:
        _check_skip(view, shown=0, skip=skip)
        # true of an agent refused only on an earlier day too (review28 R6 L4)
        first = (
            "an agent is listed from its first reservation or heartbeat on; one whose every"
            " call was refused, on a day one of them is refused (its namespace's day) or"
            " while a breaker that refused it stays open."
        )
        empty = f"No agents yet: {first}"
        if within is not None:
            empty = (
                f"No agents under `{slack_text(within)}` ({view.fleet_total:,} in the fleet),"
                f" and no call of one refused today: {first}"
            )
        shown = [times] if health.oldest_pending_at is not None else []  # a time, its zone
        return Reply.text_only("\n".join([*storage, empty, delivery, *warnings, *shown]))
    open_alerts = " · ".join(f"{t} {n}" for t, n in sorted(counts)) or "none"
    need = "needs" if view.need_a_look == 1 else "need"
    fleet_of = "Fleet" if within is None else f"Fleet under `{slack_text(within)}`"
    of = "" if within is None else f" (of {view.fleet_total} in the fleet)"
    head = (
        f"{fleet_of}: {plural(view.total, 'agent')}{of}, {view.need_a_look:,} {need} a look"
        f" · open alerts: {open_alerts}"
    )
    lines = [_agent_line(a, ctx, now) for a in view.agents]
    more = _more_agents(view, skip=skip)
    listed, placed = line_sections(lines, per_section=15, max_sections=3)
    _check_skip(view, shown=placed, skip=skip)
    # the counts and the delivery line first: nothing below can push them out
    blocks = [header("Fleet status"), *map(section, storage), section(head), context(delivery)]
    blocks += [context(w) for w in warnings] + [context(times)] + listed
    room = min(SECTION_TEXT, BLOCKS_TEXT - text_chars(blocks) - MORE_MARGIN)
    if placed < view.total:  # every scope that fits in its block and in the message
        blocks.append(context(more(view.total - placed, room)))

    def plain(items: list[str]) -> str:
        head_lines = [*storage, head, *warnings]

        def more_text(hidden: int) -> str:  # the blocks' line, or one naming fewer scopes
            return more(hidden, min(room, MORE_TEXT))

        return fit_text(head_lines, items, more=more_text, total=view.total, tail=[delivery, times])

    text = plain(lines[:placed])
    if placed and lines[placed - 1] not in text:  # the same agents as the blocks, by name
        text = plain([line.split(" · ", 1)[0] for line in lines[:placed]])
    return Reply(text=text, blocks=blocks)


def _storage(ctx: Context, now: float) -> list[str]:
    """The database refusing writes (every agent call answered 503), said first: the fleet
    read off it looks healthy (audit24 resources M3)."""
    store = ctx.ns.store
    if (lost := store.file_lost()) is not None:
        return [f"🔴 Nightshift refuses every write: {slack_text(lost, 400)}"]
    if (outage := store.outage()) is not None:
        return [refused_text(outage, tz=ZoneInfo(ctx.ns.policy.timezone), now=now)]
    return []


def _unguarded(policy: Policy, *, limited: bool, transport: str) -> list[str]:
    """What the set-up leaves unguarded, said where the operator looks (the start-up
    WARNINGs scroll away): no budget anywhere, nobody paged."""
    lines = []
    models = ", ".join(f"`{m}`" for m in sorted(policy.budgets.models))
    if not limited and models:  # budgets per model only (review23 L2)
        lines.append(
            f"⚠️ No budgets for any level: only calls naming {models} (`budgets.models`) are"
            " refused before they start, a call naming another model or none never is (the"
            " spend-rate breaker acts only after money is charged). `/agent budget set"
            " <scope> <amount> day` or `budgets.defaults` in the policy"
        )
    elif not limited:
        lines.append(
            "⚠️ No budgets: nothing refuses a call before it starts (the spend-rate breaker"
            " acts only after money is charged). `/agent budget set <scope> <amount> day`"
            " or `budgets.defaults` in the policy"
        )
    if not policy.breakers.enabled:
        lines.append(DISABLED_BREAKERS)
    if transport != "shell" and not Chain.from_policy(policy).steps:  # whom a page goes to
        lines.append(
            "⚠️ Nobody is paged: there is no on-call rotation nor escalation chain"
            " (`oncall` in the policy); alerts are only posted"
        )
    return lines


def _delivery_line(health: OutboxHealth, ctx: Context, now: float) -> str:
    """How the outbox is doing: what waits, what failed for good, the last error."""
    if health.ok and not health.pending:
        return "Slack delivery: ✅ nothing waiting"
    parts = [f"{health.pending} waiting"]
    if health.oldest_pending_at is not None:
        parts.append(f"oldest since {local_time(health.oldest_pending_at, ctx)}")
    if health.failed:
        parts.append(f"⚠️ {health.failed} failed for good")
    if health.last_error:
        parts.append(f"last error: {health.last_error[:120]}")
    return "Slack delivery: " + " · ".join(parts)
