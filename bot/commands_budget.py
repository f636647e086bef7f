"""``/agent budget`` and ``budget set``: limit, spent, held and remaining per level and window.

Example:
    >>> # /agent budget acme/alice/rss-bot
    >>> # /agent budget acme/alice yesterday      (or 2026-11-27: every agent's spend that day)
    >>> # /agent budget set acme/alice/rss-bot $5 day
    >>> # /agent budget set acme/alice/rss-bot $50 day for 2h   (then the file's again)
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.render_time import clock_time, duration
from bot.blocks import MAX_TEXT, bar, context, header, section
from bot.budget_days import looks_like_day
from bot.chat_words import join_duration
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_budget_day import budget_day, children_text, day_without_scope
from bot.commands_core import (
    budget_set_already,
    exact_usd,
    is_known_scope,
    local_time,
    parse_amount,
    parse_for,
    parse_scope_arg,
    parse_window,
)
from bot.known_scopes import did_you_mean, meant, unseen
from bot.responders import engine_of
from bot.slack.limits import LIST_TEXT
from guards.errors import InvalidInput
from guards.ledger import Usage
from guards.money import usd_for
from guards.scopes import Scope
from guards.store import Tx

__all__ = ["cmd_budget", "window_line"]


MAX_NAMESPACES = 40  # namespaces in `/agent budget` (one section each; Slack allows 50 blocks)

BACK_TO_POLICY = ("default", "policy")  # `budget set <scope> default <window>`
_LEAD_GROUP = re.compile(r"\$?\d{1,3}")
_GROUP = re.compile(r"\d{3}(\.\d+)?")


def _one_amount(args: list[str]) -> list[str]:
    """``acme 1 000 day`` as ``acme 1000 day``: an amount typed with a space (any Unicode
    space: a thin one, say) between its groups of three digits is one amount."""
    groups = args[1:-1]
    if (
        len(groups) > 1
        and _LEAD_GROUP.fullmatch(groups[0])
        and all(_GROUP.fullmatch(g) for g in groups[1:])
        and all("." not in g for g in groups[1:-1])
    ):
        return [args[0], "".join(groups), args[-1]]
    return args


async def _budget_default(ctx: Context, scope: Scope, window: str) -> Reply:
    """Drop the limit set in Slack: the policy file's applies again."""
    engine = engine_of(ctx)

    def apply(tx: Tx) -> tuple[int, int | None] | None:
        cleared = ctx.ns.ledger.clear_limit(tx, scope=scope.path, window=window, actor=ctx.actor)
        if cleared is not None:
            engine.budget_changed(tx, scope=scope.path)
        return cleared

    cleared = await ctx.ns.store.write(apply)
    policy = ctx.ns.ledger.policy_limits(scope.path).get(window)
    if cleared is None:
        follows = exact_usd(policy)(policy) if policy is not None else "no limit"
        return Reply.text_only(
            f"No *{window}* budget of `{scope.path}` was set in Slack: it follows the"
            f" policy file ({follows}). Nothing changed."
        )
    before, after = cleared
    usd = exact_usd(before, after)
    now = usd(after) if after is not None else "no limit"
    return Reply.text_only(
        f"↩️ <@{ctx.user_id}> set the *{window}* budget of `{scope.path}` back to the"
        f" policy file's: *{now}* (was {usd(before)})",
        ephemeral=False,
    )


def window_line(window: str, u: dict[str, Any]) -> str:
    """One window of one level, e.g. ``day ▓▓▓▓░░░░░░ 42% · $4.20 of $10.00 · $5.50 left``.

    Amounts are in cents unless one of them is not a whole cent: then every digit
    shows (``$0.001 held``), so a hold or a spend is never rendered as ``$0.00``.
    """
    spent, held, limit = u["spent_micros"], u["held_micros"], u["limit_micros"]
    left = u["remaining_micros"] or 0
    usd = usd_for(spent, held, left, *([] if limit is None else [limit]))
    name = f"`{window:<5}`"
    held_note = f" + {usd(held)} held" if held else ""
    if limit is None:
        return f"{name} no limit · {usd(spent)} spent{held_note}"
    used = spent + held
    pct = min(999, round(100 * used / limit)) if limit else 100
    return (
        f"{name} {bar(used / limit if limit else 1.0)} {pct}% · {usd(spent)}{held_note}"
        f" of {usd(limit)} · {usd(left)} left"
    )


