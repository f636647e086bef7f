"""A client that goes away in the middle of its request is not an error of Nightshift's."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import SplitResult, urlsplit


async def hang_up(url: SplitResult, request: str, *, times: int) -> None:
    """Send ``request`` (its body shorter than its Content-Length) and close, ``times``."""
    for _ in range(times):
        _reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(request.encode())  # and then nothing
        await writer.drain()
        writer.close()
        await writer.wait_closed()


def drop_accept_filters() -> None:
    from bot.logs import AcceptErrorsQuietly

    logger = logging.getLogger("asyncio")
    for f in [f for f in logger.filters if isinstance(f, AcceptErrorsQuietly)]:
        logger.removeFilter(f)


def reservation_head(url: SplitResult, token: str) -> str:
    """The headers of a reservation whose body is to be 400 bytes."""
    return (
        "POST /v1/reservations HTTP/1.1\r\n"
        f"Host: {url.hostname}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    )


async def counted(app: Any, series: str) -> None:
    """Wait (up to 5 s) until /metrics shows ``series``: the server has dealt with them."""
    for _ in range(100):
        if series in (await app.client.get("/metrics")).text:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"/metrics never showed {series}")


async def test_a_body_cut_short_by_the_client_logs_no_error_and_changes_nothing(
    app_factory, caplog
):
    app = await app_factory()
    token = await app.token("acme")
    url = urlsplit(app.url)
    head = reservation_head(url, token)
    with caplog.at_level(logging.INFO):
        await hang_up(url, head + '{"scope": "acme/a/bot", "idem', times=3)
        # the server has dealt with all three once it has counted them (as bad input)
        await counted(app, 'nightshift_reservations_total{result="invalid_input"} 3.0')
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
        await hang_up(url, head + '{"scope":', times=3)
        await counted(
            slack.app, 'nightshift_http_requests_total{route="/slack/events",status="400"} 3.0'
        )
    assert [rec for rec in caplog.records if rec.levelno >= logging.ERROR] == []


async def test_a_malformed_request_is_one_info_line_that_quotes_nothing(app_factory, caplog):
    """audit10 L6: a bad header byte was an ERROR with a traceback quoting the header."""
    from bot.logs import MalformedRequestsQuietly, quiet_malformed_requests

    app = await app_factory()
    url = urlsplit(app.url)
    quiet_malformed_requests()
    server = logging.getLogger("aiohttp.server")
    try:
        with caplog.at_level(logging.INFO):
            for _ in range(3):  # audit16 observability M6: one line each, 3,460 a second
                reader, writer = await asyncio.open_connection(url.hostname, url.port)
                writer.write(
                    b"GET /v1/breakers HTTP/1.1\r\nAuthorization: Bearer ns_tok\x01secret\r\n\r\n"
                )
                await writer.drain()
                answer = await reader.read(100)
                writer.close()
                await writer.wait_closed()
    finally:
        for f in [f for f in server.filters if isinstance(f, MalformedRequestsQuietly)]:
            server.removeFilter(f)
        drop_accept_filters()
    assert answer.startswith(b"HTTP/1.0 400")
    mine = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelno, r.getMessage()) for r in mine] == [
        (logging.INFO, "malformed HTTP request from 127.0.0.1 (answered 400; said once a minute)")
    ]
    assert not any("secret" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_a_connection_that_never_finishes_its_headers_is_closed(app_factory, monkeypatch):
    """audit11 M2: half-sent headers held a file descriptor each for an hour; 20,000 of
    them stopped the API."""
    monkeypatch.setattr("bot.app.IDLE_CONNECTION_SECONDS", 1.0)
    app = await app_factory()
    url = urlsplit(app.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    await writer.drain()
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed, unanswered
    waited = asyncio.get_running_loop().time() - started
    writer.close()
    assert 0.5 < waited < 5
    assert (await app.client.get("/healthz")).status_code == 200


def test_failed_accepts_are_one_warning_a_minute_without_a_traceback(caplog):
    from bot.logs import AcceptErrorsQuietly

    quiet = AcceptErrorsQuietly()
    logger = logging.getLogger("asyncio")
    logger.addFilter(quiet)
    err = OSError(24, "Too many open files")
    try:
        with caplog.at_level(logging.INFO, logger="asyncio"):
            for _ in range(500):
                logger.error(
                    "socket.accept() out of system resource", exc_info=(OSError, err, None)
                )
            quiet.throttle.last["accept"] -= 61  # a minute later
            logger.error("socket.accept() out of system resource", exc_info=(OSError, err, None))
            logger.error("Task exception was never retrieved")  # anything else is untouched
    finally:
        logger.removeFilter(quiet)
    got = [(r.levelno, r.getMessage(), r.exc_info) for r in caplog.records]
    assert got == [
        (
            logging.WARNING,
            "cannot accept connections: [Errno 24] Too many open files (said once a minute)",
            None,
        ),
        (
            logging.WARNING,
            "cannot accept connections: [Errno 24] Too many open files"
            " (said once a minute; 499 more since the last report)",
            None,
        ),
        (logging.ERROR, "Task exception was never retrieved", None),
    ]


async def test_skipped_upkeep_runs_are_one_warning_a_minute_per_job(caplog):
    """audit16 observability M7: while another process held the write lock, APScheduler
    warned at every tick of every upkeep job (95 lines in 70 s), burying the one ERROR a
    minute that says what is wrong."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.logs import SkippedRunsQuietly, quiet_malformed_requests

    async def stuck() -> None:
        await asyncio.sleep(2)

    quiet_malformed_requests()
    scheduler = AsyncIOScheduler()
    scheduler.add_job(stuck, "interval", seconds=0.1, name="breakers", max_instances=1)
    try:
        with caplog.at_level(logging.WARNING, logger="apscheduler"):
            scheduler.start()
            await asyncio.sleep(1.0)
    finally:
        scheduler.shutdown(wait=False)
        for name in ("apscheduler.scheduler", "apscheduler.executors.default"):
            logger = logging.getLogger(name)
            for f in [f for f in logger.filters if isinstance(f, SkippedRunsQuietly)]:
                logger.removeFilter(f)
        drop_accept_filters()
    said = [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")]
    assert said == [
        "upkeep job breakers is still running (waiting on the database?): its next runs are"
        " skipped (said once a minute)"
    ]


async def _half_a_body(url: SplitResult, head: str, part: str) -> tuple[bytes, float]:
    """Send ``head`` and part of its body, then nothing: what comes back, and when the
    server closed the connection (seconds after the part was sent)."""
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write((head + part).encode())
    await writer.drain()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=15)  # to the close
    finally:
        writer.close()
    return answer, loop.time() - started


