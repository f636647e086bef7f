"""Socket Mode: Bolt's AsyncSocketModeHandler on slack_sdk's aiohttp client.

The connection is opened in the background (``apps.connections.open`` then the
websocket), so a Slack outage does not hold up start-up; the client reconnects
by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bot.slack.client import check_at_start
from bot.slack.surface import SlackSurface

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["SocketModeTransport"]

log = logging.getLogger(__name__)


class SocketModeTransport:
    """A component: connects to Slack over a websocket and feeds the surface."""

    def __init__(self, surface: SlackSurface, *, app_token: str) -> None:
        self.surface = surface
        self.app_token = app_token
        self.handler: AsyncSocketModeHandler | None = None
        self._connect: asyncio.Task[None] | None = None
        self._token_check: asyncio.Task[None] | None = None

    async def start(self, ns: Nightshift) -> None:
        self._token_check = await check_at_start(
            self.surface.client, reloaded=ns.reloaded, app_token=self.app_token
        )
        ns.extras["slack"] = self.surface
        self.handler = AsyncSocketModeHandler(
            self.surface.app, self.app_token, web_client=self.surface.client
        )
        self._connect = asyncio.create_task(
            self.handler.connect_async(),  # type: ignore[no-untyped-call]
            name="slack-socket",
        )

    @property
    def connected(self) -> bool:
        return self._connect is not None and self._connect.done() and not self._connect.cancelled()

    async def stop(self, ns: Nightshift) -> None:
        if self._token_check is not None:
            self._token_check.cancel()
        if self._connect is not None and not self._connect.done():
            self._connect.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connect
        if self.handler is not None:
            try:
                await self.handler.close_async()  # type: ignore[no-untyped-call]
            except Exception:
                log.warning("closing the Socket Mode connection failed", exc_info=True)
        await self.surface.close()
