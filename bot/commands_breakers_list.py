"""``/agent breakers [all] [scope]``: the breakers that are not closed (every one with
``all``), those a person must act on first, as many as one reply holds.

A scope narrows the list to its subtree, with the breakers above it and the models'
(they refuse its calls too), as ``GET /v1/breakers`` does for a token of that node. The
"… and N more breakers" line names the scopes the others are under, with their counts
(:mod:`bot.narrowing`), so every breaker of a fleet is reachable from Slack. The plain
text (the notification, and the fallback) lists the same breakers, one line each, and
says the same count (audit26 client L4): each with its details when they all fit in
3,000 characters, else each on its first line.

Example:
    >>> # /agent breakers                 -> breakers that are not closed
    >>> # /agent breakers all acme/alice  -> every breaker of acme/alice, and above it
"""

from __future__ import annotations

from typing import Any

from bot.alerts.fleet import DISABLED_BREAKERS
from bot.alerts.render import trial_request_value
from bot.blocks import MAX_TEXT, actions, button, context, section
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_core import is_known_scope, local_time
from bot.escape import operator_mentions, slack_text
from bot.known_scopes import did_you_mean, meant, unseen
from bot.narrowing import names_scopes, scope_to_narrow, skip_of, unused_skip, where
from bot.slack.limits import BLOCKS_TEXT, LIST_TEXT, SECTION_TEXT, text_chars
from guards.breaker import CLOSED, FORCED_OPEN, HALF_OPEN, HALF_OPEN_PENDING, OPEN
from guards.breakers import BreakerRow
from guards.config_types import format_seconds
from guards.money import usd_for
from guards.store import Tx
from guards.words import plural

__all__ = ["STATE_WORDS", "breaker_line", "cmd_breakers"]

STATE_ICONS = {
    OPEN: "🔴",
    HALF_OPEN_PENDING: "🟡",
    HALF_OPEN: "🟠",
    FORCED_OPEN: "⛔",
    CLOSED: "🟢",
}
STATE_WORDS = {
    OPEN: "open",
    HALF_OPEN_PENDING: "waiting for a trial approval",
    HALF_OPEN: "trial running",
    FORCED_OPEN: "forced open",
    CLOSED: "closed",
}
MAX_LISTED = 40
MAX_BLOCKS_USED = 48  # a waiting trial takes two blocks (its line and its buttons)
MORE_ROOM = 700  # characters of the text kept at least for "… and N more breakers"
MARGIN = 50  # characters of the blocks' budget (BLOCKS_TEXT) left unused
# What needs a human first: a trial to approve (its buttons), then breakers that trip
# on their own, running trials, kill switches (someone's on purpose), closed ones.
LIST_ORDER = {HALF_OPEN_PENDING: 0, OPEN: 1, HALF_OPEN: 2, FORCED_OPEN: 3, CLOSED: 4}
USAGE_HINT = "`/agent breaker <scope> approve|open|close`"
_BREAKERS_UNDER = "SELECT 1 FROM breakers WHERE key = ? OR key GLOB ? LIMIT 1"


def breaker_line(ctx: Context, row: BreakerRow) -> str:
    """One breaker on two short lines, readable on a phone."""
    icon = STATE_ICONS.get(row.state, "•")
    head = f"{icon} *{slack_text(row.scope)}* {STATE_WORDS.get(row.state, row.state)}"
    if row.state != CLOSED and row.since:
        head += f" since {local_time(ctx, row.since)}"
    details: list[str] = []
    if row.state != CLOSED and row.reason:  # a kill switch's reason, an agent's task id
        details.append(operator_mentions(slack_text(row.reason)))
    if row.trial:
        t = row.trial
        usd = usd_for(t["charged_micros"], t["budget_micros"])  # not "$0.00" for $0.004
        details.append(
            f"trial {t['admitted']}/{plural(t['calls'], 'call')}, {t['succeeded']} ok,"
            f" {usd(t['charged_micros'])} of {usd(t['budget_micros'])}"
        )
    if row.state == OPEN and row.retry_after:
        details.append(f"cool-down ends in {format_seconds(row.retry_after)}")
    if row.state == CLOSED and row.recent_calls:
        failures = "failure" if row.recent_failures == 1 else "failures"
        details.append(
            f"{row.recent_failures} {failures} in the last {plural(row.recent_calls, 'call')}"
        )
    return head + (f"\n      {' · '.join(details)}" if details else "")


