"""Core ``/agent`` subcommands: help, budget, budget set; the Raise budget modal.

Example:
    >>> # /agent budget acme/alice/rss-bot
    >>> # /agent budget set acme/alice/rss-bot $5 day
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.messages import BUDGET_KINDS
from bot.alerts.model import ALERT_COLUMNS, Alert
from bot.alerts.render import wall_time
from bot.commands import (
    MAX_TEXT,
    ActionResult,
    Context,
    Reply,
    UsageError,
    action,
    bar,
    context,
    header,
    help_reply,
    section,
    subcommand,
)
from bot.known_scopes import close_scope, did_you_mean, known_scope, seen_scope, unseen
from bot.raise_form import RaiseForm, StaleForm, limit_changed
from bot.responders import engine_of, resolved_words
from bot.slack.limits import LIST_TEXT
from guards.config import WINDOWS
from guards.errors import InvalidInput
from guards.ledger import Usage
from guards.money import parse_usd, usd_for
from guards.scopes import Scope, ScopeError
from guards.store import Tx

__all__ = [
    "VIEW_SUBMISSIONS",
    "budget_raise_view",
    "by_whom",
    "clock_time",
    "is_known_scope",
    "parse_scope_arg",
    "seen_scope",
    "submit_budget_raise",
    "unseen",
]

MAX_NAMESPACES = 40  # namespaces in `/agent budget` (one section each; Slack allows 50 blocks)
BUDGET_RAISE_MODAL = "budget_raise_modal"


# -- shared helpers -----------------------------------------------------------------------


def clock_time(ctx: Context, ts: float | None = None) -> str:
    """``03:17`` in the policy's time zone (with the date when it is not today)."""
    tz = ZoneInfo(ctx.ns.policy.timezone)
    now = datetime.fromtimestamp(ctx.ns.clock.now(), tz=tz)
    when = datetime.fromtimestamp(ts if ts is not None else ctx.ns.clock.now(), tz=tz)
    return wall_time(when, "%H:%M" if when.date() == now.date() else "%b %d %H:%M")


def by_whom(ctx: Context) -> str:
    """``by <@U1> at 03:17``: the tail of every "done" line."""
    return f"by <@{ctx.user_id}> at {clock_time(ctx)}"


def parse_scope_arg(text: str, *, min_depth: int = 1) -> Scope:
    try:
        return Scope.parse(text, min_depth=min_depth)
    except ScopeError as exc:
        raise UsageError(str(exc)) from None


def _parse_amount(text: str) -> int:
    try:
        micros = parse_usd(text)
    except ValueError as exc:
        said = str(exc) if len(text) <= 40 else f"{text[:40]!r}… is not an amount in USD"
        raise InvalidInput("amount", said) from None  # (it names the text: once is enough)
    return micros


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
        follows = _exact(policy)(policy) if policy is not None else "no limit"
        return Reply.text_only(
            f"No *{window}* budget of `{scope.path}` was set in Slack: it follows the"
            f" policy file ({follows}). Nothing changed."
        )
    before, after = cleared
    usd = _exact(before, after)
    now = usd(after) if after is not None else "no limit"
    return Reply.text_only(
        f"↩️ <@{ctx.user_id}> set the *{window}* budget of `{scope.path}` back to the"
        f" policy file's: *{now}* (was {usd(before)})",
        ephemeral=False,
    )


def _parse_window(text: str) -> str:
    window = text.lower()
    if window not in WINDOWS:
        raise InvalidInput(
            "window", f"the window is one of {', '.join(WINDOWS)}, not {text[:20]!r}"
        )
    return window


# -- help -------------------------------------------------------------------------------


@subcommand("help", usage="help")
async def cmd_help(ctx: Context, args: list[str]) -> Reply:
    """Lists the subcommands."""
    return help_reply()


# -- budget -----------------------------------------------------------------------------


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


