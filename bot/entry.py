"""The ``nightshift`` command's first lines (the console script and ``python -m bot``).

``nightshift run`` loads for a second or two (Python's imports, then the policy) before
it handles signals itself. Meanwhile (review28 R1 M1, M2):

- a stop signal, SIGTERM or SIGINT (Ctrl-C), is noted, not acted on where it lands
  (raising there could land anywhere in the imports): ``run`` looks at the note first
  thing and stops with 0 before it reads the policy, binds the port or opens the
  database; one noted while the policy is read stops it as soon as it handles signals;
- a SIGHUP is held (blocked), as across a reload's ``exec`` (:func:`bot.reload.restart`):
  ``run`` takes it once it handles SIGHUP itself (a reload when the file changed since
  it was read, ignored while stopping) instead of dying of it without a word.

Every other command gets the signals back as they were once its arguments are read
(:func:`release`), and one that came meanwhile then ends it as it would have: a SIGTERM
or a SIGHUP by that signal (a killed ``ledger verify`` must not say 0), a Ctrl-C with
130, as one during the command. A signal its parent had set to be ignored (``nohup``, a
background job of a script) stays ignored until ``run`` handles it.

Example:
    >>> # nightshift run &  sleep 0.2;  kill -TERM $!   → exit status 0
    >>> # nightshift run    (Ctrl-C at once)            → exit status 0, no database made
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

__all__ = ["hold", "main", "release", "stop_requested", "stop_while_starting"]


class _Held:
    """What :func:`hold` changed, for :func:`release`."""

    def __init__(self) -> None:
        self.noted: list[int] = []  # the stop signals that came meanwhile
        self.handlers: dict[int, Any] = {}  # the ones replaced
        self.unblock_hup = False  # SIGHUP was not blocked before


_held = _Held()


def stop_while_starting(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM and SIGINT handler until the command installs its own: note it
    (raising here could land anywhere in the imports)."""
    _held.noted.append(signum)


def stop_requested() -> bool:
    """Whether a SIGTERM or SIGINT came before the command handled signals itself."""
    return bool(_held.noted)


def hold() -> None:
    """Note SIGTERM and SIGINT, and block SIGHUP, until the command handles them."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    _held.unblock_hup = signal.SIGHUP not in blocked
    # SIGTERM's last: its handler in place says all are (tests/e2e/test_process looks)
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # (ignored on purpose: left so)
            _held.handlers[sig] = signal.signal(sig, stop_while_starting)


def release() -> int | None:
    """Give the signals :func:`hold` took back as they were; one that came meanwhile ends
    the process now (a SIGTERM, a SIGHUP), or returns 130 for a SIGINT (None: none came).

    Example:
        >>> hold()
        >>> signal.raise_signal(signal.SIGINT)  # a Ctrl-C: noted, no KeyboardInterrupt
        >>> stop_requested()
        True
        >>> release()
        130
        >>> signal.getsignal(signal.SIGINT) is signal.default_int_handler
        True
    """
    noted, _held.noted = _held.noted, []
    for sig, before in _held.handlers.items():
        signal.signal(sig, before)
    _held.handlers.clear()
    if signal.SIGTERM in noted:
        signal.raise_signal(signal.SIGTERM)  # as it would have ended it (SIG_DFL: killed)
    if _held.unblock_hup:  # one held meanwhile ends it here (SIG_DFL), as it would have
        _held.unblock_hup = False
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    return 130 if signal.SIGINT in noted else None


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (the process's arguments when None)."""
    hold()
    from bot.cli import main as cli_main  # imported after: the imports are the slow part

    return cli_main(argv)  # it releases them once it knows the command (all but `run`)