def _trial_buttons(row: BreakerRow) -> dict[str, Any]:
    request = trial_request_value(row.scope, row.since or 0.0)
    return actions(
        button("Approve trial", "breaker_approve", request, style="primary"),
        button("Keep open", "breaker_keep_open", request, style="danger"),
        block_id=f"breaker:{row.scope}"[:255],
    )


def _parse(args: list[str]) -> tuple[bool, str | None, int]:
    """``[all] [scope] [+N]`` (``all`` before or after the scope): whether closed ones are
    listed, the scope, and how many scopes the hint passes over (:func:`skip_of`)."""
    words, skip = skip_of(list(args), command="breakers")
    if len(words) > 2:
        raise UsageError("`breakers` takes `all` and one scope at most")
    include_closed = bool(words) and words[0].lower() == "all"  # `all all`: the scope `all`
    if include_closed:
        words.pop(0)
    elif len(words) == 2 and words[1].lower() == "all":  # `breakers acme all`
        words.pop()
        include_closed = True
    if len(words) > 1:
        raise UsageError("`breakers` takes `all` and one scope at most")
    within = scope_to_narrow(words[0], command="breakers") if words else None
    return include_closed, within, skip


def _unknown(ctx: Context, tx: Tx, scope: str) -> str | None:
    """Why ``breakers <scope>`` shows nothing to look at (None: the scope is known): no
    agent used it, the policy does not name it, and no breaker is kept under it (a kill
    switch pulled on a typo is kept: then it is listed)."""
    if is_known_scope(ctx, tx, scope) or tx.one(_BREAKERS_UNDER, (scope, scope + "/*")):
        return None
    close = meant(ctx.ns.policy, tx, scope)
    again = f" (`/agent breakers {close}`)" if close else ""
    return f"{unseen(scope)}, and no breaker is kept under it.{did_you_mean(close)}{again}"


@subcommand("breakers", usage="breakers [all] [scope]")
async def cmd_breakers(ctx: Context, args: list[str]) -> Reply:
    """Breakers that are not closed; `breakers all` lists every one; a scope narrows the
    list to it and what is above it: `breakers acme/alice`, `breakers all acme/alice`; a cut
    list's hint gives `+N` to name more scopes."""
    include_closed, within, skip = _parse(args)
    if (scope := within) is not None:  # off the writer: the suggestion reads every scope
        unknown = await ctx.ns.store.read(lambda tx: _unknown(ctx, tx, scope))
        if unknown is not None:
            raise UsageError(unknown)
    rows = await ctx.ns.store.write(
        lambda tx: ctx.ns.breakers.list(tx, include_closed, within=within)
    )
    rows.sort(key=lambda r: LIST_ORDER.get(r.state, len(LIST_ORDER)))  # by key within a state
    disabled = [] if ctx.ns.policy.breakers.enabled else [DISABLED_BREAKERS]
    if not rows:
        _check_skip(rows, shown=0, skip=skip, within=within, include_closed=include_closed)
        clear = "🟢 Every breaker is closed: all agents may call."
        if within is not None:
            clear = (
                f"🟢 No breaker holds `{slack_text(within)}`: its own, those above it and"
                " the models' are closed."
            )
        return Reply.text_only("\n".join([*disabled, clear]))
    not_closed = sum(1 for r in rows if r.state != CLOSED)
    of = f" of `{slack_text(within)}` and above it" if within is not None else ""
    title = f"*Breakers*{of} — {not_closed} not closed" + (
        f" of {len(rows)}" if include_closed else ""
    )
    title += _by_state(rows)
    head = [title, *disabled, USAGE_HINT]
    # the count and the usage hint first, then as many rows as the block budget holds
    blocks: list[dict[str, Any]] = [section(title), *map(context, disabled), context(USAGE_HINT)]
    lines: list[str] = []  # the rows in the blocks, as they show them
    firsts: list[str] = []  # and their first lines: what the text lists when they do not fit
    budget = MAX_BLOCKS_USED - len(blocks) - 1  # one left for "… and N more breakers"
    room = LIST_TEXT  # and the characters one Slack message takes
    text_room = MAX_TEXT - sum(len(line) + 1 for line in head) - MORE_ROOM
    for row in rows[:MAX_LISTED]:
        line = breaker_line(ctx, row)
        first = line.split("\n", 1)[0]
        row_blocks = [section(line)]
        if row.state == HALF_OPEN_PENDING:
            row_blocks.append(_trial_buttons(row))  # a waiting trial: its buttons, one block more
        size = text_chars(row_blocks)
        if len(row_blocks) > budget or size > room or len(first) + 1 > text_room:
            break
        budget -= len(row_blocks)
        room -= size
        text_room -= len(first) + 1
        blocks += row_blocks
        lines.append(line)
        firsts.append(first)
    _check_skip(rows, shown=len(lines), skip=skip, within=within, include_closed=include_closed)
    if len(lines) == len(rows):  # the same rows as the blocks, one line each if need be
        text = "\n".join([*head, *lines])
        return Reply(
            text=text if len(text) <= MAX_TEXT else "\n".join([*head, *firsts]), blocks=blocks
        )

    def more(room: int) -> str:
        return _more(
            rows,
            shown=len(lines),
            within=within,
            include_closed=include_closed,
            skip=skip,
            room=room,
        )

    # every scope that fits in the context block and in what is left of the message
    tail = more(min(SECTION_TEXT, BLOCKS_TEXT - text_chars(blocks) - MARGIN))
    blocks.append(context(tail))
    # the text: the same rows (their first lines when the details do not fit) and count,
    # and the same hint when it fits, else one naming fewer scopes (its `+N` goes on)
    body = [*head, *lines]
    if len("\n".join([*body, tail])) > MAX_TEXT:
        body = [*head, *firsts]
    text = "\n".join(body)
    if len(text) + 1 + len(tail) > MAX_TEXT:
        tail = more(MAX_TEXT - len(text) - 1)
    text += "\n" + tail
    return Reply(text=text, blocks=blocks)