def _children_text(tree: dict[str, Any], rows: list[str], room: int) -> str:
    """``*Below <scope>* (<count>)`` and as many child rows as fit in ``room`` characters.

    The children come busiest first; when some are left out, the title says how many
    are shown and a last line how many are not: ``(260; the 40 that spent and hold most today)``
    … ``… and 220 more``.
    """
    scope = tree["scope"]
    total = max(int(tree.get("children_total", len(rows))), len(rows))

    def title(shown: int) -> str:
        if 0 < shown < total:
            return f"*Below {scope}* ({total}; the {shown} that spent and hold most today)"
        return f"*Below {scope}* ({total})"

    def more(shown: int) -> str:
        if shown == total:
            return ""
        return f"\n… and {total - shown} more (`/agent budget {scope}/<name>` shows one)"

    ends = [0]
    for row in rows:
        ends.append(ends[-1] + 1 + len(row))
    shown = len(rows)
    while shown and len(title(shown)) + ends[shown] + len(more(shown)) > room:
        shown -= 1
    return title(shown) + "".join("\n" + row for row in rows[:shown]) + more(shown)


def _tree_reply(tree: dict[str, Any]) -> Reply:
    blocks = [
        header(f"Budget: {tree['scope']}"),
        context(f"windows follow {tree['timezone']} · most restrictive level governs"),
    ]
    lines = [f"*Budget: {tree['scope']}*"]
    for level in tree["levels"]:
        body = "\n".join(window_line(w, u) for w, u in level["windows"].items())
        text = f"*{level['scope']}* · {level['level']}\n{body}"
        blocks.append(section(text))
        lines.append(text)
    rows = []
    for child in tree["children"]:
        if not child["windows"]:
            continue
        window, u = _tightest(child["windows"])
        rows.append(f"• `{child['scope'].rsplit('/', 1)[-1]}` {window_line(window, u)}")
    if rows:
        blocks.append(section(_children_text(tree, rows, MAX_TEXT)))
        # The plain text holds the levels too and is cut at MAX_TEXT as a whole: fewer rows.
        used = sum(len(line) + 1 for line in lines)
        lines.append(_children_text(tree, rows, MAX_TEXT - used))
    return Reply(text="\n".join(lines), blocks=blocks)


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
    "budget", usage="budget [scope] · budget set <scope> <amount|default> <day|week|month|total>"
)
async def cmd_budget(ctx: Context, args: list[str]) -> Reply:
    """Limit, spent, held and remaining per level and window, with bars; `set` changes one."""
    if args and args[0].lower() == "set":
        return await _budget_set(ctx, args[1:])
    if len(args) > 1:
        raise UsageError("`budget` takes at most one scope")
    if not args:
        return await _budget_overview(ctx)
    scope = parse_scope_arg(args[0])

    def read(tx: Tx) -> tuple[dict[str, Any], bool]:
        return ctx.ns.ledger.usage_tree(tx, scope), is_known_scope(ctx, tx, scope.path)

    tree, known = await ctx.ns.store.write(read)
    reply = _tree_reply(tree)
    if not known:
        close = await ctx.ns.store.read(lambda tx: close_scope(tx, scope.path))
        note = f"_{unseen(scope.path)}; the limits shown are what it would get._"
        note += did_you_mean(close)
        reply = Reply(text=f"{reply.text}\n{note}", blocks=[*reply.blocks, context(note)])
    return reply


def is_known_scope(ctx: Context, tx: Tx, path: str) -> bool:
    """Has Nightshift seen ``path``, or does the policy name it (:func:`known_scope`)?"""
    return known_scope(ctx.ns.policy, tx, path)


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


async def _budget_set(ctx: Context, args: list[str]) -> Reply:
    await ctx.require_admin("change budgets")  # first: a refusal is audited, typo or not
    args = _one_amount(args)
    if len(args) != 3:
        raise UsageError("`budget set` needs a scope, an amount (or `default`) and a window")
    scope = parse_scope_arg(args[0])
    try:
        window = _parse_window(args[2])
        if args[1].lower() in BACK_TO_POLICY:
            return await _budget_default(ctx, scope, window)
        micros = _parse_amount(args[1])
    except InvalidInput as exc:
        raise UsageError(exc.message) from None

    engine = engine_of(ctx)

    def apply(tx: Tx) -> tuple[int | None, bool]:
        known = is_known_scope(ctx, tx, scope.path)
        limit = ctx.ns.ledger.set_limit(
            tx, scope=scope.path, window=window, limit_micros=micros, actor=ctx.actor
        )
        engine.budget_changed(tx, scope=scope.path)  # its alerts resolve, or show the change
        return limit, known

    before, known = await ctx.ns.store.write(apply)
    policy = ctx.ns.ledger.policy_limits(scope.path).get(window)
    usd = _exact(micros, before, policy)
    was = usd(before) if before is not None else "no limit"
    text = (
        f"✏️ <@{ctx.user_id}> set the *{window}* budget of `{scope.path}`"
        f" to *{usd(micros)}* (was {was})"
    )
    if policy is not None and policy != micros:  # the file says otherwise: which one wins
        text += (
            f"\nIt overrides the policy file's {usd(policy)}, restarts included, until"
            f" `/agent budget set {scope.path} default {window}`."
        )
    if not known:  # said first, as the kill switch says it (a typo?)
        close = await ctx.ns.store.read(lambda tx: close_scope(tx, scope.path))
        text = (
            f"⚠️ {unseen(scope.path)}: it holds for the agents that come under it."
            f"{did_you_mean(close)}\n{text}"
        )
    return Reply.text_only(text, ephemeral=False)


