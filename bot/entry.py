"""The ``nightshift`` command's first lines (the console script and ``python -m bot``).

A SIGTERM that comes while ``nightshift run`` is still importing (about a second, before
it handles signals itself) exits 0, as one a moment later does: nothing is written by
then. Every other command gets the default back once its arguments are read (a killed
``ledger verify`` must not say 0).

Example:
    >>> # nightshift run &  sleep 0.2;  kill -TERM $!   → exit status 0
"""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["main", "stop_while_starting"]


def stop_while_starting(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler until ``run`` installs its own: exit 0 (nothing started)."""
    raise SystemExit(0)


def main() -> int:
    signal.signal(signal.SIGTERM, stop_while_starting)
    from bot.cli import main as cli_main  # imported after: the imports are the slow part

    return cli_main()
