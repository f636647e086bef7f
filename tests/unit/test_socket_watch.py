"""The Socket Mode watch ends with the stop that lands while it replaces a client
(review27 M3: its own cancellation was swallowed while it waited for the old connect
task; it went on, opened new clients, and the stop took the 5 s a component has).
Slack is stubbed here: the transport's own code runs unchanged."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.slack import socket_mode
from bot.slack.socket_mode import SocketModeTransport


class _Client:
    async def is_connected(self) -> bool:
        return False


class _HangingHandshake:
    opened = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _HangingHandshake.opened += 1
        self.client = _Client()

    async def connect_async(self) -> None:
        try:
            await asyncio.sleep(3600)  # a handshake that hangs
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # unwinding (closing the half-open connection)
            raise

    async def close_async(self) -> None:
        return None


class _Surface:
    client = None
    app = None

    async def close(self) -> None:
        return None


async def _no_check(*args: Any, **kwargs: Any) -> None:
    return None


async def test_a_stop_during_a_client_s_replacement_ends_the_watch(monkeypatch):
    monkeypatch.setattr(socket_mode, "OnceHandler", _HangingHandshake)
    monkeypatch.setattr(socket_mode, "check_app_token", _no_check)
    monkeypatch.setattr(socket_mode, "WATCH_SECONDS", 0.05)
    monkeypatch.setattr(socket_mode, "DOWN_SECONDS", 0.3)
    transport = SocketModeTransport(_Surface(), app_token="xapp-1-A-1-x")  # type: ignore[arg-type]
    transport._open()
    transport._watch = asyncio.create_task(transport._watching())
    await asyncio.sleep(0.45)  # the watch is in its _close, waiting for the old connect
    began = time.monotonic()
    await asyncio.wait_for(transport.stop(None), 5)  # type: ignore[arg-type]
    assert time.monotonic() - began < 1.5
    opened = _HangingHandshake.opened
    await asyncio.sleep(0.5)
    assert transport._watch.done() and _HangingHandshake.opened == opened
