"""``GET /v1/silences``, ``POST /v1/silences`` and ``DELETE /v1/silences/{id}``: silences
made and lifted by an operator's script (a deploy silences its agents for its length).

The rules of :mod:`bot.api_alerts` hold: an operator's token only (an agent's: 403
operator_token_required), inside its subtree only (elsewhere: 403, recorded, an alert or
silence of another tenant named by its number only; a number nothing has: 404).

A silence is made by ``/agent silence``'s own code (:func:`bot.alerts.silences.silence`):
the same ``target`` grammar (an alert id, a kind, ``kind:scope``, a scope: see
:mod:`bot.alerts.targets`), the same ``duration`` grammar and limits (``30m``, ``2h``,
``1d``; at most 366 days), the same booking ahead (``starts_at``, at most 30 days
ahead) and ``reason``. ``until`` (ISO 8601 with an offset) may replace ``duration``. A
kind on every scope (``heartbeat_missed``) is narrowed to the token's subtree
(``heartbeat_missed:acme``): a token may not silence other tenants' alerts; the answer's
``narrowed_to`` says so. A scope nothing has used yet is silenced as asked, with a
``warning`` (a typo would silence nothing). ``until`` is kept as sent.

Only a true retry (the token's own silence on the same target, reason, start and end
within a minute) answers ``created: false``; a longer silence someone else made is not
handed back in place of the one asked: the new one is made, and ``also_held_by`` names
the other. A lift by id ends that silence alone (:func:`bot.alerts.silences.lift_one`);
its open alerts page again, as after ``/agent silence <target> off``. A token lifts only
what tokens made: a person's silence is theirs to lift in Slack (403 slack_only).

The alert about a token's own misuse (``scope_violation``) is out of every token's
reach: a target naming it is refused (403 slack_only), and no silence a token makes holds
one (:meth:`bot.alerts.starts.AlertStarts.silence_for`).

Example:
    >>> # POST /v1/silences {"target": "acme/alice/rss-bot", "duration": "30m",
    >>> #                    "reason": "deploy 4.2"}
    >>> # DELETE /v1/silences/7
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from multidict import MultiMapping
from pydantic import BeforeValidator, Field, StrictStr

from bot.alerts.engine import AlertEngine
from bot.alerts.model import kinds_named
from bot.alerts.silences import lift_one, silence, silence_row
from bot.alerts.targets import SilenceTarget, UnseenTarget, silence_target
from bot.alerts.when import is_past
from bot.api import CTX, json_answer, parse_scope
from bot.api_alerts import actor_of, operator, operator_body, whole_id
from bot.api_body import Body, FreeText, bearer, single_values
from bot.api_text import plain_words
from bot.commands import UsageError
from bot.commands_silence import MAX_AHEAD_DAYS, MAX_REASON, REASON_SHOWN
from bot.responders import duration_arg, engine_for
from guards.breaker_kinds import MODEL_PREFIX
from guards.config_types import parse_duration
from guards.errors import InvalidInput, NotFound
from guards.reservation import iso
from guards.scopes import Scope
from guards.store import Tx
from guards.tokens import ACTOR_PREFIX, TOKEN_MISUSE_KIND, SlackOnly, Token, authorize

__all__ = ["routes"]

routes = web.RouteTableDef()
MAX_TARGET = 400  # characters: a kind:scope is far shorter
DURATIONS = "a duration as /agent silence takes it: 30m, 2h, 1d (at most 366d)"
WHEN = "an ISO 8601 time with its offset: 2026-12-05T02:00:00+01:00 or 2026-12-05T01:00:00Z"
_COLUMNS = (
    "id, fingerprint, scope, kind, alert_id, created_by, created_at, starts_at, expires_at,"
    " reason, ended_at, ended_by"
)


def _text(what: str) -> Any:
    def check(value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{what}, as a JSON string")
        return value

    return BeforeValidator(check)


class SilenceBody(Body):
    target: StrictStr = Field(min_length=1, max_length=MAX_TARGET)
    duration: Annotated[str | None, _text(DURATIONS)] = Field(None, min_length=1, max_length=40)
    until: Annotated[str | None, _text(WHEN)] = Field(None, min_length=1, max_length=64)
    starts_at: Annotated[str | None, _text(WHEN)] = Field(None, min_length=1, max_length=64)
    # shown in the silenced alert's story and GET /v1/silences, kept in the audit
    reason: Annotated[FreeText, plain_words(REASON_SHOWN)] = Field(
        None, min_length=1, max_length=MAX_REASON
    )


class NoBody(Body):
    """A DELETE says nothing more: any field is refused, named."""


def _instant(text: str, field: str) -> float:
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(field, f"{field}: {text[:64]!r} is not {WHEN}") from None
    if at.tzinfo is None:
        raise InvalidInput(field, f"{field}: {text[:64]!r} has no offset; write {WHEN}")
    return at.timestamp()


def _start(body: SilenceBody, now: float) -> float | None:
    """``starts_at`` as an instant ahead (None: now), in the command's limits."""
    if body.starts_at is None:
        return None
    at = _instant(body.starts_at, "starts_at")
    said = repr(body.starts_at[:64])  # as typed: a year 1 or 9999 has no UTC form (M3)
    if is_past(at, now):  # as the chat command's `from`: a minute ago or more
        raise InvalidInput("starts_at", f"starts_at {said} is past (now: {iso(now)})")
    if at - now > MAX_AHEAD_DAYS * 86_400:
        raise InvalidInput(
            "starts_at", f"a silence starts at most {MAX_AHEAD_DAYS} days ahead, not {said}"
        )
    return at if at > now else None


