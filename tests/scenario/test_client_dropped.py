"""The client when the server was reached and the connection closed before its answer.

A real TCP proxy on 127.0.0.1 passes each request to the real server and, once the
server begins its answer (the request is done), closes the client's connection
without passing the answer on, as a proxy that restarts or a load balancer's idle cut
does. The error must say that, not give the advice for a server that refuses
connections (audit26 client L3).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from guards.client import GuardClient, Unavailable
from tests.scenario.test_client import POLICY


@contextlib.asynccontextmanager
async def dropping_proxy(url: str) -> AsyncIterator[str]:
    """A proxy to ``url`` that drops every connection when the server starts answering;
    yields the proxy's own URL."""
    target = urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80

    async def relay(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, port)
        forward = asyncio.create_task(relay(reader, up_writer))
        try:
            await up_reader.read(1)  # the server answers: the request was done
        finally:
            forward.cancel()
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    proxy_port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{proxy_port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_connection_closed_before_the_answer_is_not_called_refused(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    scope = "acme/alice/rss-bot/c1"
    async with dropping_proxy(app.url) as url, GuardClient(url, tok, retries=2) as guard:
        with pytest.raises(Unavailable) as raised:
            await guard.create_reservation(scope, idempotency_key="k-1", max_cost_micros=5000)
    err = raised.value
    assert err.message.startswith(
        f"Nightshift at {url} closed the connection before answering (3 attempts; the last:"
        " RemoteProtocolError"
    ), err.message
    assert err.message.endswith(
        "the request reached it (or a proxy before it) and may have been done; look at its log"
    ), err.message
    assert "is it running" not in err.message
    assert err.maybe_sent and err.dropped and not err.answered
    # it was done, once: the three tries carried the same key
    rows = await app.store.fetch("SELECT state FROM reservations WHERE scope = ?", (scope,))
    assert [r[0] for r in rows] == ["held"]
