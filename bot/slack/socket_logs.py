"""slack_sdk's Socket Mode client, quiet about retries while Nightshift's watch speaks.

While Slack is out of reach, slack_sdk retries every ``PING_SECONDS`` and logs each
failed try as an ERROR with a traceback ("Failed to connect (error: 503, …); Retrying…"):
about 360 an hour through a night-long Slack incident, where the README promises one
WARNING (the watch's, in :mod:`bot.slack.socket_mode`) and one INFO when it is back
(audit24 M1). So the client logs to :data:`SDK_LOG` and :data:`QUIET` sits on it:

- a failed try for a network reason (a refused, reset or dropped connection, an HTTP
  status on the handshake, a timeout, Slack's API refusing or out of reach) goes to
  DEBUG: the watch's WARNING and its gauge already say the socket is down;
- any other error there (a bug, something the library cannot handle) shows once, at its
  own level and with its traceback; its repeats go to DEBUG until the socket is
  connected again (:meth:`QuietRetries.connected`), then it may show once more;
- everything else the client logs passes as it is.

The last failed try's error, on one line ("ClientConnectorError: Cannot connect to host
…", a URL's query left out: a websocket URL carries its ticket), is kept for the watch's
WARNING (:attr:`QuietRetries.last_error`): that WARNING says the cause, as the lowered
lines no longer do. Those show when Nightshift logs at DEBUG (``NIGHTSHIFT_LOG_LEVEL=debug``,
the root logger's level), though ``setup_logging`` holds ``slack_sdk`` at WARNING.

>>> import logging
>>> logging.getLogger("doc.sdk").setLevel(logging.INFO)
>>> record = logging.LogRecord("doc.sdk", logging.ERROR, "", 0, "Failed to connect", None, None)
>>> record.exc_info = (OSError, OSError("refused"), None)
>>> QuietRetries().filter(record), record.levelname
(False, 'DEBUG')
"""

from __future__ import annotations

import logging
import re

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientNotConnectedError, SlackRequestError

__all__ = ["QUIET", "SDK_LOG", "QuietRetries"]

# the failures slack_sdk logs on the way to a connection, which it then tries again
RETRY_MESSAGES = (
    "Failed to connect",
    "Failed to retrieve WSS URL",  # apps.connections.open refused: a SlackApiError
    "Failed to check the current session",
    "Failed to send a ping message",
    "Failed to receive or enqueue a message",
    "Failed to close the old session",
)
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, TimeoutError
    aiohttp.ClientError,  # a handshake answered 503 or 401, a dropped connection
    SlackApiError,  # apps.connections.open refused (a revoked token: the watch says so)
    SlackRequestError,
    SlackClientNotConnectedError,
)
# the messages that carry no exception name the error class: "(error: ClientConnectorError,"
_NAMED = re.compile(r"(?:\(error: |message: )([A-Za-z_]\w*)[,)]")
# "… (error: X, message: Y)" and "… a message: X, Y (s_1)": the class X and its message Y
_CLASS_MESSAGE = (
    re.compile(r"\(error: (\w+), message: (.*)\)$", re.S),
    re.compile(r"a message: (\w+), (.*) \([^()]*\)$", re.S),
)
_QUERY = re.compile(r"(\w+://[^\s?'\"]+)\?[^\s'\")]*")  # a URL's query (a ticket, a token)
ERROR_CHARS = 300  # the last error as the watch's WARNING says it, at most


def _subclass_names(classes: tuple[type[BaseException], ...]) -> frozenset[str]:
    names: set[str] = set()
    todo = list(classes)
    while todo:
        cls = todo.pop()
        if cls.__name__ not in names:
            names.add(cls.__name__)
            todo.extend(cls.__subclasses__())
    return frozenset(names)


class QuietRetries(logging.Filter):
    """A filter for slack_sdk's Socket Mode logger; see the module's docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._shown: set[tuple[str, str]] = set()  # unexpected errors shown this outage
        self._network_names: frozenset[str] | None = None
        self.last_error: str | None = None  # the last failed try's, on one line

    def connected(self) -> None:
        """The socket is up: an unexpected error may show once again."""
        self._shown.clear()
        self.last_error = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        retry = next((m for m in RETRY_MESSAGES if message.startswith(m)), None)
        if retry is None:
            return True
        self.last_error = _short_error(record, message, retry)
        error = self._unexpected(record, message)
        if error is None or (retry, error) in self._shown:
            return _to_debug(record)
        self._shown.add((retry, error))
        return True

    def _unexpected(self, record: logging.LogRecord, message: str) -> str | None:
        """The name of the error if it is not a network's, else None."""
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            return None if isinstance(error, NETWORK_ERRORS) else type(error).__name__
        named = _NAMED.search(message)
        if named is None:  # a ping that failed: the connection is broken
            return None
        if self._network_names is None:
            self._network_names = _subclass_names(NETWORK_ERRORS)
        name = named.group(1)
        return None if name in self._network_names else name


def _short_error(record: logging.LogRecord, message: str, retry: str) -> str:
    """``ClientConnectorError: Cannot connect to host …``: the error of a failed try, on
    one line, without a traceback or a URL's query, at most :data:`ERROR_CHARS`."""
    error = record.exc_info[1] if record.exc_info else None
    named = next((m for m in (r.search(message) for r in _CLASS_MESSAGE) if m), None)
    if error is not None:
        text = f"{type(error).__name__}: {error}"
    elif named is not None:
        text = f"{named.group(1)}: {named.group(2)}"
    elif retry == "Failed to retrieve WSS URL":  # slack_sdk logs it for a SlackApiError only
        text = f"{SlackApiError.__name__}: {message[len(retry) :].lstrip(': ')}"
    else:
        text = message
    text = _QUERY.sub(r"\1?…", " ".join(text.split()))
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _to_debug(record: logging.LogRecord) -> bool:
    """Lowers a record to DEBUG: kept where its logger, or Nightshift's log level (the
    root logger's), shows DEBUG (``setup_logging`` holds ``slack_sdk`` at WARNING)."""
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG) or (
        logging.getLogger().isEnabledFor(logging.DEBUG)
    )


SDK_LOG = logging.getLogger("slack_sdk.socket_mode.nightshift")
QUIET = QuietRetries()
SDK_LOG.addFilter(QUIET)
