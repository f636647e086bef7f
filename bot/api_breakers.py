"""``GET /v1/breakers``: the breakers a token may see, with state and reason.

A token sees the breakers inside its subtree and the namespace and user breakers
above it (they refuse its reservations too), and the models' (shared by every tenant:
without what other tenants' calls said or cost). ``?all=1`` adds closed breakers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.api import CTX
from bot.api_body import bearer, only_query
from guards.breaker_view import shared
from guards.errors import InvalidInput
from guards.store import Tx
from guards.tokens import authenticate

__all__ = ["routes"]

routes = web.RouteTableDef()
_TRUE = ("1", "true", "yes")
_FALSE = ("", "0", "false", "no")


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
