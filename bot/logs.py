"""One log line per event: readable on a terminal, JSON lines otherwise."""

from __future__ import annotations

import json
import logging
import sys
import time

__all__ = [
    "NOISY",
    "AcceptErrorsQuietly",
    "MalformedRequestsQuietly",
    "SkippedRunsQuietly",
    "Throttle",
    "quiet_malformed_requests",
    "setup_logging",
]

# libraries whose INFO lines would drown Nightshift's own: setup_logging holds them at WARNING
NOISY = ("aiohttp.access", "apscheduler", "slack_bolt", "slack_sdk", "httpx")


class Throttle:
    """Says the first event of a kind each minute, and counts the rest held back, so that
    the next one said tells how many it stands for."""

    EVERY_SECONDS = 60.0
    MAX_KINDS = 100

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self._held_back: dict[str, int] = {}

    def let_through(self, kind: str, at: float) -> str | None:
        """None to hold the event back; else what to add to its line (``; 12 more since
        the last report``, or nothing)."""
        if at - self.last.get(kind, float("-inf")) < self.EVERY_SECONDS:
            self._held_back[kind] = self._held_back.get(kind, 0) + 1
            return None
        if len(self.last) >= self.MAX_KINDS:
            self.last.clear()
        self.last[kind] = at
        held = self._held_back.pop(kind, 0)
        return f"; {held} more since the last report" if held else ""


class _OnceAMinute(logging.Filter):
    """A filter letting through the first record of a kind each minute (:class:`Throttle`)."""

    def __init__(self) -> None:
        super().__init__()
        self.throttle = Throttle()

    def _let_through(self, kind: str, record: logging.LogRecord) -> str | None:
        return self.throttle.let_through(kind, record.created)


class MalformedRequestsQuietly(_OnceAMinute):
    """aiohttp logs a request it cannot parse (a bad header byte, say) as an ERROR with a
    traceback that quotes the offending line: anyone who can reach the port could fill
    the log, and a header may carry a token. It is the client's fault, answered 400: one
    INFO line a minute naming the last peer, quoting nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        # imported here, not above: every CLI command sets up logging, and aiohttp was 40%
        # of a `nightshift token list`; a record of aiohttp's server has it loaded already
        from aiohttp.http_exceptions import HttpProcessingError

        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        since = self._let_through("malformed", record)
        if since is None:
            return False
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg = "malformed HTTP request from %s (answered 400; said once a minute%s)"
        record.args = (peer, since)
        record.exc_info = record.exc_text = None
        return True


class AcceptErrorsQuietly(_OnceAMinute):
    """asyncio logs every failed ``accept()`` (out of file descriptors: thousands of
    half-open connections, say) as an ERROR with a traceback, hundreds of times a
    second: the log would fill the disk while the port is flooded. One WARNING a
    minute says it is happening and how often."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("socket.accept() out of system resource"):
            return True
        since = self._let_through("accept", record)
        if since is None:
            return False
        exc = record.exc_info[1] if record.exc_info else None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = "cannot accept connections: %s (said once a minute%s)"
        record.args = (exc or "out of resources", since)
        record.exc_info = record.exc_text = None
        return True


class SkippedRunsQuietly(_OnceAMinute):
    """APScheduler warns each time an upkeep job's tick is skipped because its last run
    has not ended (waiting on a database another process locked, say), or ran late:
    every second for the breaker tick, burying the one ERROR a minute that says what is
    wrong. One WARNING a minute per job says it instead."""

    SKIPPED = "maximum number of running instances reached"
    LATE = "was missed by"

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if self.SKIPPED in text:
            what = "is still running (waiting on the database?): its next runs are skipped"
        elif self.LATE in text:
            what = "missed a run (the process was busy or asleep)"
        else:
            return True
        job = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        name = str(getattr(job, "name", job))
        since = self._let_through(f"{what}:{name}", record)
        if since is None:
            return False
        record.msg = "upkeep job %s %s (said once a minute%s)"
        record.args = (name, what, since)
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
    # (slack_sdk's Socket Mode retries, lowered to DEBUG, still show at DEBUG: see
    # bot.slack.socket_logs, which reads this root level past the hold)
    for noisy in NOISY:
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
    """Install :class:`MalformedRequestsQuietly` on aiohttp's server logger,
    :class:`AcceptErrorsQuietly` on asyncio's and :class:`SkippedRunsQuietly` on
    APScheduler's (once each)."""
    for name, kind in (
        ("aiohttp.server", MalformedRequestsQuietly),
        ("asyncio", AcceptErrorsQuietly),
        ("apscheduler.scheduler", SkippedRunsQuietly),
        ("apscheduler.executors.default", SkippedRunsQuietly),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
