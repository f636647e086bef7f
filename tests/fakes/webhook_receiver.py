"""A webhook receiver on 127.0.0.1 (a real aiohttp server) that records what it gets.

It answers each request with the next status of :attr:`WebhookReceiver.script` (200
once the script runs out), with ``Retry-After`` when :attr:`retry_after` is set. It
takes ``/hook`` and ``/hook/<key>`` (a url with a key in its path); with :attr:`echo`
an error page quotes the path and query asked for (as Express's ``Cannot POST /x``
does); with :attr:`trickle` the answer comes one byte every that many seconds, for a
minute (a receiver that holds a request without ever going quiet); with :attr:`hold`
every answer waits until the test sets that event. With :attr:`tls` it speaks HTTPS with
that context's certificate (``https://`` urls).

Example:
    >>> # async def test_x(webhook_receiver):
    >>> #     webhook_receiver.script = [500, 200]
    >>> #     ... webhook_receiver.requests[0].json["event"]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import pytest
from aiohttp import web

__all__ = ["Received", "WebhookReceiver", "webhook_receiver"]

STOP_SECONDS = 0.1  # how long a stop lets an answer under way finish before cancelling it


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass
class WebhookReceiver:
    script: list[int] = field(default_factory=list)
    retry_after: str | None = None
    delay: float = 0.0  # seconds each answer takes (a slow receiver)
    echo: bool = False  # an error answer quotes the path and query it was sent to
    trickle: float = 0.0  # seconds between the bytes of a 200 (0: all at once)
    hold: asyncio.Event | None = None  # each answer waits until it is set (None: none)
    tls: ssl.SSLContext | None = None  # HTTPS with its certificate (None: plain HTTP)
    location: str | None = None  # a 3xx answer's Location (as a moved receiver sends)
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set at each request
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hook"

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_post("/hook/{key}", self._hook)
        # A stop ends the test: an answer still held back (delay, hold, trickle) is cancelled
        # at once, not waited for (aiohttp waits up to 60 s for a handler by default: a
        # 30 s delay held its test's teardown for the 28 s left of it)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_SECONDS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), body))
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.script.pop(0) if self.script else 200
        headers = {"Retry-After": self.retry_after} if self.retry_after and status != 200 else {}
        if self.trickle and status == 200:
            return await self._trickle(request)
        text = "" if status == 200 else "nope"
        if self.location is not None and 300 <= status < 400:  # as aiohttp's redirects say
            headers["Location"] = self.location
            text = f"{status}: {HTTPStatus(status).phrase}"
        if self.echo and status != 200:
            text = f"<html><body><pre>Cannot POST {request.path_qs}</pre></body></html>"
        return web.Response(status=status, text=text, headers=headers)

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the sender gave up on it
            for _ in range(int(60 / self.trickle)):
                await response.write(b".")
                await asyncio.sleep(self.trickle)
        return response

    def events(self) -> list[str]:
        return [r.json["event"] for r in self.requests]


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    """A running receiver; stopped when the test ends."""
    receiver = await WebhookReceiver().start()
    yield receiver
    await receiver.stop()
