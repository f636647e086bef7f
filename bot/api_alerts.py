"""``GET /v1/alerts`` and ``POST /v1/alerts/{id}/ack``: the alerts of a token's subtree,
for an operator's scripts (a dashboard, a runbook). Silences: :mod:`bot.api_silences`.

Only an operator's token (``nightshift token create <scope> --operator``) is served here;
an agent's gets ``403 operator_token_required`` (a runaway agent must not acknowledge the
alerts about itself), whatever its request says. A token acts only inside its scope's
subtree: an alert elsewhere is ``403`` (recorded and alerted, as any token's step outside
its subtree), named by its number only, as a reservation of another tenant is: its kind
and scope are not told. A number no alert has is ``404``. An acknowledgement is
``/agent ack``'s (:func:`bot.alerts.operations.ack`): the chain stops, the Slack
messages say so, and the audit names ``token:<id>``. The alert about a token's own
misuse (``scope_violation``) is no token's to acknowledge (403 slack_only: people do it
in Slack). A query parameter is read once: one sent twice is a 400 naming it.

Example:
    >>> # GET /v1/alerts?state=all&scope=acme/alice&limit=20
    >>> # POST /v1/alerts/12/ack {"note": "deploying 4.2, ignore"}
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from aiohttp import web
from multidict import MultiMapping
from pydantic import BaseModel, Field

from bot.alerts import operations as ops
from bot.alerts.engine import AlertEngine
from bot.alerts.model import ALERT_COLUMNS, Alert
from bot.alerts.render import title
from bot.alerts.targets import MAX_ALERT_ID_DIGITS
from bot.api import CTX, json_answer, parse_scope
from bot.api_body import Body, FreeText, bearer, read_json, single_values
from bot.api_text import plain_words
from bot.responders import engine_for
from guards.errors import GuardError, InvalidInput, NotFound
from guards.reservation import iso
from guards.scopes import Scope, subtree
from guards.store import Tx
from guards.tokens import (
    ACTOR_PREFIX,
    ALERTS_WHY,
    Token,
    authenticate,
    authorize,
    require_operator,
)

__all__ = [
    "actor_of",
    "alert_json",
    "operator",
    "operator_body",
    "routes",
    "whole_id",
]

routes = web.RouteTableDef()
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_NOTE = 500  # characters of an acknowledgement's note (kept in the audit)
_QUERY = ("state", "scope", "limit")
M = TypeVar("M", bound=BaseModel)


def operator(tx: Tx, raw: str | None, *, what: str, why: str = ALERTS_WHY) -> Token:
    """The request's token, when it is a live operator's; else 401 (missing, unknown,
    revoked, expired) or 403 operator_token_required (``why``: why not an agent's)."""
    return require_operator(authenticate(tx, raw), what=what, why=why)


def actor_of(token: Token) -> str:
    """Who the audit (and the alert's Slack message) says acted: ``token:<id>``."""
    return f"{ACTOR_PREFIX}{token.id}"


async def operator_body(
    request: web.Request, model: type[M], *, what: str, why: str = ALERTS_WHY
) -> M:
    """The JSON body, read as :func:`bot.api_body.read_json` reads it (an empty one, as a
    chunked request sends "none", as ``{}``); when it is refused, a token that may not
    make the call is told so first (401, or 403 for an agent's): an agent learns nothing
    of what these calls check."""
    try:
        return await read_json(request, model, empty_ok=True)
    except GuardError as exc:
        if exc.status in (400, 413, 415):
            ns = request.app[CTX]
            raw = bearer(request)
            try:
                await ns.store.write(lambda tx: operator(tx, raw, what=what, why=why))
            except GuardError as refused:
                exc = refused
            exc.token_checked = True
        raise exc from None


def whole_id(text: str, *, field: str, what: str) -> int:
    """A path's id as a number: 400 naming ``field`` when it is not one; 404 when it has
    more digits than any id (``what`` names the list to look in)."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidInput(field, f"{field}: {text[:40]!r} is not a whole number; {what}")
    if len(digits) > MAX_ALERT_ID_DIGITS:
        raise NotFound(f"there is no {field.removesuffix('_id')} {digits[:20]}…; {what}")
    return int(digits)


def alert_json(alert: Alert, *, silenced_until: float | None) -> dict[str, Any]:
    """One alert as the API shows it (times ISO 8601 UTC)."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "tier": alert.tier,
        "scope": alert.scope,
        "title": title(alert),
        "state": alert.state,
        "count": alert.count,
        "created_at": iso(alert.first_at),
        "updated_at": iso(alert.last_at),
        "acknowledged_by": alert.acked_by,
        "acknowledged_at": iso(alert.acked_at) if alert.acked_at is not None else None,
        "silenced_until": iso(silenced_until) if silenced_until is not None else None,
        "resolved_at": iso(alert.resolved_at) if alert.resolved_at is not None else None,
    }


