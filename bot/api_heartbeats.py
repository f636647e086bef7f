"""``POST /v1/heartbeats``: an agent says it is alive.

Body: ``scope`` (the agent, ``namespace/user/agent``; a conversation scope counts for
its agent, so the token must reach the agent: a token of one conversation may not say
whether its agent is alive or stopped), optional ``status`` (a short word; ``stopped``,
``stopping``, ``shutdown``, ``shutting_down`` or ``paused``, in any case, mean a
deliberate shutdown, which the watchdog does not alert on) and ``detail`` (a sentence
of at most 2,000 characters: line breaks and tabs are allowed, NUL and other control
characters are a 400 naming ``detail``; ``/agent status`` and the missed-heartbeat alert
show it on one line, cut). Answers ``204``. A heartbeat from an agent whose
missed-heartbeat alert is raised resolves it.

Example:
    >>> # curl -X POST -H "Authorization: Bearer $TOKEN" \\
    >>> #   -d '{"scope": "acme/alice/rss-bot", "status": "ok"}' http://127.0.0.1:3000/v1/heartbeats
"""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import Field, field_validator

from bot.alerts.heartbeats import record
from bot.api import CTX, parse_scope
from bot.api_body import Body, FreeText, agent_call, agent_token, bearer, read_json
from guards.scopes import Scope
from guards.store import Tx
from guards.tokens import authorize

__all__ = ["routes"]

routes = web.RouteTableDef()
_WORD = re.compile(r"[A-Za-z0-9_.-]+")
# NUL and the other C0 / C1 controls but tab and line breaks: refused in ``detail`` (400)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class HeartbeatBody(Body):
    scope: str = Field(min_length=1, max_length=400)
    status: str | None = Field(None, min_length=1, max_length=64)
    detail: FreeText = Field(None, max_length=2000)

    @field_validator("detail")
    @classmethod
    def _no_control(cls, value: str | None) -> str | None:
        if value is not None and (bad := _CONTROL.search(value)) is not None:
            raise ValueError(
                f"control character U+{ord(bad.group()):04X} at {bad.start()}: send a sentence"
                " (line breaks and tabs are allowed; /agent status and the alerts show it on"
                " one line)"
            )
        return value

    @field_validator("status")
    @classmethod
    def _one_word(cls, value: str | None) -> str | None:
        if value is not None and not _WORD.fullmatch(value):
            raise ValueError(
                "a short word of letters, digits, _ . or - (ok, degraded, stopped, ...);"
                " put sentences in detail"
            )
        return value


@routes.post("/v1/heartbeats")
async def post_heartbeat(request: web.Request) -> web.Response:
    ns = request.app[CTX]
    what = agent_call(request, "POST /v1/heartbeats")
    body = await read_json(request, HeartbeatBody)
    scope = parse_scope(body.scope, min_depth=3)
    agent = Scope(scope.agent() or scope.path)
    why = "" if agent == scope else f" (a heartbeat of {scope.path} is its agent's)"
    raw = bearer(request)

    def beat(tx: Tx) -> None:
        token = agent_token(tx, raw, what=what)  # an operator's speaks for no agent
        authorize(tx, token, agent, path=request.path, why=why)
        record(tx, scope=agent.path, status=body.status, detail=body.detail, now=tx.clock.now())

    await ns.store.write(beat)
    return web.Response(status=204)
