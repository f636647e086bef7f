"""bot.entry: only ``nightshift run`` keeps SIGTERM, SIGINT and SIGHUP held while it loads
(review28 R1 M1, M2); every other command gets them back once its arguments are read,
and one that came meanwhile ends it as it would have. (``run`` itself: the real process,
tests/e2e/test_process.py.)"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.entry import main

ROOT = Path(__file__).resolve().parents[2]


def test_a_command_other_than_run_gets_its_signals_back(tmp_path: Path) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    assert signal.SIGHUP not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    try:
        assert main(["ledger", "verify", "--db", str(tmp_path / "nosuch.db")]) == 2
        assert {sig: signal.getsignal(sig) for sig in before} == before  # Ctrl-C works
        assert signal.SIGHUP not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_signal_held_while_a_command_loaded_ends_it_once_given_back(
    sig: signal.Signals,
) -> None:
    """A `ledger verify` sent SIGHUP (a closed terminal) or SIGTERM while importing ends
    by that signal, as it would have without bot.entry: not 0, not run to the end."""
    script = (
        "import signal, sys\n"
        "from bot.entry import hold, release\n"
        "hold()\n"
        f"signal.raise_signal({int(sig)})\n"
        "print('held', flush=True)\n"
        "release()\n"
        "print('not ended')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout) == (-sig, "held\n"), done.stderr


def test_a_bad_command_line_gives_the_held_signals_back_first() -> None:
    """review28 R8 L3: a bad command line (or --help) ended before the signals bot.entry
    held went back, so a Ctrl-C or SIGTERM that came while it loaded was lost: exit 2
    (or 0) instead of 130 or the signal."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    from bot.cli import main as cli_main  # (what bot.entry.main runs once it holds them)
    from bot.entry import hold

    try:
        hold()
        signal.raise_signal(signal.SIGINT)  # a Ctrl-C while it loaded: noted
        assert cli_main(["no-such-command"]) == 130
        assert {sig: signal.getsignal(sig) for sig in before} == before
        assert signal.SIGHUP not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
        with pytest.raises(SystemExit) as ended:  # none came: argparse's own exit
            main(["no-such-command"])
        assert ended.value.code == 2
        assert {sig: signal.getsignal(sig) for sig in before} == before
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
