"""A client that goes away in the middle of its request is not an error of Nightshift's."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit


async def test_a_body_cut_short_by_the_client_logs_no_error_and_changes_nothing(
    app_factory, caplog
):
    app = await app_factory()
    token = await app.token("acme")
    url = urlsplit(app.url)
    head = (
        "POST /v1/reservations HTTP/1.1\r\n"
        f"Host: {url.hostname}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    )
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            _reader, writer = await asyncio.open_connection(url.hostname, url.port)
            writer.write(head.encode() + b'{"scope": "acme/a/bot", "idem')  # and then nothing
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        # the server has dealt with all three once it has counted them (as bad input)
        counted = 'nightshift_reservations_total{result="invalid_input"} 3.0'
        for _ in range(100):
            metrics = (await app.client.get("/metrics")).text
            if counted in metrics:
                break
            await asyncio.sleep(0.05)
        assert counted in metrics
        r = await app.request(
            "POST",
            "/v1/reservations",
            token=token,
            json={"scope": "acme/a/bot", "idempotency_key": "k1", "max_cost_micros": 10},
        )
    assert r.status_code == 201  # the server is fine
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors == []
    held = await app.ns.store.fetch("SELECT COUNT(*) FROM reservations")
    assert held[0][0] == 1