def _tightest(windows: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    limited = [(w, u) for w, u in windows.items() if u["limit_micros"]]
    if limited:
        return max(
            limited,
            key=lambda wu: (wu[1]["spent_micros"] + wu[1]["held_micros"]) / wu[1]["limit_micros"],
        )
    return ("day", windows.get("day") or next(iter(windows.values())))


def _ends(ctx: Context, tx: Tx, scope: Scope) -> dict[tuple[str, str], str]:
    """`` · until 05:12, then $10.00`` for each level's window whose limit was set in Slack
    for a while (recheck28 L2: the tree showed it as a limit for good)."""
    levels = set(scope.ancestors())
    out = {}
    for r in ctx.ns.ledger.run_time_overrides(tx, under=scope.namespace):
        if r.until is None or r.scope not in levels:
            continue
        then = exact_usd(r.policy)(r.policy) if r.policy is not None else "no limit"
        out[(r.scope, r.window)] = f" · until {local_time(ctx, r.until)}, then {then}"
    return out


def _tree_reply(tree: dict[str, Any], ends: dict[tuple[str, str], str] | None = None) -> Reply:
    blocks = [
        header(f"Budget: {tree['scope']}"),
        context(f"windows follow {tree['timezone']} · most restrictive level governs"),
    ]
    lines = [f"*Budget: {tree['scope']}*"]
    for level in tree["levels"]:
        body = "\n".join(
            window_line(w, u) + (ends or {}).get((level["scope"], w), "")
            for w, u in level["windows"].items()
        )
        text = f"*{level['scope']}* · {level['level']}\n{body}"
        blocks.append(section(text))
        lines.append(text)
    if models := _models_text(tree["scope"], tree.get("models") or []):
        blocks.append(section(models))
        lines.append(models)
    rows = []
    for child in tree["children"]:
        if not child["windows"]:
            continue
        window, u = _tightest(child["windows"])
        rows.append(f"• `{child['scope'].rsplit('/', 1)[-1]}` {window_line(window, u)}")
    if rows:
        total = int(tree.get("children_total", len(rows)))
        blocks.append(section(children_text(tree["scope"], total, rows, MAX_TEXT)))
        # The plain text holds the levels too and is cut at MAX_TEXT as a whole: fewer rows.
        used = sum(len(line) + 1 for line in lines)
        lines.append(children_text(tree["scope"], total, rows, MAX_TEXT - used))
    return Reply(text="\n".join(lines), blocks=blocks)


def _models_text(scope: str, models: list[dict[str, Any]]) -> str:
    """The scope's namespace's budgets per model (``budgets.models``; they refuse its
    agents' calls too), each model's tightest window:
    ``• `claude-opus-4-1` `day  ` ▓▓▓░░░░░░░ 30% · $15.00 of $50.00 · $35.00 left``."""
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for m in models:
        by_model.setdefault(str(m["model"]), {})[str(m["window"])] = m
    rows = [
        f"• `{model}` {window_line(*_tightest(windows))}" for model, windows in by_model.items()
    ]
    namespace = scope.partition("/")[0]
    where = "" if namespace == scope else f" in {namespace}"
    head = f"*Per model{where}* (`budgets.models` in the policy)"
    return head + "\n" + "\n".join(rows) if rows else ""


def _namespaces(ctx: Context, tx: Tx) -> tuple[list[dict[str, Any]], int]:
    """The :data:`MAX_NAMESPACES` namespaces that spent + hold most today, and how many exist."""
    known = {r[0] for r in tx.all("SELECT path FROM scopes WHERE depth = 1")}
    known.update(p for p in ctx.ns.policy.budgets.scopes if "/" not in p)
    now = tx.clock.now()
    out = []
    for path in known:
        usages: list[Usage] = ctx.ns.ledger.usage(tx, Scope(path), now=now)
        out.append({"scope": path, "windows": {u.window: u.as_json() for u in usages}})

    def busiest_first(ns: dict[str, Any]) -> tuple[int, str]:
        day = ns["windows"]["day"]
        return -(day["spent_micros"] + day["held_micros"]), ns["scope"]

    return sorted(out, key=busiest_first)[:MAX_NAMESPACES], len(known)


@subcommand(
    "budget",
    usage="budget [scope] · budget <scope> <yesterday|YYYY-MM-DD>"
    " · budget set <scope> <amount|default> <day|week|month|total> [for <duration>]",
)
async def cmd_budget(ctx: Context, args: list[str]) -> Reply:
    """Limit, spent, held and remaining per level and window, with bars; with a day, what
    each level and child spent that local day; `set` changes a limit."""
    if args and args[0].lower() == "set":
        return await _budget_set(ctx, args[1:])
    if len(args) > 2:
        raise UsageError("`budget` takes a scope and a day at most")
    if len(args) == 2:
        scope_text, day_text = args
        if looks_like_day(scope_text) and not looks_like_day(day_text):  # `yesterday acme`
            scope_text, day_text = day_text, scope_text
        if not any(c.isdigit() for c in day_text) and not looks_like_day(day_text):
            # a word, not a date typed wrong: `acme/al ice` is a scope with a space in it
            raise UsageError(f"`budget {scope_text}` takes `yesterday` or a date as YYYY-MM-DD")
        return await budget_day(ctx, parse_scope_arg(scope_text), day_text)
    if not args:
        return await _budget_overview(ctx)
    if args[0].lower() != "today" and looks_like_day(args[0]):
        return await day_without_scope(ctx, args[0])
    scope = parse_scope_arg(args[0])

    def read(tx: Tx) -> tuple[dict[str, Any], bool, dict[tuple[str, str], str]]:
        tree = ctx.ns.ledger.usage_tree(tx, scope)
        return tree, is_known_scope(ctx, tx, scope.path), _ends(ctx, tx, scope)

    tree, known, ends = await ctx.ns.store.write(read)
    reply = _tree_reply(tree, ends)
    if not known:
        close = await ctx.ns.store.read(lambda tx: meant(ctx.ns.policy, tx, scope.path))
        note = f"_{unseen(scope.path)}; the limits shown are what it would get._"
        note += did_you_mean(close)
        reply = Reply(text=f"{reply.text}\n{note}", blocks=[*reply.blocks, context(note)])
    return reply


async def _budget_overview(ctx: Context) -> Reply:
    """``/agent budget``: every namespace (the busiest today first when they do not all fit)."""
    spaces, total = await ctx.ns.store.write(lambda tx: _namespaces(ctx, tx))
    if not spaces:
        return Reply.text_only(
            "No budgets or agent activity yet. Agents appear with their first reservation;"
            " limits come from the policy file or `/agent budget set`."
        )
    rows: list[str] = []
    room = LIST_TEXT
    for ns in spaces:  # as many as one Slack message takes: 40, or fewer long ones
        body = "\n".join(window_line(w, u) for w, u in ns["windows"].items())
        row = f"*{ns['scope']}*\n{body}"
        if len(row) > room:
            break
        rows.append(row)
        room -= len(row)
    shown = (
        f"{total}; the {len(rows)} that spent and hold most today; " if len(rows) < total else ""
    )
    lines = [f"*Budgets by namespace* ({shown}details: `/agent budget <scope>`)", *rows]
    if len(rows) < total:
        lines.append(f"… and {total - len(rows)} more namespaces (`/agent budget <namespace>`)")
    return Reply(text="\n".join(lines), blocks=[section(line) for line in lines])


def _for_a_while(args: list[str]) -> tuple[list[str], int | None]:
    """``… for 2h`` (``2 hours``, ``90min``) off the end of ``budget set``'s words: (the
    rest, the seconds)."""
    lowered = [a.lower() for a in args]
    if "for" not in lowered[1:]:
        return args, None
    i = len(lowered) - 1 - lowered[::-1].index("for")
    joined = join_duration(args, i + 1)
    if len(joined) != i + 2:
        raise UsageError("`for` takes one duration at the end, like `for 2h` or `for 1d`")
    try:
        return joined[:i], parse_for(joined[i + 1])
    except InvalidInput as exc:
        raise UsageError(f"`for` takes {exc.message}") from None


async def _budget_set(ctx: Context, args: list[str]) -> Reply:
    await ctx.require_admin("change budgets")  # first: a refusal is audited, typo or not
    args, seconds = _for_a_while(args)
    args = _one_amount(args)
    if len(args) != 3:
        raise UsageError(
            "`budget set` needs a scope, an amount (or `default`) and a window,"
            " and then `for <duration>` if it is for a while"
        )
    scope = parse_scope_arg(args[0])
    try:
        window = parse_window(args[2])
        if args[1].lower() in BACK_TO_POLICY:
            if seconds is not None:
                raise UsageError("`default` is for good: `for` goes with an amount")
            return await _budget_default(ctx, scope, window)
        micros = parse_amount(args[1])
    except InvalidInput as exc:
        raise UsageError(exc.message) from None

    engine = engine_of(ctx)

    def apply(tx: Tx) -> tuple[int | None, bool, float | None] | tuple[str, bool]:
        known = is_known_scope(ctx, tx, scope.path)
        same = budget_set_already(
            tx, scope=scope.path, window=window, micros=micros, seconds=seconds
        )
        if same is not None:
            return same, known  # nothing to write, announce or audit (audit27 B2 L3)
        until = tx.clock.now() + seconds if seconds is not None else None
        limit = ctx.ns.ledger.set_limit(
            tx, scope=scope.path, window=window, limit_micros=micros, actor=ctx.actor, until=until
        )
        engine.budget_changed(tx, scope=scope.path)  # its alerts resolve, or show the change
        return limit, known, until

    done = await ctx.ns.store.write(apply)
    if len(done) == 2:
        same, seen = done
        return Reply.text_only(await _typo_first(ctx, scope, seen, same))
    before, known, until = done
    policy = ctx.ns.ledger.policy_limits(scope.path).get(window)
    usd = exact_usd(micros, before, policy)
    was = usd(before) if before is not None else "no limit"
    text = (
        f"✏️ <@{ctx.user_id}> set the *{window}* budget of `{scope.path}`"
        f" to *{usd(micros)}* (was {was})"
    )
    if until is not None:
        assert seconds is not None
        tz = ZoneInfo(ctx.ns.policy.timezone)
        ends = clock_time(until, tz, now=ctx.ns.clock.now())
        then = f"the policy file's {usd(policy)}" if policy is not None else "no limit"
        text += (
            f" for {duration(seconds)}, until {ends}; then {then} applies again"
            " (the alerts channel is told)."
        )
    elif policy is not None and policy != micros:  # the file says otherwise: which one wins
        text += (
            f"\nIt overrides the policy file's {usd(policy)}, restarts included, until"
            f" `/agent budget set {scope.path} default {window}`."
        )
    return Reply.text_only(await _typo_first(ctx, scope, known, text), ephemeral=False)


async def _typo_first(ctx: Context, scope: Scope, known: bool, text: str) -> str:
    """``text``, after a warning when no agent has used ``scope`` (a typo?), as the kill
    switch says it."""
    if known:
        return text
    close = await ctx.ns.store.read(lambda tx: meant(ctx.ns.policy, tx, scope.path))
    return (
        f"⚠️ {unseen(scope.path)}: it holds for the agents that come under it."
        f"{did_you_mean(close)}\n{text}"
    )
