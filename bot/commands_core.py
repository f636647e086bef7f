"""Core ``/agent`` pieces: ``help``, the helpers the subcommand modules share (times,
scopes, amounts), and the Raise budget button and modal.

Example:
    >>> # /agent help
    >>> # Raise budget (on a budget alert) -> the modal: amount and window
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts import render_time
from bot.alerts.messages import BUDGET_KINDS
from bot.alerts.model import ALERT_COLUMNS, Alert
from bot.blocks import section
from bot.chat_words import duration_word
from bot.commands import ActionResult, Context, Reply, UsageError, action, help_reply, subcommand
from bot.escape import slack_text
from bot.known_scopes import known_scope, seen_scope, unseen
from bot.raise_form import RaiseForm, StaleForm, exact_amount, form_amount, limit_changed
from bot.responders import engine_of, resolved_words
from guards.config import WINDOWS, parse_duration
from guards.errors import InvalidInput
from guards.money import usd_for
from guards.scopes import Scope, ScopeError
from guards.store import Tx

__all__ = [
    "VIEW_SUBMISSIONS",
    "budget_raise_view",
    "budget_set_already",
    "by_whom",
    "exact_usd",
    "is_known_scope",
    "local_time",
    "parse_amount",
    "parse_for",
    "parse_scope_arg",
    "parse_window",
    "seen_scope",
    "submit_budget_raise",
    "unseen",
]


BUDGET_RAISE_MODAL = "budget_raise_modal"
MAX_FOR_DAYS = 92  # a limit set for a while: a while, not a quarter's standing raise


# -- shared helpers -----------------------------------------------------------------------


def local_time(ctx: Context, ts: float | None = None, *, seconds: bool = False) -> str:
    """``ts`` (now by default) in the policy's time zone, as alerts word a time
    (:func:`~bot.alerts.render_time.clock_time`: ``03:17``, ``Wed 07 Jan 03:17`` on
    another day; ``03:17:42`` with ``seconds``)."""
    now = ctx.ns.clock.now()
    tz = ZoneInfo(ctx.ns.policy.timezone)
    return render_time.clock_time(now if ts is None else ts, tz, now=now, seconds=seconds)


def by_whom(ctx: Context) -> str:
    """``by <@U1> at 03:17``: the tail of every "done" line."""
    return f"by <@{ctx.user_id}> at {local_time(ctx)}"


def parse_scope_arg(text: str, *, min_depth: int = 1) -> Scope:
    try:
        return Scope.parse(text, min_depth=min_depth)
    except ScopeError as exc:
        raise UsageError(str(exc)) from None


def is_known_scope(ctx: Context, tx: Tx, path: str) -> bool:
    """Has Nightshift seen ``path``, or does the policy name it (:func:`known_scope`)?"""
    return known_scope(ctx.ns.policy, tx, path)


def parse_amount(text: str) -> int:
    """Micro-dollars of an amount typed in USD (``$5``, ``2.50``, ``0``); InvalidInput when
    not one, by the Raise budget form's rule and words (:func:`bot.raise_form.exact_amount`)."""
    return exact_amount(text)


def parse_for(text: str) -> int | None:
    """Seconds of a limit set for a while (``2h``, ``1d``; 1m to :data:`MAX_FOR_DAYS`
    days), or None for an empty answer (until changed); InvalidInput when not one."""
    text = duration_word(text.strip())  # `90min`, `2hrs` as the other commands take them
    if not text:
        return None
    if text.isascii() and text.replace(".", "", 1).isdigit():  # as duration_arg asks
        raise InvalidInput(
            "for",
            f"a duration like 2h or 1d: `{text[:20]}` what? Write"
            f" `{text[:20]}h` for hours (or `{text[:20]}m`, `{text[:20]}d`)",
        )
    try:
        return parse_duration(text[:40], max_days=MAX_FOR_DAYS, min_seconds=60)
    except ValueError as exc:
        raise InvalidInput("for", f"a duration like 2h or 1d: {exc}") from None


def parse_window(text: str) -> str:
    """A budget window as typed (any case): one of :data:`~guards.config.WINDOWS`."""
    window = text.lower()
    if window not in WINDOWS:
        raise InvalidInput(
            "window", f"the window is one of {', '.join(WINDOWS)}, not {text[:20]!r}"
        )
    return window


def exact_usd(*amounts: int | None) -> Callable[[int], str]:
    """Dollars as they are (``$2.505``, ``$0.004``), in cents when every amount is whole
    cents: a limit is shown as it was set, never rounded (:func:`usd_for`)."""
    return usd_for(*(a for a in amounts if a is not None))