def _check_skip(
    rows: list[BreakerRow], *, shown: int, skip: int, within: str | None, include_closed: bool
) -> None:
    """Refuse a ``+N`` (UsageError) unless the "… and N more" line of a list showing
    ``shown`` rows names scopes to pass over: never when the list is empty or whole
    (recheck26 Kc L1: the ``+N`` was dropped without a word), nor when one scope holds
    what it leaves out (the line says "narrows" then)."""
    if not skip:
        return
    among = [r.scope for r in rows]
    if names_scopes(among[shown:], among=among, within=within):
        return
    command = "/agent breakers all" if include_closed else "/agent breakers"
    again = command + (f" {slack_text(within)}" if within is not None else "")
    raise unused_skip(skip, again=again, example=f"{command} +N")


def _more(
    rows: list[BreakerRow],
    *,
    shown: int,
    within: str | None,
    include_closed: bool,
    skip: int,
    room: int,
) -> str:
    """``… and 21 more breakers``, how many of them wait for a person, and the scopes they
    are under (as many as the line's ``room`` characters hold, the rest by a ``+N``)."""
    hidden = rows[shown:]
    more = f"… and {len(hidden)} more breaker{'s' if len(hidden) != 1 else ''}"
    waiting = sum(1 for r in hidden if r.state == HALF_OPEN_PENDING)
    if waiting:  # a person is waited for: say where those are (their alerts have buttons)
        more += (
            f", {waiting} of them waiting for a trial approval"
            " (approve with `/agent breaker <scope> approve`, or the buttons on their alerts)"
        )
    command = "/agent breakers all" if include_closed else "/agent breakers"
    again = command + (f" {within}" if within is not None else "")
    lists = f": `{command} <scope>` lists one"
    under = where(
        [r.scope for r in hidden],
        among=[r.scope for r in rows],
        within=within,
        again=again,
        skip=skip,
        room=room - len(more) - len(" · under ") - len(lists),
    )
    if under is None:
        return f"{more} · `{command} <scope>` narrows"
    return f"{more} · under {under}{lists}"


def _by_state(rows: list[BreakerRow]) -> str:
    """`` (12 waiting for a trial approval · 3 open)``: the count of each state not closed,
    in the listing's order; nothing when only one state is there."""
    counts: dict[str, int] = {}
    for row in rows:
        if row.state != CLOSED:
            counts[row.state] = counts.get(row.state, 0) + 1
    if len(counts) < 2:
        return ""
    return " (" + " · ".join(f"{n} {STATE_WORDS.get(s, s)}" for s, n in counts.items()) + ")"