# -- amounts -----------------------------------------------------------------------------


def _exact(*amounts: int | None) -> Callable[[int], str]:
    """Dollars as they are (``$2.505``, ``$0.004``), in cents when every amount is whole
    cents: a limit is shown as it was set, never rounded (:func:`usd_for`)."""
    return usd_for(*(a for a in amounts if a is not None))


# -- Raise budget button and modal ----------------------------------------------------------


def budget_raise_view(
    scope: str, limits: dict[str, int], window: str | None = None
) -> dict[str, Any]:
    """The modal of the Raise budget button: amount and window, for one scope.

    The window starts on ``window`` (the one that refused the call), else on the only
    window with a limit, else on ``day``.
    """
    current = ", ".join(f"{w} {_exact(v)(v)}" for w, v in limits.items()) or "no limits"
    options = [{"text": {"type": "plain_text", "text": w}, "value": w} for w in WINDOWS]
    if window not in WINDOWS:
        window = next(iter(limits)) if len(limits) == 1 else WINDOWS[0]
    initial = options[WINDOWS.index(window)]
    return {
        "type": "modal",
        "callback_id": BUDGET_RAISE_MODAL,
        "private_metadata": RaiseForm(scope, dict(limits)).encode(),  # what it showed
        "title": {"type": "plain_text", "text": "Raise budget"},
        "submit": {"type": "plain_text", "text": "Raise"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"*{scope}*\nnow: {current}"),
            {
                "type": "input",
                "block_id": "amount",
                "label": {"type": "plain_text", "text": "New limit (USD)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "amount",
                    "placeholder": {"type": "plain_text", "text": "e.g. 10.00"},
                },
            },
            {
                "type": "input",
                "block_id": "window",
                "label": {"type": "plain_text", "text": "Window"},
                "element": {
                    "type": "static_select",
                    "action_id": "window",
                    "initial_option": initial,
                    "options": options,
                },
            },
        ],
    }


@action("budget_raise")
async def act_budget_raise(ctx: Context, value: str) -> ActionResult:
    """Raise budget: admins get the modal (the value is the scope, then the window)."""
    text, _, window = value.partition(" ")
    try:
        scope = Scope.parse(text)
    except ScopeError as exc:
        return ActionResult(ephemeral=f"This button names a bad scope: {exc}")
    await ctx.require_admin("raise budgets")
    limits = await ctx.ns.store.write(lambda tx: ctx.ns.ledger.limits(tx, scope.path))
    return ActionResult(open_modal=budget_raise_view(scope.path, limits, window or None))


