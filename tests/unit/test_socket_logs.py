"""slack_sdk's Socket Mode retries, as its client logs them, through the real logger and
filter (audit24 M1): a network failure is DEBUG, an unexpected error shows once per outage."""

from __future__ import annotations

import logging

import aiohttp
import pytest

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


def test_network_failures_go_to_debug(caplog):
    caplog.set_level(logging.INFO)
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
    caplog.set_level(logging.DEBUG)
    _retry(ConnectionRefusedError(111, "Connect call failed"))
    assert _shown(caplog) == [("DEBUG", "Failed to connect (error: [Errno 111] Co")]


def test_an_unexpected_error_shows_once_per_outage(caplog):
    caplog.set_level(logging.INFO)
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
    caplog.set_level(logging.INFO)
    SDK_LOG.warning("The current session (s_1) is no longer active. Failed to send a message")
    SDK_LOG.info("A new session (s_2) has been established")
    assert [level for level, _ in _shown(caplog)] == ["WARNING", "INFO"]
