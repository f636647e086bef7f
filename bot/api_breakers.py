"""``GET /v1/breakers``: the breakers a token may see, with state and reason; and an
operator's acts on one: ``POST /v1/breakers/{scope}/approve``, ``…/open``, ``…/close``.

A token sees the breakers inside its subtree and the namespace and user breakers
above it (they refuse its reservations too), and the models' (shared by every tenant:
without what other tenants' calls said or cost). ``?all=1`` adds closed breakers.

The acts are ``/agent breaker <scope> approve|open|close``'s, for a runbook: the same
engine calls (:class:`guards.breakers.Breakers`), so the same audit rows (the actor
``token:<id>``), events and alert messages updated in place. The rules of
:mod:`bot.api_alerts` hold: an operator's token only (an agent's: 403
operator_token_required, so a runaway agent cannot lift its own breaker), a scope inside
its subtree only (else 403, recorded and alerted). A conversation means its agent, as in
Slack; a conversation's token naming its own conversation is refused (403: the breaker
is its agent's) without a misuse alert. A model's breaker (``model:<name>``) is every
tenant's: 403 slack_only. A kill switch a person pulled is theirs to lift in Slack (a
close: 403 slack_only naming who), as a person's silence is (:mod:`bot.api_silences`).
An approval starts a trial, as `/agent breaker <scope> approve` does: of a breaker
waiting for one (``half_open_pending``), or of one still cooling down (``open``: the
operator who fixed the cause need not wait, audit26 A3 L2); any other state is a 409
saying it (a kill switch is lifted on purpose, with ``…/close``). ``trial_calls``
and ``trial_budget_micros`` size the trial as ``approve 1 $0.10`` does, within the same
caps (:mod:`bot.trial_size`). A kill switch on a scope no agent has used is pulled as
asked, with a ``warning`` (a typo?), as Slack says it. Any bad field (a blank reason, one
with a control character, ``null``) is a 400 naming it once, its value as JSON writes it,
and nothing changes; a 409 (the breaker is in that state already, or waits for no
approval) says what to do and ends "Nothing changed."

Example:
    >>> # POST /v1/breakers/acme/alice/rss-bot/approve {"trial_calls": 1,
    >>> #                                               "trial_budget_micros": 100000}
    >>> # POST /v1/breakers/acme/alice/rss-bot/open {"reason": "runaway loop"}
    >>> # POST /v1/breakers/acme/alice/rss-bot/close
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from aiohttp import web
from pydantic import BeforeValidator, Field

from bot.api import CTX, json_answer
from bot.api_alerts import actor_of, operator, operator_body
from bot.api_body import Body, FreeText, bearer, only_query
from bot.api_text import BREAKER_REASON_SHOWN, as_sent, refuse_control
from bot.known_scopes import known_scope, meant, unseen_breaker
from bot.trial_size import MAX_TRIAL_BUDGET_MICROS, MAX_TRIAL_CALLS
from guards.breaker import CLOSED, FORCED_OPEN, HALF_OPEN, HALF_OPEN_PENDING, OPEN
from guards.breaker_view import BreakerRow, shared
from guards.breakers import Breakers, parse_key
from guards.errors import Conflict, GuardError, InvalidInput, ScopeForbidden
from guards.money import format_usd
from guards.scopes import Scope
from guards.store import Tx
from guards.tokens import ACTOR_PREFIX, BREAKERS_WHY, SlackOnly, Token, authenticate, authorize
from guards.words import plural

__all__ = ["MAX_REASON", "routes"]

routes = web.RouteTableDef()
_TRUE = ("1", "true", "yes")
_FALSE = ("", "0", "false", "no")
MAX_REASON = 500  # characters of a kill switch's reason (the engine keeps as many)
_SCOPE = "{scope:[\\s\\S]+}"  # any character: the scope parser says what is wrong


@routes.get("/v1/breakers")
async def list_breakers(request: web.Request) -> web.Response:
    ns = request.app[CTX]
    raw = bearer(request)
    # `?include_closed=1` must not list only the open ones as if it were read
    only_query(
        request.query, "all", takes="GET /v1/breakers takes one query parameter, all (1 or 0)"
    )
    said = request.query.get("all", "").lower()
    if said not in (*_TRUE, *_FALSE):
        raise InvalidInput("all", "all is 1 (every breaker, closed ones too) or 0")
    include_closed = said in _TRUE

    def read(tx: Tx) -> dict[str, Any]:
        token = authenticate(tx, raw)
        rows = ns.breakers.list(tx, include_closed, within=token.scope)
        return {
            "scope": token.scope,
            "enabled": ns.policy.breakers.enabled,  # false: no breaker stops a call
            "breakers": [shared(row).as_json() for row in rows],
        }

    return web.json_response(await ns.store.write(read))


# The messages below follow the field's name: read_json says ``trial_calls: …``.
def _whole(most: int, what: str, *, left_out: str) -> Any:
    """A JSON whole number from 1 to ``most`` (not true, not 1.0, not "1"). ``null`` is
    refused as the reservations API refuses a null amount (bot.api_ledger_bodies): a 400,
    not taken for a field left out; ``left_out`` says what leaving it out means."""

    def check(value: Any) -> Any:
        if value is None:
            raise ValueError(f"null is no value; {left_out}, or send {what}")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise ValueError(f"{what}, as a JSON whole number, not {as_sent(value)}")
        return value

    return BeforeValidator(check)


def _text() -> Any:
    """A JSON string with something in it, on one line: a kill switch's reason goes into
    the 503 every refused agent reads, the alert and the audit (review25 L5)."""

    def check(value: Any) -> Any:
        if value is None:
            raise ValueError("null is no value; say why in words, or leave it out")
        if not isinstance(value, str):
            raise ValueError(f"a JSON string (what the audit log keeps), not {as_sent(value)}")
        if value and not value.strip():
            raise ValueError("blank: say why in words, or leave it out")
        refuse_control(value, why=BREAKER_REASON_SHOWN)
        return value

    return BeforeValidator(check)


CALLS = f"1 to {MAX_TRIAL_CALLS:,} (calls the trial lets through)"
BUDGET = (
    f"1 to {MAX_TRIAL_BUDGET_MICROS:,} micro-dollars (more than $0, at most"
    f" {format_usd(MAX_TRIAL_BUDGET_MICROS)}; a larger one goes in the policy file:"
    " breakers.half_open.trial_budget)"
)


POLICY_SIZE = "leave it out for the policy's size"


class ApproveBody(Body):
    trial_calls: Annotated[int | None, _whole(MAX_TRIAL_CALLS, CALLS, left_out=POLICY_SIZE)] = None
    trial_budget_micros: Annotated[
        int | None, _whole(MAX_TRIAL_BUDGET_MICROS, BUDGET, left_out=POLICY_SIZE)
    ] = None


class OpenBody(Body):
    reason: Annotated[FreeText, _text()] = Field(None, min_length=1, max_length=MAX_REASON)


class CloseBody(Body):
    """A close says nothing more (`breaker close` takes no reason): any field is refused."""


def _breaker_of(tx: Tx, token: Token, text: str, path: str) -> str:
    """The key of the breaker ``text`` names (a conversation: its agent's), when it is
    inside the token's subtree: 400 naming ``scope`` for what is no scope, 403 outside it,
    403 slack_only for a model's (every tenant's)."""
    key, kind = parse_key(text)
    if kind == "model":
        raise SlackOnly(
            f"{key} is a model's breaker: every tenant's calls go through it, so no token"
            f" operates it; do it in Slack: `/agent breaker {key} open` (or approve, close)"
        )
    if not Scope(key).within(token.scope) and Scope.parse(text).within(token.scope):
        # a conversation's token naming its own conversation: the breaker is its agent's,
        # above the token. Refused, but no misuse to alert on: it named its own scope (L6)
        raise ScopeForbidden(
            scope=key,
            token_scope=token.scope,
            why=(
                f" (a conversation's breaker is its agent's: it stops every conversation of"
                f" {key}, so it takes an operator token for {key} or above)"
            ),
            operator=True,
        )
    authorize(tx, token, Scope(key), path=path)
    return key


def _pulled_by(tx: Tx, key: str) -> str:
    """Who pulled the kill switch breaker ``key`` is under (its latest move to forced open)."""
    row = tx.one(
        "SELECT actor FROM breaker_transitions WHERE scope = ? AND to_state = ?"
        " ORDER BY id DESC LIMIT 1",
        (key, FORCED_OPEN),
    )
    return str(row[0]) if row is not None else "?"


def _persons(by: str) -> bool:
    """A person pulled it (in Slack, the shell or the CLI), not a token."""
    return not by.startswith(ACTOR_PREFIX)


def _in_slack(key: str, by: str) -> str:
    """How a person's kill switch is lifted: as ``DELETE /v1/silences/{id}`` leaves a
    person's silence to them (review25 M1), a script does not undo the on-call's stop."""
    return (
        f"the kill switch on {key} was pulled by {by} (a person, not a token); a token lifts"
        " only kill switches tokens pulled. Lift it in Slack: `/agent breaker"
        f" {key} close` (or `/agent breaker {key} approve` for a trial first)"
    )


def _not_waiting(tx: Tx, row: BreakerRow) -> Conflict:
    """Why an approval changed nothing: the breaker waits for no approval; its state."""
    head = f"the breaker for {row.scope} is {row.state.replace('_', ' ')}"
    if row.state == CLOSED:
        why = "there is no trial to approve"
    elif row.state == HALF_OPEN:
        trial = row.trial or {}
        why = (
            f"a trial is running already ({trial.get('admitted', 0)} of"
            f" {plural(trial.get('calls', 0), 'call')} admitted); POST …/open stops it"
        )
    elif row.state == FORCED_OPEN:
        by = _pulled_by(tx, row.scope)
        if _persons(by):
            why = f"a kill switch ({row.reason}); {_in_slack(row.scope, by)}"
        else:
            why = (
                f"a kill switch ({row.reason}); a script does not lift it by approving a"
                f" trial: POST /v1/breakers/{row.scope}/close closes it, or `/agent breaker"
                f" {row.scope} approve` in Slack starts a trial"
            )
    else:
        why = "it waits for no approval"
    return Conflict(f"{head}: {why}. Nothing changed.", state=row.state)


def _open_already(tx: Tx, row: BreakerRow) -> Conflict:
    """A kill switch pulled again: it is on already; who lifts it and how (recheck25 L4)."""
    by = _pulled_by(tx, row.scope)
    lift = (
        _in_slack(row.scope, by)
        if _persons(by)
        else f"POST /v1/breakers/{row.scope}/close lifts it when the cause is fixed"
    )
    return Conflict(
        f"the breaker for {row.scope} is already forced open ({row.reason}): it refuses every"
        f" call until it is lifted; {lift}. Nothing changed.",
        state=FORCED_OPEN,
    )


Warn = Callable[[Tx, str, str], str | None]  # (tx, breaker key, token's scope) → warning


async def _act(
    request: web.Request,
    *,
    verb: str,
    move: Callable[[Breakers, Tx, str, str], BreakerRow],
    warn: Warn | None = None,
) -> web.Response:
    """Do ``move`` on the breaker the path names; ``warn``, read before it on a read
    connection: the answer's ``warning`` (None: nothing to warn of)."""
    ns = request.app[CTX]
    raw = bearer(request)
    what = f"POST /v1/breakers/{{scope}}/{verb}"
    text = request.match_info["scope"]
    warning: dict[str, Any] = {}
    if warn is not None:  # off the writer: a suggestion reads every agent seen (R2 M1)
        hint = await ns.store.read(lambda tx: _read_first(tx, raw, text, what=what, warn=warn))
        warning = {"warning": hint}

    def act(tx: Tx) -> dict[str, Any]:
        token = operator(tx, raw, what=what, why=BREAKERS_WHY)
        key = _breaker_of(tx, token, text, request.path)
        row = move(ns.breakers, tx, key, actor_of(token))
        return {"breaker": shared(row).as_json(), **warning}

    return json_answer(await ns.store.write(act))


