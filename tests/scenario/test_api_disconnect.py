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


async def test_a_slack_request_cut_short_logs_no_error(slack_http, caplog):
    """audit8 M1: /slack/events reads its body before checking the signature, so anyone
    could write error lines by hanging up mid-body."""
    slack = await slack_http({})
    url = urlsplit(slack.app.url)
    head = (
        "POST /slack/events HTTP/1.1\r\n"
        f"Host: {url.hostname}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            _reader, writer = await asyncio.open_connection(url.hostname, url.port)
            writer.write(head.encode() + b'{"scope":')  # and then nothing
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        counted = 'nightshift_http_requests_total{route="/slack/events",status="400"} 3.0'
        for _ in range(100):
            metrics = (await slack.app.client.get("/metrics")).text
            if counted in metrics:
                break
            await asyncio.sleep(0.05)
        assert counted in metrics
    assert [rec for rec in caplog.records if rec.levelno >= logging.ERROR] == []
