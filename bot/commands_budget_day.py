"""``/agent budget <scope> yesterday`` (or ``<YYYY-MM-DD>``): what every level down to the
scope, and every child below it, spent on that local day of its namespace (its time zone),
drawn as ``/agent budget <scope>`` draws today, without limits (they are not kept per day).

The reading is :mod:`bot.budget_days`; :func:`children_text` is the children's list both
views share (as many rows as fit, then "… and N more").

Example:
    >>> # /agent budget acme/alice yesterday
"""

from __future__ import annotations

from datetime import date, datetime

from bot.blocks import MAX_TEXT, context, header, section
from bot.budget_days import (
    BadDay,
    DaySpend,
    SpendOfDay,
    day_label,
    first_day,
    namespaces,
    parse_day,
    read_day,
    spent_days_around,
)
from bot.commands import Context, Reply
from bot.escape import no_broadcast
from bot.known_scopes import did_you_mean, meant
from guards.money import usd_for
from guards.scopes import Scope

__all__ = ["budget_day", "children_text", "day_without_scope"]


def children_text(
    scope: str,
    total: int,
    rows: list[str],
    room: int,
    *,
    counted: str = "",
    ranked: str = "that spent and hold most today",
    day_arg: str = "",
) -> str:
    """``*Below <scope>* (<count>)`` and as many child rows as fit in ``room`` characters.

    The children come busiest first; when some are left out, the title says how many
    are shown and a last line how many are not: ``(260; the 40 that spent and hold most today)``
    … ``… and 220 more``. A past day (``day_arg``: the date typed) counts those that spent
    that day: ``(120 that spent that day; the 96 that spent most)``.
    """
    total = max(total, len(rows))

    def title(shown: int) -> str:
        if 0 < shown < total:
            return f"*Below {scope}* ({total}{counted}; the {shown} {ranked})"
        return f"*Below {scope}* ({total}{counted})"

    def more(shown: int) -> str:
        if shown == total:
            return ""
        one = f"`/agent budget {scope}/<name>{day_arg}` shows one"
        return f"\n… and {total - shown} more ({one})"

    ends = [0]
    for row in rows:
        ends.append(ends[-1] + 1 + len(row))
    shown = len(rows)
    while shown and len(title(shown)) + ends[shown] + len(more(shown)) > room:
        shown -= 1
    return title(shown) + "".join("\n" + row for row in rows[:shown]) + more(shown)


def _day_line(spend: DaySpend) -> str:
    """``day  $0.105 spent`` (``+ $0.001 held`` while a hold of that day is open)."""
    usd = usd_for(spend.spent_micros, spend.held_micros)
    held = f" + {usd(spend.held_micros)} held" if spend.held_micros else ""
    return f"`{'day':<5}` {usd(spend.spent_micros)} spent{held}"


def _day_reply(spend: SpendOfDay, *, label: str, so_far: bool) -> Reply:
    """A past day's tree as `/agent budget <scope>` draws today's, without limits."""
    title = f"Spend of {spend.scope} on {label}{' so far' if so_far else ''}"
    note = (
        "no limits drawn: limits are not kept per day"
        f" (`/agent budget {spend.scope}` shows today against them)"
    )
    blocks = [header(title)]
    lines = [f"*Spend of `{spend.scope}` on {label}{' so far' if so_far else ''}*"]
    for level in spend.levels:
        text = f"*{level.scope}* · {level.level}\n{_day_line(level)}"
        blocks.append(section(text))
        lines.append(text)
    rows = [f"• `{c.scope.rsplit('/', 1)[-1]}` {_day_line(c)}" for c in spend.children]
    if rows:
        cut = {
            "counted": " that spent that day",
            "ranked": "that spent most",
            "day_arg": f" {spend.day.isoformat()}",
        }
        total = spend.children_total
        blocks.append(section(children_text(spend.scope, total, rows, MAX_TEXT, **cut)))
        used = sum(len(line) + 1 for line in lines) + len(note) + 3
        lines.append(children_text(spend.scope, total, rows, MAX_TEXT - used, **cut))
    blocks.append(context(note))
    lines.append(f"_{note}_")
    return Reply(text="\n".join(lines), blocks=blocks)


async def budget_day(ctx: Context, scope: Scope, day_text: str) -> Reply:
    """``/agent budget <scope> yesterday`` or ``<YYYY-MM-DD>``: that local day's spend of the
    scope's namespace, every level down to the scope and every child that spent."""
    tz = ctx.ns.ledger.timezone(scope.namespace)
    today = datetime.fromtimestamp(ctx.ns.clock.now(), tz).date()
    try:
        day = parse_day(day_text, today=today, scope=scope.path, tz=tz.key)
    except BadDay as exc:
        return Reply.text_only(no_broadcast(str(exc)))
    spend, first = await ctx.ns.store.read(
        lambda tx: (read_day(tx, scope, day), first_day(tx, scope.namespace))
    )
    label = day_label(day, tz.key)
    if first is not None and day < first:
        return Reply.text_only(
            f"Nightshift has no spend of `{scope.namespace}` before {day_label(first, tz.key)},"
            " the first day it kept: pick that day or a later one."
        )
    if not spend.levels[-1].used:
        return Reply.text_only(await _nothing_spent(ctx, scope, day, label))
    return _day_reply(spend, label=label, so_far=day == today)


async def _nothing_spent(ctx: Context, scope: Scope, day: date, label: str) -> str:
    """``Nothing spent under `acme/x` on …; its last day with spend before that is …``."""
    before, after = await ctx.ns.store.read(lambda tx: spent_days_around(tx, scope.path, day))
    text = f"Nothing spent under `{scope.path}` on {label}"
    if before is not None:
        return f"{text}; its last day with spend before that is {before:%a %Y-%m-%d}."
    if after is not None:
        return f"{text}; its first day with spend is {after:%a %Y-%m-%d}."
    close = await ctx.ns.store.read(lambda tx: meant(ctx.ns.policy, tx, scope.path))
    return f"{text}; no agent under it has ever spent (a typo?).{did_you_mean(close)}"


async def day_without_scope(ctx: Context, day_text: str) -> Reply:
    """``/agent budget yesterday``: a day is a day of one namespace (its time zone), so
    the caller names the scope."""
    names, total = await ctx.ns.store.read(namespaces)
    typed = no_broadcast(day_text[:40])
    if not names:
        return Reply.text_only(f"`budget {typed}` needs a scope, and no agent has spent yet.")
    listed = ", ".join(names) + (f" and {total - len(names)} more" if total > len(names) else "")
    return Reply.text_only(
        f"`budget {typed}` needs a scope: `/agent budget {names[0]} {typed}`"
        f" (namespaces: {listed})."
    )
