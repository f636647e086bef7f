"""slack_sdk's Socket Mode retries, as its client logs them, through the real logger and
filter (audit24 M1): a network failure is DEBUG, an unexpected error shows once per outage."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bot.logs import setup_logging
from bot.slack.socket_logs import QUIET, SDK_LOG


@pytest.fixture(autouse=True)
def _fresh() -> None:
    QUIET.connected()


def _retry(error: BaseException) -> None:
    """What slack_sdk's connect() logs for a failed try."""
    try:
        raise error
    except BaseException as exc:
        SDK_LOG.exception(f"Failed to connect (error: {exc}); Retrying...")


def _shown(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()[:40]) for r in caplog.records if r.name == SDK_LOG.name]


def _at(caplog: pytest.LogCaptureFixture, level: int) -> None:
    """Log at ``level``: the root's and slack_sdk's own (a test that ran setup_logging
    before, in the same process, may have left slack_sdk held at WARNING)."""
    caplog.set_level(level)
    caplog.set_level(level, logger="slack_sdk")


def test_network_failures_go_to_debug(caplog):
    _at(caplog, logging.INFO)
    _retry(ConnectionRefusedError(111, "Connect call failed"))
    _retry(TimeoutError())
    _retry(aiohttp.ClientConnectionError("reset"))
    SDK_LOG.error(
        "Failed to check the current session (s_1) or reconnect to the server"
        " (error: ClientConnectorError, message: Cannot connect to host)"
    )
    SDK_LOG.error("Failed to receive or enqueue a message: ClientConnectionResetError, x (s_1)")
    SDK_LOG.warning("Failed to send a ping message (s_1): Cannot write to closing transport")
    assert _shown(caplog) == []


def test_at_debug_they_are_still_there(caplog):
    _at(caplog, logging.DEBUG)
    _retry(ConnectionRefusedError(111, "Connect call failed"))
    assert _shown(caplog) == [("DEBUG", "Failed to connect (error: [Errno 111] Co")]


def test_an_unexpected_error_shows_once_per_outage(caplog):
    _at(caplog, logging.INFO)
    for _ in range(3):
        _retry(KeyError("url"))
        SDK_LOG.error("Failed to check the current session (s_1) (error: KeyError, message: x)")
    assert _shown(caplog) == [
        ("ERROR", "Failed to connect (error: 'url'); Retryi"),
        ("ERROR", "Failed to check the current session (s_1"),
    ]
    assert caplog.records[0].exc_info is not None  # with its traceback
    QUIET.connected()
    _retry(KeyError("url"))
    assert len(_shown(caplog)) == 3  # the next outage shows it once again


def test_other_lines_pass_as_they_are(caplog):
    _at(caplog, logging.INFO)
    SDK_LOG.warning("The current session (s_1) is no longer active. Failed to send a message")
    SDK_LOG.info("A new session (s_2) has been established")
    assert [level for level, _ in _shown(caplog)] == ["WARNING", "INFO"]


# what slack_sdk's issue_new_wss_url logs (before it raises) when apps.connections.open
# answers an error: a 503, or a revoked app token's invalid_auth
WSS_503 = (
    "Failed to retrieve WSS URL: The request to the Slack API failed. (url:"
    " https://slack.com/api/apps.connections.open, status: 503)\nThe server responded with:"
    " {'ok': False, 'error': 'service_unavailable'}"
)


def test_slack_s_api_refusing_a_new_url_goes_to_debug_too(caplog):
    """review24 M1: "Failed to retrieve WSS URL" was not among the retries quieted, so an
    outage of Slack's Web API (or a revoked app token) logged an ERROR every 10 s."""
    _at(caplog, logging.INFO)
    for _ in range(3):
        SDK_LOG.error(WSS_503)
        SDK_LOG.error(WSS_503.replace("503", "200").replace("service_unavailable", "invalid_auth"))
    assert _shown(caplog) == []


def _last() -> str | None:
    return QUIET.last_error


def test_the_last_error_is_kept_on_one_line_for_the_watch(caplog):
    """review24 M2: with the retries at DEBUG an outage's cause was logged nowhere; the
    watch's WARNING says the last one, one line, no traceback, no URL's ticket."""
    _at(caplog, logging.INFO)
    assert _last() is None
    _retry(ConnectionRefusedError(111, "Connect call failed"))
    assert QUIET.last_error == "ConnectionRefusedError: [Errno 111] Connect call failed"
    SDK_LOG.error(WSS_503)
    assert QUIET.last_error == (
        "SlackApiError: The request to the Slack API failed. (url:"
        " https://slack.com/api/apps.connections.open, status: 503) The server responded"
        " with: {'ok': False, 'error': 'service_unavailable'}"
    )
    url = URL("wss://wss-primary.slack.com/link/?ticket=secret-ticket&app_id=A1")
    info = aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    _retry(aiohttp.WSServerHandshakeError(info, (), status=503, message="Invalid status"))
    assert QUIET.last_error is not None and "secret-ticket" not in QUIET.last_error
    assert QUIET.last_error == (
        "WSServerHandshakeError: 503, message='Invalid status',"
        " url='wss://wss-primary.slack.com/link/?…'"
    )
    SDK_LOG.error(
        "Failed to check the current session (s_1) or reconnect to the server"
        " (error: ClientConnectorError, message: Cannot connect to host slack.com:443)"
    )
    assert QUIET.last_error == "ClientConnectorError: Cannot connect to host slack.com:443"
    _retry(OSError("x" * 1000))
    assert QUIET.last_error is not None and len(QUIET.last_error) == 300
    QUIET.connected()
    assert _last() is None  # back: no cause to say


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """What setup_logging's handler writes, the logging set-up restored after."""
    root = logging.getLogger()
    held = [logging.getLogger(n) for n in ("slack_sdk", "slack_bolt", "aiohttp.access")]
    saved = (root.handlers[:], root.level, [h.level for h in held], sys.unraisablehook)
    out = io.StringIO()
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for logger, level in zip(held, saved[2], strict=True):
        logger.setLevel(level)
    sys.unraisablehook = saved[3]


def test_at_nightshift_s_debug_level_the_lowered_lines_show(logged):
    """review24 M2: setup_logging holds slack_sdk at WARNING, so the lowered retries showed
    nowhere, NIGHTSHIFT_LOG_LEVEL=debug or not (the caplog test above never ran it)."""
    setup_logging(logging.INFO, stream=logged)
    _retry(ConnectionRefusedError(111, "Connect call failed"))
    SDK_LOG.error(WSS_503)
    assert logged.getvalue() == ""
    setup_logging(logging.DEBUG, stream=logged)
    _retry(ConnectionRefusedError(111, "Connect call failed"))
    SDK_LOG.error(WSS_503)
    lines = logged.getvalue().splitlines()
    assert [line.count('"level": "debug"') for line in lines if line.startswith("{")] == [1, 1]
    assert "Failed to connect (error: [Errno 111]" in lines[0]
    assert "Failed to retrieve WSS URL" in lines[-1]
    SDK_LOG.debug("on_message invoked: a payload")  # slack_sdk's own chatter stays held
    assert len(logged.getvalue().splitlines()) == len(lines)