def _seconds(body: SilenceBody, start: float) -> float:
    """How long it lasts: ``duration`` as ``/agent silence`` reads it, or up to ``until``
    (to the instant sent, not rounded: it ends at ``until`` as asked)."""
    if (body.duration is None) == (body.until is None):
        raise InvalidInput(
            "duration", f"send one of duration ({DURATIONS}) or until ({WHEN}), not both"
        )
    if body.duration is not None:
        try:
            return duration_arg(body.duration)
        except UsageError as exc:
            raise InvalidInput("duration", f"duration: {exc.detail}; {DURATIONS}") from None
    assert body.until is not None
    seconds = _instant(body.until, "until") - start
    if seconds <= 0:
        raise InvalidInput("until", f"until must be after the start ({iso(start)})")
    try:
        parse_duration(math.ceil(seconds))  # the command's limit (366 days)
    except ValueError:
        raise InvalidInput(
            "until", f"until is at most 366 days after the start ({iso(start)})"
        ) from None
    return seconds


def _target(
    engine: AlertEngine, tx: Tx, token: Token, text: str, path: str
) -> tuple[SilenceTarget, str | None, bool]:
    """The target read as ``/agent silence`` reads it, inside the token's subtree: with a
    warning when nothing has used it yet, and True when a kind on every scope was narrowed
    to the token's subtree."""
    warning = None
    try:
        what = silence_target(engine, tx, text, known=True)
    except UnseenTarget as exc:
        what = silence_target(engine, tx, text)
        warning = f"{exc.message}: this silence covers it once something there alerts"
    except NotFound:
        raise NotFound(
            f"no alert has the id {text.strip()[:40]}; GET /v1/alerts lists them"
        ) from None
    where = what.where
    narrowed = where is None
    if where is None:  # a kind on every scope: this token's subtree only
        what = SilenceTarget(None, token.scope, kind=what.kind)
    else:
        named = f"alert #{what.alert_id}" if what.alert_id is not None else None
        shared = " (a model's alerts are every tenant's: silence them in Slack)"
        why = shared if where.startswith(MODEL_PREFIX) else ""
        authorize(tx, token, Scope(where), path=path, named=named, why=why)
    if TOKEN_MISUSE_KIND in kinds_named(what.alert_kind or ""):
        raise SlackOnly(
            f"{TOKEN_MISUSE_KIND} alerts are about tokens stepping outside their subtree: no"
            " token may silence them (a token's silence never holds one). Silence it in"
            f" Slack: `/agent silence {what.name} 1h`"
        )
    return what, warning, narrowed


def _silence_json(tx: Tx, silence_id: int) -> dict[str, Any]:
    r = tx.one(f"SELECT {_COLUMNS} FROM silences WHERE id = ?", (silence_id,))
    what = SilenceTarget(r[1], r[2], r[4], kind=r[3])
    now = tx.clock.now()
    if r[10] is not None:
        state = "ended"
    elif r[8] <= now:
        state = "expired"
    else:
        state = "booked" if r[7] is not None and r[7] > now else "active"
    return {
        "id": r[0],
        "target": what.name,
        "matches": what.matches,
        "state": state,
        "created_by": r[5],
        "created_at": iso(r[6]),
        "starts_at": iso(r[7] if r[7] is not None else r[6]),
        "until": iso(r[8]),
        "reason": r[9],
        "ended_at": iso(r[10]) if r[10] is not None else None,
        "ended_by": r[11],
    }


@routes.post("/v1/silences")
async def create_silence(request: web.Request) -> web.Response:
    """201 with the new silence; 200 with the one that already does it (a retry)."""
    ns = request.app[CTX]
    what = "POST /v1/silences"
    body = await operator_body(request, SilenceBody, what=what)
    raw = bearer(request)
    engine = engine_for(ns)

    def make(tx: Tx) -> tuple[bool, dict[str, Any]]:
        token = operator(tx, raw, what=what)
        now = tx.clock.now()
        start = _start(body, now)
        seconds = _seconds(body, start or now)
        target, warning, narrowed = _target(engine, tx, token, body.target, request.path)
        made = silence(
            engine,
            tx,
            target=target,
            seconds=seconds,
            actor=actor_of(token),
            starts_at=start,
            reason=body.reason,
            retries_only=True,
        )
        answer = {
            "silence": _silence_json(tx, made.id),
            "created": made.made_by is None,
            "silenced_alerts": made.silenced,
            "narrowed_to": token.scope if narrowed else None,
            "warning": warning,
            "also_held_by": _longer(engine, tx, target, made.id),
        }
        return made.made_by is None, answer

    created, answer = await ns.store.write(make)
    return json_answer(answer, status=201 if created else 200)


