"""Socket Mode: Bolt's AsyncSocketModeHandler on slack_sdk's aiohttp client, and a watch.

The connection is opened in the background (``apps.connections.open`` then the
websocket), so a Slack outage does not hold up start-up. slack_sdk reconnects by
itself after a drop, but it asks for a URL only once per reconnect and then retries
that URL for good: once it has expired (Slack refused reconnects for a minute), no
command or button reaches Nightshift again (slack_sdk issue #1379, audit26b H1). A
handshake that hangs waits 300 s. So a watch of our own asks the client every
``WATCH_SECONDS`` whether it is connected; down for ``DOWN_SECONDS``, it closes that
client and opens a new one, which asks Slack for a new URL; again after
``DOWN_SECONDS``, then twice as long each time up to ``RETRY_MAX_SECONDS``, until the
socket is back.

Every envelope is acknowledged, and one Slack sends again is not run twice (its ids are
kept across clients, and on disk across restarts): :mod:`bot.slack.socket_envelopes`.

It says so once each way: one WARNING when the socket has been down for
``DOWN_SECONDS``, one INFO when it is back ("Slack Socket Mode reconnected after
2m10s"), and ``nightshift_slack_socket_connected`` (0/1) in ``/metrics``. slack_sdk's own
ERROR for each failed retry meanwhile goes to DEBUG, and the WARNING says the last one's
error ("… down for 30s (last error: ClientConnectorError: …)"): :mod:`bot.slack.socket_logs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bot.slack.client import check_app_token, check_at_start
from bot.slack.received import Received
from bot.slack.socket_envelopes import OnceHandler, SeenEnvelopes
from bot.slack.socket_logs import QUIET
from bot.slack.surface import SlackSurface
from guards.config_types import format_seconds

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["SocketModeTransport"]

log = logging.getLogger(__name__)
PING_SECONDS = 10.0  # slack_sdk's ping, and its pace of retries (Bolt's default)
WATCH_SECONDS = 1.0  # how often the watch asks the client whether it is connected
DOWN_SECONDS = 30.0  # down this long: a new client, with a new URL
RETRY_MAX_SECONDS = 120.0  # the longest wait between two new clients (it doubles till then)
CLOSE_SECONDS = 3.0  # closing a client waits this long at most (a stop has 5 s)


class SocketModeTransport:
    """A component: connects to Slack over a websocket and feeds the surface."""

    def __init__(self, surface: SlackSurface, *, app_token: str) -> None:
        self.surface = surface
        self.app_token = app_token
        self.handler: AsyncSocketModeHandler | None = None
        self.connected = False  # as the watch last saw it (the gauge reads it)
        self._connect: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._token_check: asyncio.Task[None] | None = None
        self._seen = SeenEnvelopes()  # shared by every client: a retry may come on the next
        self._received: Received | None = None  # on disk, for a re-send after a restart

    async def check_first(self, ns: Nightshift) -> None:
        """Before the database is opened (bot.app.ChecksFirst): a first start awaits
        Slack's word on both tokens; a reload's restart asks beside the server (start)."""
        if not ns.reloaded:
            await check_at_start(self.surface.client, reloaded=False, app_token=self.app_token)

    async def start(self, ns: Nightshift) -> None:
        if ns.reloaded:
            self._token_check = await check_at_start(
                self.surface.client, reloaded=True, app_token=self.app_token
            )
        ns.extras["slack"] = self.surface
        self._received = Received(ns.store, clock=ns.clock)
        ns.metrics.watch_socket(self)
        self._open()
        self._watch = asyncio.create_task(self._watching(), name="slack-socket-watch")

    def _open(self) -> None:
        """A new client, connecting in the background (it asks Slack for a new URL)."""
        self.handler = OnceHandler(
            self.surface,
            app_token=self.app_token,
            seen=self._seen,
            ping_seconds=PING_SECONDS,
            received=self._received,
        )
        self._connect = asyncio.create_task(
            self.handler.connect_async(),  # type: ignore[no-untyped-call]
            name="slack-socket",
        )

    async def _close(self) -> None:
        if self._connect is not None and not self._connect.done():
            self._connect.cancel()
            # (waited for without taking its cancellation for ours: a stop that lands
            # meanwhile must end the watch, not let it open a new client: review27 M3)
            await asyncio.wait({self._connect})
        if self.handler is not None:
            try:
                await asyncio.wait_for(
                    self.handler.close_async(),  # type: ignore[no-untyped-call]
                    CLOSE_SECONDS,
                )
            except Exception:
                log.warning("closing the Socket Mode connection failed", exc_info=True)

    async def _is_connected(self) -> bool:
        if self.handler is None:
            return False
        try:
            return bool(await self.handler.client.is_connected())
        except Exception:
            return False

    async def _watching(self) -> None:
        """The watch, begun again after an error of its own (one traceback each)."""
        while True:
            try:
                await self._watch_loop()
            except Exception:
                log.exception("the Socket Mode watch failed; it starts again")
                await asyncio.sleep(WATCH_SECONDS)

    async def _watch_loop(self) -> None:
        down_since: float | None = time.monotonic()  # not connected yet
        next_try = time.monotonic() + DOWN_SECONDS
        wait = DOWN_SECONDS
        warned = False
        ever = False
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            now = time.monotonic()
            self.connected = await self._is_connected()
            if self.connected:
                if down_since is not None:
                    QUIET.connected()  # an unexpected error of slack_sdk's may show once again
                if down_since is not None and ever and not warned:  # a drop slack_sdk mended
                    log.debug("Slack Socket Mode reconnected by itself")
                elif down_since is not None and ever:
                    log.info(
                        "Slack Socket Mode reconnected after %s: commands and buttons work again",
                        format_seconds(round(now - down_since)),
                    )
                elif down_since is not None:
                    log.info("Slack Socket Mode connected: /agent commands and buttons work")
                down_since, warned, ever = None, False, True
                continue
            if down_since is None:
                down_since, next_try, wait = now, now + DOWN_SECONDS, DOWN_SECONDS
            if now < next_try:
                continue
            if not warned:
                warned = True
                cause = QUIET.last_error  # slack_sdk's own line for it is at DEBUG
                log.warning(
                    "Slack Socket Mode has been down for %s%s: slash commands and buttons do"
                    " not reach Nightshift (alerts still go out; their buttons do nothing)."
                    " Reconnecting with a new URL, every %s at most; if it lasts, check"
                    " that this host reaches slack.com and wss-primary.slack.com",
                    format_seconds(round(now - down_since)),
                    f" (last error: {cause})" if cause else "",
                    format_seconds(RETRY_MAX_SECONDS),
                )
                # a revoked app token is said in the start's words (an ERROR)
                await check_app_token(self.surface.client, self.app_token, refuse=False)
            await self._close()
            self._open()
            next_try = time.monotonic() + wait
            wait = min(wait * 2, RETRY_MAX_SECONDS)

    async def stop(self, ns: Nightshift) -> None:
        if self._token_check is not None:
            self._token_check.cancel()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch
        await self._close()
        await self.surface.close()
