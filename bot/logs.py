"""One log line per event: readable on a terminal, JSON lines otherwise."""

from __future__ import annotations

import json
import logging
import sys
import time

from aiohttp.http_exceptions import HttpProcessingError

__all__ = [
    "AcceptErrorsQuietly",
    "MalformedRequestsQuietly",
    "quiet_malformed_requests",
    "setup_logging",
]


class MalformedRequestsQuietly(logging.Filter):
    """aiohttp logs a request it cannot parse (a bad header byte, say) as an ERROR with a
    traceback that quotes the offending line: anyone who can reach the port could fill
    the error log, and a header may carry a token. It is the client's fault, answered
    400: one INFO line naming the peer, quoting nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "malformed HTTP request from %s (answered 400)", (peer,)
            record.exc_info = record.exc_text = None
        return True


class AcceptErrorsQuietly(logging.Filter):
    """asyncio logs every failed ``accept()`` (out of file descriptors: thousands of
    half-open connections, say) as an ERROR with a traceback, hundreds of times a
    second: the log would fill the disk while the port is flooded. One WARNING a
    minute says it is happening and how often."""

    EVERY_SECONDS = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._last = float("-inf")
        self._held_back = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("socket.accept() out of system resource"):
            return True
        if record.created - self._last < self.EVERY_SECONDS:
            self._held_back += 1
            return False
        exc = record.exc_info[1] if record.exc_info else None
        since = f"; {self._held_back} more since the last report" if self._held_back else ""
        self._last, self._held_back = record.created, 0
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = "cannot accept connections: %s (said once a minute%s)"
        record.args = (exc or "out of resources", since)
        record.exc_info = record.exc_text = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line)


def setup_logging(level: int = logging.INFO, *, stream: object = None) -> None:
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)  # type: ignore[arg-type]
    if getattr(out, "isatty", lambda: False)():
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "apscheduler", "slack_bolt", "slack_sdk", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_malformed_requests()
    sys.unraisablehook = _log_unraisable  # Python's own "Exception ignored in ..." lines:
    # through the handler, so a JSON-lines log stays JSON lines where it matters most


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    exc = unraisable.exc_value
    logging.getLogger("python").error(
        "%s: %s",
        unraisable.err_msg or "Exception ignored in",
        repr(unraisable.object),
        exc_info=(type(exc), exc, unraisable.exc_traceback) if exc is not None else None,
    )


def quiet_malformed_requests() -> None:
    """Install :class:`MalformedRequestsQuietly` on aiohttp's server logger and
    :class:`AcceptErrorsQuietly` on asyncio's (once each)."""
    for name, kind in (
        ("aiohttp.server", MalformedRequestsQuietly),
        ("asyncio", AcceptErrorsQuietly),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