def _longer(engine: AlertEngine, tx: Tx, target: SilenceTarget, made: int) -> dict[str, Any] | None:
    """Another silence that holds ``target``'s alerts at the end of silence ``made`` and
    lasts longer (one made in Slack for the night, a wider scope's, one booked to start
    before ``made`` ends): its id, target, who made it, from when (``starts_at``: None
    once it has started; recheck24 L5: a script could not tell a booked one holds nothing
    yet) and until when; None when there is none. Ending ``made`` leaves it on."""
    start, end = tx.one(
        "SELECT COALESCE(starts_at, created_at), expires_at FROM silences WHERE id = ?", (made,)
    )
    at = max(float(start), float(end) - 1.0)  # its last second: whatever holds on after it
    other = engine.silence_for(tx, kind=target.alert_kind, scope=target.where or "", now=at)
    if other is None or other[0] == made or other[1] <= end:
        return None
    row = tx.one(
        "SELECT fingerprint, scope, kind, created_by, starts_at FROM silences WHERE id = ?",
        (other[0],),
    )
    held = SilenceTarget(row[0], row[1], kind=row[2])
    booked = row[4] is not None and float(row[4]) > tx.clock.now()
    return {
        "id": other[0],
        "target": held.name,
        "created_by": row[3],
        "starts_at": iso(row[4]) if booked else None,
        "until": iso(other[1]),
    }


def _scope_query(raw: MultiMapping[str], token: Token) -> Scope:
    query = single_values(raw)
    unknown = sorted(set(query) - {"scope"})
    if unknown:
        name = unknown[0][:40]
        raise InvalidInput(name, f"GET /v1/silences takes one query parameter, scope, not {name!r}")
    return parse_scope(query.get("scope", token.scope))


@routes.get("/v1/silences")
async def list_silences(request: web.Request) -> web.Response:
    """The active and booked silences on the token's subtree (or ``scope``'s, inside it),
    by id; silences made on every scope, or above it, are not its to list."""
    ns = request.app[CTX]
    raw = bearer(request)

    def read(tx: Tx) -> dict[str, Any]:
        token = operator(tx, raw, what="GET /v1/silences")
        scope = _scope_query(request.query, token)
        authorize(tx, token, scope, path=request.path)
        rows = tx.all(
            "SELECT id, fingerprint, scope FROM silences WHERE ended_at IS NULL"
            " AND expires_at > ? ORDER BY id",
            (tx.clock.now(),),
        )
        mine = [
            r[0] for r in rows if Scope(SilenceTarget(r[1], r[2]).where or "").within(scope.path)
        ]
        return {"scope": scope.path, "silences": [_silence_json(tx, i) for i in mine]}

    return json_answer(await ns.store.write(read))


@routes.delete("/v1/silences/{id}")
async def delete_silence(request: web.Request) -> web.Response:
    """End one silence now (one booked ahead: cancelled); an ended one: 200, ended false."""
    ns = request.app[CTX]
    what = "DELETE /v1/silences/{id}"
    if request.body_exists:  # `{}` or nothing; a field is refused, named
        await operator_body(request, NoBody, what=what)
    raw = bearer(request)
    engine = engine_for(ns)

    def act(tx: Tx) -> dict[str, Any]:
        token = operator(tx, raw, what=what)
        silence_id = whole_id(
            request.match_info["id"], field="silence_id", what="GET /v1/silences lists them"
        )
        found = silence_row(tx, silence_id)
        if found is None:
            raise NotFound(f"there is no silence {silence_id}; GET /v1/silences lists them")
        target, _ = found
        named = f"silence {silence_id}"
        authorize(tx, token, Scope(target.where or ""), path=request.path, named=named)
        by = str(tx.one("SELECT created_by FROM silences WHERE id = ?", (silence_id,))[0])
        if not by.startswith(ACTOR_PREFIX):  # a person's: theirs to lift (review23 M1)
            raise SlackOnly(
                f"silence {silence_id} was made by {by} (a person, not a token); a token ends"
                f" only silences tokens made. Lift it in Slack: `/agent silence {target.name}"
                " off`"
            )
        done = lift_one(engine, tx, silence_id=silence_id, actor=actor_of(token))
        return {
            "silence": _silence_json(tx, silence_id),
            "ended": bool(done.lifted or done.cancelled),
            "alerts_notify_again": done.notify_again,
            "alerts_still_silenced": done.still_silenced,
        }

    return json_answer(await ns.store.write(act))
