"""A fake Slack whose Socket Mode URLs expire, as Slack's do (audit26b H1).

``apps.connections.open`` hands out ``ws://.../socket?ticket=N``. :meth:`TicketSlack.drop`
aborts the live websocket, and from then on every ticket issued so far is refused (401),
as Slack refuses an expired URL; ``refusing = True`` refuses every websocket (503, Slack
down). A client that retries its old URL never gets back in; one that asks
``apps.connections.open`` again does.
"""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

from tests.fakes.slack_api import FakeSlack

__all__ = ["TicketSlack"]


class TicketSlack(FakeSlack):
    """:class:`~tests.fakes.slack_api.FakeSlack` with expiring Socket Mode tickets."""

    def __init__(self) -> None:
        super().__init__()
        self.refusing = False
        self.expired: set[str] = set()
        self.attempts: list[tuple[str, str]] = []  # (ticket, "open" | "refused" | "expired")
        self._tickets = itertools.count(1)
        self._issued: list[str] = []
        self._request: web.Request | None = None

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ticket = str(next(self._tickets))
        self._issued.append(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket?ticket={ticket}"}

    @property
    def issued(self) -> list[str]:
        return list(self._issued)

    def drop(self) -> None:
        """Abort the live socket (no close frame) and expire every ticket issued so far."""
        self.expired.update(self._issued)
        self.socket_connected.clear()
        if self._request is not None and self._request.transport is not None:
            self._request.transport.abort()

    async def _socket(self, request: web.Request) -> web.StreamResponse:  # type: ignore[override]
        ticket = request.query.get("ticket", "")
        if self.refusing:
            self.attempts.append((ticket, "refused"))
            return web.Response(status=503, text="no")
        if ticket in self.expired:
            self.attempts.append((ticket, "expired"))
            return web.Response(status=401, text="expired ticket")
        self.attempts.append((ticket, "open"))
        self._request = request
        return await super()._socket(request)