def _read_first(tx: Tx, raw: str | None, text: str, *, what: str, warn: Warn) -> str | None:
    """``warn`` of the breaker ``text`` names, for a live operator token whose subtree
    holds it; else None: the write refuses it then and says why (a read writes no misuse
    alert). It runs before the write, on a read connection: a scope's suggestion reads
    the scopes of the whole fleet, which must not hold every agent's call meanwhile
    (review27 R2 M1: 0.5 s with a year of refusals)."""
    try:
        token = operator(tx, raw, what=what, why=BREAKERS_WHY)
        key, kind = parse_key(text)
    except GuardError:
        return None
    if kind == "model" or not Scope(key).within(token.scope):
        return None
    return warn(tx, key, token.scope)


@routes.post(f"/v1/breakers/{_SCOPE}/approve")
async def approve_trial(request: web.Request) -> web.Response:
    """Start a trial, of the policy's size or the body's: of a breaker that waits for
    one, or cools down still (as in Slack: the trial starts at once)."""
    body = await operator_body(
        request, ApproveBody, what="POST /v1/breakers/{scope}/approve", why=BREAKERS_WHY
    )

    def move(breakers: Breakers, tx: Tx, key: str, actor: str) -> BreakerRow:
        breakers.tick(tx)  # a cool-down just over: its request first, as the list shows it
        row = breakers.get(tx, key)
        if row.state not in (HALF_OPEN_PENDING, OPEN):
            raise _not_waiting(tx, row)
        return breakers.approve(
            tx,
            key,
            actor,
            trial_calls=body.trial_calls,
            trial_budget_micros=body.trial_budget_micros,
        )

    return await _act(request, verb="approve", move=move)