async def submit_budget_raise(ctx: Context, metadata: str, values: dict[str, str]) -> ActionResult:
    """The modal's Raise: validate, check the limit is still the one the form showed, set it.

    Another person may have set the limit while the form was open: then nothing changes
    and :class:`~bot.raise_form.StaleForm` says what it is now (a second submit sets it).
    The form came from a budget alert's message; the engine redraws those itself in the
    same write (resolved, or still open with the change shown), so the answer goes to
    the submitter only. On any other message the line takes the place of its buttons.

    Raises:
        InvalidInput: ``field`` is the modal block to show the message under.
        StaleForm: the window's limit is not the one the form showed.
        NotAdmin: the submitter is not an admin (audited).
    """
    form = RaiseForm.decode(metadata)
    micros = _parse_amount(values.get("amount", "").strip())
    if micros <= 0:
        raise InvalidInput("amount", "a raised budget is more than $0")
    window = _parse_window(values.get("window") or "day")
    try:
        node = Scope.parse(form.scope)
    except ScopeError as exc:
        raise InvalidInput("amount", str(exc)) from None
    ctx.attempt = f"Raise budget: {node.path} {window} {_exact(micros)(micros)}"
    await ctx.require_admin("raise budgets")
    engine = engine_of(ctx)

    def apply(tx: Tx) -> tuple[int | None, list[Alert], Alert | None] | StaleForm:
        limits = ctx.ns.ledger.limits(tx, node.path)
        now = limits.get(window)
        if form.shown is not None and now != form.limit(window) and now != micros:
            return _stale(ctx, tx, form, node.path, window, limits, micros)
        before = ctx.ns.ledger.set_limit(
            tx, scope=node.path, window=window, limit_micros=micros, actor=ctx.actor
        )
        alerts = engine.budget_changed(tx, scope=node.path)
        return before, alerts, None if alerts else _last_budget_alert(tx, node.path)

    done = await ctx.ns.store.write(apply)
    if isinstance(done, StaleForm):
        raise done
    before, alerts, resolved = done
    policy = ctx.ns.ledger.policy_limits(node.path).get(window)
    usd = _exact(micros, before, policy)
    was = f" (was {usd(before)})" if before is not None else ""
    verb = "lowered to" if before is not None and micros < before else "set to"
    line = f"💰 {window} budget of `{node.path}` {verb} {usd(micros)}{was} {by_whom(ctx)}"
    # which one wins, as `budget set` says it: to the submitter (the alert shows the change)
    wins = (
        f"It overrides the policy file's {usd(policy)}, restarts included, until"
        f" `/agent budget set {node.path} default {window}`."
        if policy is not None and policy != micros
        else None
    )
    if alerts:  # redrawn by the engine: replacing them here would undo that
        told = f"{line}; {_after_raise(alerts, window)}."
        return ActionResult(ephemeral=f"{told} {wins}" if wins else told)
    if resolved is not None:  # resolved while the form was open: its message says so already
        told = f"{line}; #{resolved.id} was already {resolved_words(ctx, resolved)}."
        return ActionResult(ephemeral=f"{told} {wins}" if wins else told)
    # a message that is no alert: the line takes its buttons
    return ActionResult(done=line, ephemeral=wins)


def _stale(
    ctx: Context,
    tx: Tx,
    form: RaiseForm,
    scope: str,
    window: str,
    limits: dict[str, int],
    micros: int,
) -> StaleForm:
    row = tx.one(
        "SELECT set_by, set_at, limit_micros FROM budget_limits WHERE scope = ? AND window = ?",
        (scope, window),
    )
    by = at = None
    if row is not None and row[2] == limits.get(window):  # else the policy file's limit
        by, at = str(row[0]), clock_time(ctx, float(row[1]))
    return limit_changed(
        form, window=window, limits=limits, amount_micros=micros, set_by=by, set_at=at
    )


def _last_budget_alert(tx: Tx, scope: str) -> Alert | None:
    """The newest budget alert of ``scope``: the Raise budget button is only on theirs."""
    marks = ", ".join("?" for _ in BUDGET_KINDS)
    row = tx.one(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE scope = ? AND kind IN ({marks})"
        " ORDER BY id DESC LIMIT 1",
        (scope, *BUDGET_KINDS),
    )
    return None if row is None else Alert.from_row(row)


def _after_raise(alerts: list[Alert], window: str) -> str:
    """What became of the budget alerts of the scope: ``#30 is resolved``, ``#31 stays open``."""
    out = []
    for alert in alerts:
        if alert.resolved_at is not None:
            out.append(f"#{alert.id} is resolved")
            continue
        hit = alert.facts.get("window")
        about = f" (it is about the {hit} budget)" if hit in WINDOWS and hit != window else ""
        out.append(f"#{alert.id} stays open{about}")
    return "; ".join(out)


ViewSubmit = Callable[[Context, str, dict[str, str]], Awaitable[ActionResult]]
# Modal submissions by callback_id: (ctx, private_metadata, {block_id: value}) -> result.
VIEW_SUBMISSIONS: dict[str, ViewSubmit] = {BUDGET_RAISE_MODAL: submit_budget_raise}