def budget_set_already(
    tx: Tx, *, scope: str, window: str, micros: int, seconds: float | None
) -> str | None:
    """What setting ``window``'s limit of ``scope`` to ``micros`` tells the one who asked,
    when it is the limit set in Slack for good already: nothing changed, so nothing is
    written, announced or audited (the audit log records changes: audit27 B2 L3). None
    when it is a change: another amount, one for a while (``seconds``: it gets an end),
    or the policy file's own amount set in Slack (it then holds through edits of the
    file). ``budget set`` and the Raise budget form ask this one rule (recheck27 Ka L1)."""
    if seconds is not None:
        return None
    row = tx.one(
        "SELECT 1 FROM budget_limits WHERE scope = ? AND window = ? AND limit_micros = ?"
        " AND until IS NULL",
        (scope, window, micros),
    )
    if row is None:
        return None
    return (
        f"The *{window}* budget of `{scope}` is *{exact_usd(micros)(micros)}* already, set in"
        " Slack for good: nothing changed."
    )


# -- help -------------------------------------------------------------------------------


@subcommand("help", usage="help")
async def cmd_help(ctx: Context, args: list[str]) -> Reply:
    """Lists the subcommands."""
    return help_reply()


# -- Raise budget button and modal ----------------------------------------------------------


def budget_raise_view(
    scope: str, limits: dict[str, int], window: str | None = None
) -> dict[str, Any]:
    """The modal of the Raise budget button: amount and window, for one scope.

    The window starts on ``window`` (the one that refused the call), else on the only
    window with a limit, else on ``day``.
    """
    current = ", ".join(f"{w} {exact_usd(v)(v)}" for w, v in limits.items()) or "no limits"
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
            section(f"`{scope}`\nnow: {current}"),
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
            {  # a raise "for tonight" ends by itself (audit27 parity #3)
                "type": "input",
                "block_id": "for",
                "optional": True,
                "label": {"type": "plain_text", "text": "For how long (empty: until changed)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "for",
                    "placeholder": {"type": "plain_text", "text": "e.g. 8h; then the file's again"},
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
        # the refusal quotes the value: shown as text, as every quoted value is
        return ActionResult(ephemeral=f"This button names a bad scope: {slack_text(str(exc))}")
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
    window = parse_window(values.get("window") or "day")
    micros = form_amount(values.get("amount", "").strip(), window=window)
    seconds = parse_for(values.get("for", ""))
    try:
        node = Scope.parse(form.scope)
    except ScopeError as exc:
        raise InvalidInput("amount", str(exc)) from None
    lasting = f" for {render_time.duration(seconds)}" if seconds is not None else ""
    ctx.attempt = f"Raise budget: {node.path} {window} {exact_usd(micros)(micros)}{lasting}"
    await ctx.require_admin("raise budgets")
    engine = engine_of(ctx)

    Done = tuple[int | None, list[Alert], Alert | None, float | None]

    def apply(tx: Tx) -> Done | StaleForm | str:
        limits = ctx.ns.ledger.limits(tx, node.path)
        now = limits.get(window)
        if form.shown is not None and now != form.limit(window) and now != micros:
            return _stale(ctx, tx, form, node.path, window, limits, micros)
        same = budget_set_already(
            tx, scope=node.path, window=window, micros=micros, seconds=seconds
        )
        if same is not None:  # as `budget set` says it: to the submitter only
            return same
        until = tx.clock.now() + seconds if seconds is not None else None
        before = ctx.ns.ledger.set_limit(
            tx, scope=node.path, window=window, limit_micros=micros, actor=ctx.actor, until=until
        )
        alerts = engine.budget_changed(tx, scope=node.path)
        return before, alerts, None if alerts else _last_budget_alert(tx, node.path), until

    done = await ctx.ns.store.write(apply)
    if isinstance(done, StaleForm):
        raise done
    if isinstance(done, str):
        return ActionResult(ephemeral=done)
    before, alerts, resolved, until = done
    policy = ctx.ns.ledger.policy_limits(node.path).get(window)
    usd = exact_usd(micros, before, policy)
    was = f" (was {usd(before)})" if before is not None else ""
    verb = "lowered to" if before is not None and micros < before else "set to"
    ends = f", until {local_time(ctx, until)}" if until is not None else ""
    line = f"💰 {window} budget of `{node.path}` {verb} {usd(micros)}{was} {by_whom(ctx)}{ends}"
    # which one wins, as `budget set` says it: to the submitter (the alert shows the change)
    then = f"the policy file's {usd(policy)}" if policy is not None else "no limit"
    wins = (
        f"Then {then} applies again (the alerts channel is told)."
        if until is not None
        else f"It overrides the policy file's {usd(policy)}, restarts included, until"
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
        by, at = str(row[0]), local_time(ctx, float(row[1]))
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
        asked = alert.facts.get("requested_micros")
        if not about and alert.kind == "budget_exhausted" and isinstance(asked, int):
            about = (  # raised too little (recheck27 Kd)
                f": the call it refused asked {exact_usd(asked)(asked)}, more than the"
                f" {window} budget now leaves (the limit must take that on top of what is"
                " spent and held)"
            )
        out.append(f"#{alert.id} stays open{about}")
    return "; ".join(out)


ViewSubmit = Callable[[Context, str, dict[str, str]], Awaitable[ActionResult]]
# Modal submissions by callback_id: (ctx, private_metadata, {block_id: value}) -> result.
VIEW_SUBMISSIONS: dict[str, ViewSubmit] = {BUDGET_RAISE_MODAL: submit_budget_raise}