def _until(tx: Tx, alert: Alert) -> float | None:
    if alert.silence_id is None:
        return None
    row = tx.one("SELECT expires_at FROM silences WHERE id = ?", (alert.silence_id,))
    return float(row[0]) if row is not None else None


def _query(raw: MultiMapping[str], token: Token) -> tuple[bool, Scope, int]:
    """``state`` (all: True), ``scope`` and ``limit`` of ``GET /v1/alerts``; 400 naming
    the parameter that is wrong, one sent twice, or one it does not take."""
    query = single_values(raw)
    unknown = sorted(set(query) - set(_QUERY))
    if unknown:
        name = unknown[0][:40]
        raise InvalidInput(
            name, f"GET /v1/alerts takes state (open or all), scope and limit, not {name!r}"
        )
    state = query.get("state", "open")
    if state not in ("open", "all"):
        raise InvalidInput("state", f"state is open (the default) or all, not {state[:40]!r}")
    scope = parse_scope(query.get("scope", token.scope))
    said = query.get("limit", str(DEFAULT_LIMIT))
    if not (said.isascii() and said.isdigit() and len(said) <= 6 and 1 <= int(said) <= MAX_LIMIT):
        raise InvalidInput(
            "limit", f"limit is a whole number from 1 to {MAX_LIMIT}, not {said[:40]!r}"
        )
    return state == "all", scope, int(said)


@routes.get("/v1/alerts")
async def list_alerts(request: web.Request) -> web.Response:
    """The alerts of the token's subtree (or ``scope``'s, inside it), newest first."""
    ns = request.app[CTX]
    raw = bearer(request)

    def read(tx: Tx) -> dict[str, Any]:
        token = operator(tx, raw, what="GET /v1/alerts")
        every, scope, limit = _query(request.query, token)
        authorize(tx, token, scope, path=request.path)
        low, high = subtree(scope.path)
        rows = tx.all(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE (scope = ? OR (scope > ? AND scope < ?))"
            " AND (? OR resolved_at IS NULL) ORDER BY id DESC LIMIT ?",
            (scope.path, low, high, every, limit + 1),
        )
        alerts = [Alert.from_row(r) for r in rows[:limit]]
        return {
            "scope": scope.path,
            "state": "all" if every else "open",
            "alerts": [alert_json(a, silenced_until=_until(tx, a)) for a in alerts],
            "truncated": len(rows) > limit,
        }

    return json_answer(await ns.store.write(read))


class AckBody(Body):
    note: Annotated[FreeText, plain_words("it is shown with the alert and kept in the audit")] = (
        Field(None, min_length=1, max_length=MAX_NOTE)
    )


def _alert_of(engine: AlertEngine, tx: Tx, token: Token, alert_id: int, path: str) -> Alert:
    """The alert, when it is inside the token's subtree: 404 for no such alert, 403 (its
    scope not told) for one outside."""
    try:
        alert = engine.get(tx, alert_id)
    except NotFound:
        raise NotFound(f"there is no alert #{alert_id}; GET /v1/alerts lists them") from None
    # a model's alert (scope model:<name>) is every tenant's: no token's subtree holds it
    authorize(tx, token, Scope(alert.scope), path=path, named=f"alert #{alert_id}")
    return alert


@routes.post("/v1/alerts/{id}/ack")
async def ack_alert(request: web.Request) -> web.Response:
    """Acknowledge one alert as ``/agent ack`` does; again: 200, ``acknowledged_now`` false."""
    ns = request.app[CTX]
    what = "POST /v1/alerts/{id}/ack"
    raw = bearer(request)
    note = None
    if request.body_exists:
        note = (await operator_body(request, AckBody, what=what)).note
    engine = engine_for(ns)

    def act(tx: Tx) -> dict[str, Any]:
        token = operator(tx, raw, what=what)
        alert_id = whole_id(
            request.match_info["id"], field="alert_id", what="GET /v1/alerts lists them"
        )
        _alert_of(engine, tx, token, alert_id, request.path)
        alert, new = ops.ack(engine, tx, alert_id=alert_id, actor=actor_of(token), note=note)
        return {
            "alert": alert_json(alert, silenced_until=_until(tx, alert)),
            "acknowledged_now": new,
        }

    return json_answer(await ns.store.write(act))
