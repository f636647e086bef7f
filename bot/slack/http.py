"""HTTP mode: ``POST /slack/events`` on the agent API's aiohttp server.

Every request is verified first, on its raw bytes: the signature with the signing
secret and a timestamp within five minutes (``SignatureVerifier``, what Bolt uses).
Anything else is a ``401`` that reaches no handler, whatever its body holds. A
verified request is carried into the Bolt app (bolt's own aiohttp adapter) and its
answer back; a verified body that does not parse is a ``400``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.slack.surface import SlackSurface

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["EVENTS_PATH", "HttpTransport"]

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


class HttpTransport:
    """A component: adds the Slack route before the server starts."""

    def __init__(self, surface: SlackSurface, *, signing_secret: str) -> None:
        self.surface = surface
        self.verifier = SignatureVerifier(signing_secret)

    async def start(self, ns: Nightshift) -> None:
        ns.extras["slack"] = self.surface
        ns.extra_routes.append(web.post(EVENTS_PATH, self.handle))

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except ConnectionResetError:  # the client went away: an answer nobody receives
            return web.json_response(
                {"error": "invalid_body", "message": "the connection closed before the body"},
                status=400,
            )
        try:
            verified = self.verifier.is_valid_request(body, dict(request.headers))
        except (ValueError, OverflowError):  # a timestamp that is not a number of seconds
            verified = False
        if not verified:
            return web.json_response(
                {"error": "invalid_request", "message": "not signed by Slack (or too old)"},
                status=401,
            )
        try:
            text = body.decode("utf-8")
            bolt_request = AsyncBoltRequest(
                body=text,
                query=request.query_string,
                headers=dict(request.headers),
            )
        except (ValueError, RecursionError) as exc:  # JSON, form or UTF-8 that does not parse
            log.warning("a signed Slack request did not parse: %s", exc)
            return web.json_response(
                {"error": "invalid_body", "message": "the request body does not parse"},
                status=400,
            )
        bolt_response = await self.surface.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def stop(self, ns: Nightshift) -> None:
        await self.surface.close()
