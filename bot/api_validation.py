"""``POST /v1/validations``: is this output new, and is there a sane amount of it?

Body: ``scope`` (an agent or deeper), ``stream`` (a name the agent picks),
``items`` (strings or ``{id, text}`` objects), optional ``expected_count``,
``idempotency_key`` and ``route_id`` (the routed call whose output the items are).
Answer: ``200 {verdict: ok|partial|rejected, accepted: [i...], rejected: [{index,
reason, duplicate_of?, matched_at?, similarity?, matched_index?}]}``; a malformed
batch is a ``400`` naming the field, and nothing of it is stored.

A stream belongs to the agent, not to the conversation the ``scope`` may name, so
an RSS agent's runs in different conversations still dedup; put the conversation
in the stream name to dedup per conversation. Send an ``idempotency_key`` to make
retries safe: the same batch sent again with it gets the first answer, and nothing
is stored or counted twice (another batch with that key is a ``409``); without a
key a re-sent item is a ``duplicate``.

Routing learns from a rejected batch only when it names the ``route_id`` of the call
that wrote it (a decision in the token's subtree), and only for reasons that speak of
the model's output (``empty``, ``runaway``, ``too_large``: see
:data:`guards.routing.learning.MODEL_REASONS`); a batch without one teaches nothing,
since any other call of the agent did not write it.

The handler normalises and sketches the items on a worker thread
(:meth:`~guards.validation.Validator.prepare`), reads a cold stream's window off the
writer (:meth:`~guards.validation.Validator.warm`), then runs one operation inside
``store.write``: authenticate, authorise, look up, remember the accepted items,
store the rejections, emit the events.

Wiring: :class:`ValidationComponent` builds the :class:`~guards.validation.Validator`
at start-up and keeps it in ``ns.extras["validation"]``, where the ``retention`` job
(bot/retention.py) finds it: that job deletes old items, call answers and rejections
and lets the validator compact its indexes. If the component is not listed, the first
request builds the validator.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import Field, StrictInt, StrictStr

from bot.api import CTX
from bot.api_body import Body, agent_call, bearer, read_json
from bot.api_routing import ensure_routing
from guards.scopes import Scope
from guards.store import Tx
from guards.tokens import LIVE_TOKEN, authenticate, hash_token
from guards.validation import Batch, Outcome, Validator
from guards.validation.engine import API_PATH
from guards.validation.types import parse_items

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["EXTRAS_KEY", "ValidationBody", "ValidationComponent", "ensure_validation", "routes"]

log = logging.getLogger(__name__)
EXTRAS_KEY = "validation"
routes = web.RouteTableDef()


class ValidationBody(Body):
    scope: StrictStr = Field(max_length=400)
    stream: StrictStr = Field(max_length=200)  # the engine checks the name, with its message
    items: list[Any]  # each item is checked by the engine, naming items.<i>
    expected_count: StrictInt | None = Field(None, ge=1, le=10**9)
    idempotency_key: StrictStr | None = Field(None, min_length=1, max_length=200)
    route_id: str | None = Field(None, min_length=1, max_length=100)  # as on a reservation


def ensure_validation(ns: Nightshift) -> Validator:
    """The process's validator, built and attached to the store on first use."""
    validator = ns.extras.get(EXTRAS_KEY)
    if isinstance(validator, Validator):
        return validator
    validator = Validator(ns.policy.validation)
    validator.attach(ns.store)
    ns.metrics.watch_validation(validator)
    ns.extras[EXTRAS_KEY] = validator
    return validator


@routes.post("/v1/validations")
async def create_validation(request: web.Request) -> web.Response:
    ns = request.app[CTX]
    agent_call(request, f"POST {API_PATH}")  # (validate() refuses an operator's token)
    validator = ensure_validation(ns)
    body = await read_json(request, ValidationBody)
    batch = Batch(
        scope=body.scope,
        stream=body.stream,
        items=parse_items(body.items),
        expected_count=body.expected_count,
        idempotency_key=body.idempotency_key,
    )
    prepared = await asyncio.to_thread(validator.prepare, batch)
    raw = bearer(request)

    async def covers() -> bool:  # asked only before a window is read: a stranger reads none
        rows = await ns.store.fetch(LIVE_TOKEN, (hash_token(raw or ""),))
        if not rows or (rows[0][2] is not None and rows[0][2] <= ns.clock.now()):
            return False  # unknown, revoked or expired (review30 L1)
        if rows[0][3]:
            return False  # an operator's: refused as soon as validate() reads it
        return Scope(body.scope).within(str(rows[0][1]))

    # a cold stream's window is read off the writer
    await validator.warm(ns.store, prepared, allowed=covers)

    routing = ensure_routing(ns)

    def op(tx: Tx) -> Outcome:
        outcome = validator.validate(tx, token=raw, batch=prepared)
        if body.route_id is not None and outcome.verdict == "rejected" and not outcome.replayed:
            # output nobody can use counts against the call that wrote it (routing learns)
            routing.on_rejected(
                tx,
                route_id=body.route_id,
                within=authenticate(tx, raw).scope,  # validate() authenticated it already
                reasons=[r.reason for r in outcome.rejected],
                now=tx.clock.now(),
                scope=prepared.batch.scope,  # the agent's own output judges its call
            )
        return outcome

    outcome = await ns.store.write(op)
    response = web.json_response(outcome.as_json())
    if outcome.replayed:  # the first answer to this idempotency_key, as reservations say it
        response.headers["Idempotent-Replayed"] = "true"
    return response


class ValidationComponent:
    """Builds the validator at start-up (list it in ``Nightshift._build_components``);
    its rows are pruned by the ``retention`` job."""

    async def start(self, ns: Nightshift) -> None:
        ensure_validation(ns)

    async def stop(self, ns: Nightshift) -> None:
        return None
