"""``POST /v1/heartbeats``: an agent says it is alive.

Body: ``scope`` (the agent, ``namespace/user/agent``; a conversation scope counts for
its agent, so the token must reach the agent: a token of one conversation may not say
whether its agent is alive or stopped), optional ``status`` (a short word; ``stopped``,
``stopping``, ``shutdown``, ``shutting_down`` or ``paused``, in any case, mean a
deliberate shutdown, which the watchdog does not alert on) and ``detail`` (a sentence
of at most 2,000 characters: terminal escape sequences, such as a log line's colours,
are taken out and NUL and the other control characters but tabs and line breaks kept as
spaces, never refused: a beat is never lost for its decoration; ``/agent status`` and
the missed-heartbeat alert show it on one line, cut). Answers ``204``. A heartbeat from
an agent whose missed-heartbeat alert is raised resolves it.

Example:
    >>> # curl -X POST -H "Authorization: Bearer $TOKEN" \\
    >>> #   -d '{"scope": "acme/alice/rss-bot", "status": "ok"}' http://127.0.0.1:3000/v1/heartbeats
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from aiohttp import web
from pydantic import BeforeValidator, Field, field_validator

from bot.alerts.heartbeats import record
from bot.api import CTX, parse_scope
from bot.api_body import (
    MASKED_AT_MOST,
    Body,
    FreeText,
    agent_call,
    agent_token,
    bearer,
    read_json,
)
from bot.escape import without_escapes
from guards.scopes import Scope
from guards.store import Tx
from guards.tokens import authorize

__all__ = ["routes"]

routes = web.RouteTableDef()
_WORD = re.compile(r"[A-Za-z0-9_.-]+")


def _plain(value: Any) -> Any:
    """A detail as it reads: its escape sequences out, its other control characters as
    spaces (review26 R3 M1: refused, the beat was lost and its live agent paged as
    silent). Before its credentials are masked (a colour code inside ``token=…`` hides
    nothing then); a text over :data:`MASKED_AT_MOST` is refused for its length."""
    if not isinstance(value, str) or len(value) > MASKED_AT_MOST:
        return value
    return without_escapes(value)


class HeartbeatBody(Body):
    scope: str = Field(min_length=1, max_length=400)
    status: str | None = Field(None, min_length=1, max_length=64)
    # cleaned first, then mended and masked as any FreeText; the length is the clean text's
    detail: Annotated[FreeText, BeforeValidator(_plain)] = Field(None, max_length=2000)

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
