"""The ``nightshift`` command's first lines (the console script and ``python -m bot``).

A SIGTERM that comes while ``nightshift run`` is still importing (about a second, before
it handles signals itself) is noted, not acted on where it lands: ``run`` stops as soon
as it handles signals, with 0, as for one a moment later. Every other command gets the
default back once its arguments are read, and a SIGTERM noted meanwhile then ends it as
the default would (a killed ``ledger verify`` must not say 0).

Example:
    >>> # nightshift run &  sleep 0.2;  kill -TERM $!   → exit status 0
"""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["main", "stop_requested", "stop_while_starting"]

_noted: list[int] = []  # the signals noted before the command handled them


def stop_while_starting(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler until the command installs its own: note it (raising here
    could land anywhere in the imports)."""
    _noted.append(signum)


def stop_requested() -> bool:
    """Whether a SIGTERM came before the command handled signals itself."""
    return bool(_noted)


def main() -> int:
    signal.signal(signal.SIGTERM, stop_while_starting)
    from bot.cli import main as cli_main  # imported after: the imports are the slow part

    return cli_main()
