"""``/agent breaker <scope> approve|open|close`` and the trial buttons.

``/agent breakers`` (the list) is in :mod:`bot.commands_breakers_list`, importable from
here. ``/agent breaker <prefix>/* approve`` approves every trial waiting under a prefix
(a provider outage leaves one per agent): the reply counts them and names the first five.

The Keep open button answers one trial request: it acts only while the breaker waits
for a human (``half_open_pending``). A second or late click changes nothing and tells
the clicker what happened instead ("already kept open by @dana at 03:17", "the trial
was approved by @eve"); the kill switch for a running trial is ``breaker <scope> open``.
Approve trial on a trial that is running already (two clicks at once) changes nothing
either and says who approved it when.

Example:
    >>> # /agent breaker acme/alice/rss-bot open    (the kill switch)
    >>> # /agent breaker acme/bob/* approve
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from bot.alerts.render import parse_trial_request
from bot.api_text import BREAKER_REASON_SHOWN, refuse_control
from bot.blocks import echo
from bot.chat_words import typed
from bot.commands import ActionResult, Context, Reply, UsageError, action, subcommand
from bot.commands_breakers_list import breaker_line
from bot.commands_breakers_list import cmd_breakers as cmd_breakers
from bot.commands_breakers_prefix import approve_under, waiting_under
from bot.commands_core import by_whom, is_known_scope, local_time
from bot.escape import operator_mentions, slack_text
from bot.known_scopes import meant, unseen_breaker
from bot.trial_size import TrialSize, parse_trial_size
from guards.breaker import FORCED_OPEN, HALF_OPEN, HALF_OPEN_PENDING, OPEN
from guards.breaker_kinds import MODEL_PREFIX
from guards.breakers import BreakerRow, parse_key
from guards.config_types import format_seconds
from guards.errors import Conflict, InvalidInput
from guards.prices import undated
from guards.store import Tx
from guards.words import plural

__all__ = ["breaker_line", "cmd_breakers"]

OPERATIONS = {"approve": "approve", "open": "force_open", "close": "force_close"}


@subcommand(
    "breaker",
    usage="breaker <scope> open [reason] | approve [calls] [$budget] | close"
    " · breaker <prefix>/* approve",
)
async def cmd_breaker(ctx: Context, args: list[str]) -> Reply:
    """Force a breaker open (the kill switch, with a reason for the record), approve a
    trial (of the policy's size, or `approve 1 $0.10`: 1 call within $0.10), or force it
    closed; `<prefix>/* approve` approves every trial waiting under the prefix."""
    await ctx.require_admin("operate breakers")  # first: a refusal is audited, typo or not
    if len(args) < 2:
        raise UsageError()
    scope, verb = args[0], args[1].lower()
    as_typed = typed(args[:1]).strip("`")  # tidied, `acme/bob/*` would be acme/bob
    if "*" in as_typed:
        if verb != "approve" or len(args) > 2:
            raise UsageError(
                f"`{echo(as_typed, 60)}`: a prefix (`<prefix>/*`) takes only approve, each"
                " trial of its policy's size, as `/agent breaker acme/bob/* approve`."
                " Nothing changed."
            )
        return await approve_under(ctx, as_typed)
    if verb not in OPERATIONS:
        raise UsageError(f"`{echo(verb, 20)}` is not one of approve, open, close")
    size = parse_trial_size(args[2:]) if verb == "approve" else TrialSize()
    if verb == "close" and len(args) > 2:
        raise UsageError("`breaker close` takes no reason")
    try:
        key, kind = parse_key(scope)
    except InvalidInput as exc:
        raise UsageError(exc.message) from None
    reason = typed(args[2:])  # as typed: its commas too
    try:  # the rule of POST /v1/breakers/{scope}/open's reason, in its words (recheck28 Kc L2)
        if verb == "open":
            refuse_control(reason, why=BREAKER_REASON_SHOWN)
    except ValueError as exc:
        raise UsageError(f"the reason {exc}.") from None
    breakers = ctx.ns.breakers

    def operate(tx: Tx) -> tuple[BreakerRow, str | None]:
        if verb == "approve":
            try:
                return breakers.approve(
                    tx,
                    key,
                    ctx.actor,
                    trial_calls=size.calls,
                    trial_budget_micros=size.budget_micros,
                ), None
            except Conflict as exc:  # nothing here: say what waits below (recheck30 L4)
                below = waiting_under(ctx, tx, key) if kind != "model" else []
                if not below:
                    raise
                one = len(below) == 1
                count = f"{len(below)} breaker{'' if one else 's'}"
                raise Conflict(
                    f"{exc.message}; {count} under it wait{'s' if one else ''} for a trial"
                    f" approval: `/agent breaker {slack_text(key)}/* approve` approves"
                    f" {'it' if one else 'them'}",
                    state=exc.state,
                ) from None
        if verb == "open":
            typo = _typo(ctx, tx, key, kind, close)
            return breakers.force_open(tx, key, ctx.actor, reason), typo
        return breakers.force_close(tx, key, ctx.actor), None

    close = None
    if verb == "open" and kind != "model":
        # the scope meant, looked for before the kill switch is on: its alert makes a
        # typo a scope seen, and a look after the commit could take it for the one meant
        close = await ctx.ns.store.read(lambda tx: meant(ctx.ns.policy, tx, key))
    row, typo = await ctx.ns.store.write(operate)
    done = {"approve": "approved a trial of", "open": "forced open", "close": "closed"}[verb]
    text = f"<@{ctx.user_id}> {done} `{slack_text(row.scope)}`\n{breaker_line(ctx, row)}"
    if typo:  # the kill switch is on, but maybe not for what they meant
        text = f"⚠️ {typo}\n{text}"
    return Reply.text_only(text, ephemeral=False)


def known_models(ctx: Context) -> set[str]:
    """The models Nightshift prices or routes to (a tier's, a fallback's), in lower case
    as their breakers' keys name them."""
    routing = ctx.ns.policy.routing
    known = set(ctx.ns.ledger.prices.models()) | {t.model for t in routing.tiers.values()}
    known |= {m for model, rest in routing.fallbacks.items() for m in (model, *rest)}
    return {m.lower() for m in known}


def _typo(ctx: Context, tx: Tx, key: str, kind: str, close: str | None) -> str | None:
    """What to say when a kill switch names a model or scope nothing uses (a typo?);
    ``close``: the scope probably meant."""
    if kind != "model":
        return None if is_known_scope(ctx, tx, key) else unseen_breaker(key, close)
    name = key.removeprefix(MODEL_PREFIX)  # parse_key's charset: nothing for Slack to read
    known = known_models(ctx)
    if name in known:
        return None
    base = undated(name)
    if base != name and base in known:  # a dated snapshot of a known model
        return (
            f"`{name}` is a snapshot of `{base}`: this stops only reservations that name"
            f" `{name}`; `model:{base}` stops `{base}` and every snapshot of it."
        )
    near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    guess = f" Did you mean `model:{near[0]}`?" if near else ""
    return (
        f"`{name}` is not a model Nightshift prices or routes to (a typo?): this stops only"
        f" reservations that name `{name}` (in any case).{guess}"
    )


@action("breaker_approve")
async def act_breaker_approve(ctx: Context, value: str) -> ActionResult:
    """Approve trial (the value names the agent and its request)."""
    await ctx.require_admin("approve breaker trials")
    breakers = ctx.ns.breakers
    answered = await _answer_request(
        ctx, value, lambda tx, scope: breakers.approve(tx, scope, ctx.actor), verb="approve"
    )
    if isinstance(answered, str):
        return ActionResult(ephemeral=answered)
    calls = f" ({plural(answered.trial['calls'], 'call')})" if answered.trial else ""
    return ActionResult(done=f"✅ trial{calls} approved {by_whom(ctx)}")


async def _answer_request(
    ctx: Context, value: str, answer: Callable[[Tx, str], BreakerRow], *, verb: str
) -> BreakerRow | str:
    """Answer the trial request a button names (:func:`parse_trial_request`): the breaker
    as ``answer`` left it, or why an old click changed nothing (:func:`_not_waiting`).

    One transaction: the second of two clicks sees what the first one did. The buttons
    answer one request: a breaker forced open since (the kill switch), opened again or
    closed is not moved by an old click (`breaker … approve` is how to lift it), nor is
    a newer request that waits now.
    """
    scope, requested_at = parse_trial_request(value)

    def write(tx: Tx) -> tuple[BreakerRow, _Move | None, bool]:
        row = ctx.ns.breakers.get(tx, scope)
        if row.state != HALF_OPEN_PENDING:
            return row, _last_move(tx, row.scope), False
        if requested_at is not None and row.since != requested_at:
            return row, None, False
        return answer(tx, scope), None, True

    row, last, answered = await ctx.ns.store.write(write)
    if answered:
        return row
    if row.state == HALF_OPEN_PENDING and requested_at is not None:
        return _newer_request(ctx, row, requested_at)
    return _not_waiting(ctx, row, last, verb=verb)


def _newer_request(ctx: Context, row: BreakerRow, requested_at: float) -> str:
    """An old request's button, while a newer request of the same breaker waits."""
    scope = slack_text(row.scope)
    return (
        f"🟡 This request of `{scope}` (from {local_time(ctx, requested_at)}) was answered;"
        f" the breaker waits on a newer one since {local_time(ctx, row.since or 0.0)}."
        f" Answer that one with its own buttons, or `/agent breaker {scope} approve`."
        " Nothing changed."
    )


@dataclass(frozen=True, slots=True)
class _Move:
    """The latest transition of a breaker: where to, who made it and when."""

    to_state: str
    actor: str
    at: float

    @property
    def by_a_person(self) -> bool:
        return self.actor != "breaker"  # the machine's own moves (timers, trials)


def _last_move(tx: Tx, key: str) -> _Move | None:
    row = tx.one(
        "SELECT to_state, actor, at FROM breaker_transitions WHERE scope = ?"
        " ORDER BY id DESC LIMIT 1",
        (key,),
    )
    return None if row is None else _Move(str(row[0]), str(row[1]), float(row[2]))


def _not_waiting(ctx: Context, row: BreakerRow, last: _Move | None, *, verb: str) -> str:
    """Why a Keep open or Approve trial click changed nothing: what the breaker did since
    the request."""
    scope = f"`{slack_text(row.scope)}`"
    made = last if last is not None and last.to_state == row.state else None  # the state's move
    person = made is not None and made.by_a_person
    by = ""
    if made is not None:
        by = (f" by <@{made.actor}>" if person else "") + f" at {local_time(ctx, made.at)}"
    if row.state == OPEN:
        ends = f"its cool-down ends in {format_seconds(row.retry_after or 0)}"
        if person:
            return f"🔒 {scope} was already kept open{by}; {ends}. Nothing changed."
        return (
            f"🔴 {scope} opened again{by} ({operator_mentions(slack_text(row.reason))});"
            f" {ends} and there is no trial request to answer. Nothing changed."
        )
    stop = f"`/agent breaker {slack_text(row.scope)} open` stops it"
    if row.state == HALF_OPEN:
        if person:
            return f"🟠 The trial of {scope} was approved{by}; {stop}. Nothing changed."
        return f"🟠 A trial of {scope} is running (started{by}); {stop}. Nothing changed."
    if row.state == FORCED_OPEN:
        if verb == "approve":  # the kill switch came after the request: lift it on purpose
            return (
                f"⛔ {scope} was forced open{by}, so this request no longer stands;"
                f" `/agent breaker {slack_text(row.scope)} approve` starts a trial if that is"
                " what you mean. Nothing changed."
            )
        return (
            f"⛔ {scope} was forced open{by}; it stays open until someone approves a trial"
            " or closes it. Nothing changed."
        )
    return f"🟢 {scope} {'was' if by else 'is'} closed{by}; there is nothing to {verb}."


@action("breaker_keep_open")
async def act_breaker_keep_open(ctx: Context, value: str) -> ActionResult:
    """Keep open (the value names the agent and its request): refuse the trial it waits
    for."""
    await ctx.require_admin("keep breakers open")
    breakers = ctx.ns.breakers
    answered = await _answer_request(
        ctx, value, lambda tx, scope: breakers.keep_open(tx, scope, ctx.actor), verb="keep open"
    )
    if isinstance(answered, str):
        return ActionResult(ephemeral=answered)
    wait = f" for {format_seconds(answered.retry_after)}" if answered.retry_after else ""
    return ActionResult(done=f"🔒 kept open{wait} {by_whom(ctx)}")