async def test_a_body_that_stops_short_is_answered_408_and_its_connection_closed(
    app_factory, monkeypatch
):
    """audit24 resources M2: headers complete, the body short of its Content-Length, then
    silence: the connection (and its file descriptor) was held forever."""
    monkeypatch.setattr("bot.api_body.BODY_SECONDS", 1.0)
    app = await app_factory()
    token = await app.token("acme")
    url = urlsplit(app.url)
    head = reservation_head(url, token)
    answer, waited = await _half_a_body(url, head, '{"scope": "acme/a/bot", "idem')
    assert 0.5 < waited < 5, waited  # at the deadline, not 10 s of lingering later
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 408"), answer
    said = json.loads(body)
    assert said["error"] == "body_timeout"
    assert said["message"] == (
        "the body did not all arrive within 1s (29 of 400 bytes came);"
        " send the whole body at once, on a new connection"
    )
    assert (await app.store.fetch("SELECT COUNT(*) FROM reservations"))[0][0] == 0
    assert (await app.client.get("/healthz")).status_code == 200


async def test_a_slack_request_whose_body_stops_short_is_answered_408_and_closed(
    slack_http, monkeypatch
):
    monkeypatch.setattr("bot.api_body.BODY_SECONDS", 1.0)
    slack = await slack_http({})
    url = urlsplit(slack.app.url)
    head = (
        "POST /slack/events HTTP/1.1\r\n"
        f"Host: {url.hostname}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    answer, waited = await _half_a_body(url, head, '{"scope":')
    assert 0.5 < waited < 5, waited
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 408"), answer
    assert json.loads(body)["error"] == "body_timeout"


def test_a_body_timeout_words_its_time_as_the_alerts_do():
    """audit27 style M4: the 408 said "within 1m15s", the alerts "1m 15s"."""
    from bot.api_body import BODY_SECONDS, BodyTimeout

    assert BODY_SECONDS == 75
    assert BodyTimeout(came=29, expected=400).message == (
        "the body did not all arrive within 1m 15s (29 of 400 bytes came);"
        " send the whole body at once, on a new connection"
    )
