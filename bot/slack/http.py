"""HTTP mode: ``POST /slack/events`` on the agent API's aiohttp server.

Two translation functions (bolt's own aiohttp adapter) carry the request into the
Bolt app and its answer back; Bolt checks the signature and the timestamp (a
request older than five minutes, or signed with another secret, is a 401 and
reaches no handler).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.slack.surface import SlackSurface

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["EVENTS_PATH", "HttpTransport"]

EVENTS_PATH = "/slack/events"


class HttpTransport:
    """A component: adds the Slack route before the server starts."""

    def __init__(self, surface: SlackSurface) -> None:
        self.surface = surface

    async def start(self, ns: Nightshift) -> None:
        ns.extras["slack"] = self.surface
        ns.extra_routes.append(web.post(EVENTS_PATH, self.handle))

    async def handle(self, request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await self.surface.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def stop(self, ns: Nightshift) -> None:
        await self.surface.close()
