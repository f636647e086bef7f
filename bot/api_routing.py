"""``POST /v1/route``: which model should this task use? Plus the routing component.

The handler authenticates, authorizes the scope, decides and records the decision
in one transaction, and answers ``200 {model, tier, reason, degraded, route_id,
intent}``. An ``intent`` that is neither built in nor named by a policy rule is a
``400`` on ``intent`` whose message lists the known ones. The agent passes
``route_id`` on its reservation so that the settle teaches the router whether the
tier was enough, and on the validation of the call's output (``POST /v1/validations``)
so that output the model got wrong counts against that call.

Wiring: :class:`RoutingComponent` builds the :class:`~guards.routing.RoutingService`
at start-up, registers its ledger gate (so settles of routed calls are learned
from, even those routed before a restart) and keeps it in ``ns.extras["routing"]``;
the ``retention`` job (bot/retention.py) deletes old decisions. If the component is
not listed, the first request builds the service instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import Field, StrictStr

from bot.api import CTX
from bot.api_body import Body, agent_call, agent_token, bearer, read_json
from guards.client_types import RouteDecision
from guards.model_budgets import model_standing
from guards.routing import RouteRequest, RoutingService, RoutingStats
from guards.routing.service import ModelOpen
from guards.store import Tx
from guards.tokens import authorize

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = [
    "EXTRAS_KEY",
    "RouteBody",
    "RoutingComponent",
    "ensure_routing",
    "routes",
    "routing_stats",
]

EXTRAS_KEY = "routing"
routes = web.RouteTableDef()


class RouteBody(Body):
    scope: StrictStr = Field(max_length=400)
    task: StrictStr  # emptiness and length are checked by the engine, with its messages
    intent: StrictStr | None = Field(None, max_length=64)
    min_tier: StrictStr | None = Field(None, max_length=16)


def ensure_routing(ns: Nightshift, *, is_model_open: ModelOpen | None = None) -> RoutingService:
    """The process's routing service, built and registered with the ledger on first use.

    It reads the remaining budget and the budgets per model (``budgets.models``) from
    ``ns.ledger``, and open model breakers from ``ns.breakers`` unless ``is_model_open``
    is given.
    """
    service = ns.extras.get(EXTRAS_KEY)
    if isinstance(service, RoutingService):
        return service
    service = RoutingService(
        policy=ns.policy,
        prices=ns.prices,
        remaining_fraction=ns.ledger.remaining_fraction,
        is_model_open=is_model_open or ns.breakers.is_model_open,
        model_budget=lambda tx, namespace, model: model_standing(
            tx, ns.ledger, namespace=namespace, model=model
        ),
    )
    ns.ledger.gates.append(service.gate)
    ns.extras[EXTRAS_KEY] = service
    return service


class RoutingComponent:
    """Builds the routing service at start-up (list it in
    ``Nightshift._build_components``); its decisions are pruned by the ``retention`` job."""

    def __init__(self, *, is_model_open: ModelOpen | None = None) -> None:
        self.is_model_open = is_model_open

    async def start(self, ns: Nightshift) -> None:
        ensure_routing(ns, is_model_open=self.is_model_open)

    async def stop(self, ns: Nightshift) -> None:
        return None


async def routing_stats(
    ns: Nightshift, *, since: float, until: float, scope: str | None = None
) -> RoutingStats:
    """The routing mix for the digest and ``/agent routing`` (``stats.lines()`` is the text)."""
    service = ensure_routing(ns)
    return await ns.store.write(lambda tx: service.stats(tx, since=since, until=until, scope=scope))


@routes.post("/v1/route")
async def route(request: web.Request) -> web.Response:
    ns = request.app[CTX]
    what = agent_call(request, "POST /v1/route")
    body = await read_json(request, RouteBody)
    req = RouteRequest.parse(
        scope=body.scope, task=body.task, intent=body.intent, min_tier=body.min_tier
    )
    service = ensure_routing(ns)
    raw = bearer(request)

    def decide(tx: Tx) -> RouteDecision:
        token = agent_token(tx, raw, what=what)  # a routing decision is an agent's call
        authorize(tx, token, req.scope, path=request.path)
        service.check(req)  # after the 403: the policy's intents are for its own tenants
        return service.route(tx, req).as_json()

    return web.json_response(await ns.store.write(decide))