@routes.post(f"/v1/breakers/{_SCOPE}/open")
async def force_open(request: web.Request) -> web.Response:
    """The kill switch, with an optional ``reason`` for the record."""
    body = await operator_body(
        request, OpenBody, what="POST /v1/breakers/{scope}/open", why=BREAKERS_WHY
    )
    reason = (body.reason or "").strip()

    policy = request.app[CTX].policy

    def move(breakers: Breakers, tx: Tx, key: str, actor: str) -> BreakerRow:
        row = breakers.get(tx, key)
        if row.state == FORCED_OPEN:
            raise _open_already(tx, row)
        return breakers.force_open(tx, key, actor, reason)

    def warn(tx: Tx, key: str, within: str) -> str | None:
        """A scope no agent has used (a typo?), as in Slack: the one meant, looked for
        before the kill switch is on (review25 M2), when it is the token's to name: a
        scope of another tenant is neither said nor of use to it."""
        if known_scope(policy, tx, key):
            return None
        close = meant(policy, tx, key)
        return unseen_breaker(key, close if close and Scope(close).within(within) else None)

    return await _act(request, verb="open", move=move, warn=warn)


@routes.post(f"/v1/breakers/{_SCOPE}/close")
async def force_close(request: web.Request) -> web.Response:
    """Close now; the failures and the cool-down history are forgotten."""
    await operator_body(
        request, CloseBody, what="POST /v1/breakers/{scope}/close", why=BREAKERS_WHY
    )

    def move(breakers: Breakers, tx: Tx, key: str, actor: str) -> BreakerRow:
        state = breakers.get(tx, key).state
        if state == FORCED_OPEN and _persons(by := _pulled_by(tx, key)):
            raise SlackOnly(f"{_in_slack(key, by)}. Nothing changed.")
        if state == CLOSED:  # as the other 409s: what it is, what to do (recheck25 L4)
            raise Conflict(
                f"the breaker for {key} is already closed: its agents' calls go through;"
                f" POST /v1/breakers/{key}/open stops them. Nothing changed.",
                state=CLOSED,
            )
        return breakers.force_close(tx, key, actor)

    return await _act(request, verb="close", move=move)
