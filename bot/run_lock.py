"""One Nightshift per database: a second one would send every Slack message twice.

Two processes on one file keep the money right (SQLite serialises their writes), but
each delivers the outbox, runs the agents' jobs and keeps its own duplicate index: every
page goes out twice, a shell-mode second process swallows pages, and a job's run is
abandoned by the other. So the process that serves holds an exclusive ``flock`` on
``<db>.lock`` while it runs; the kernel lets go when it exits, even on SIGKILL. The CLI's
short commands (``token``, ``ledger verify``) do not take it.

Example:
    >>> # lock = RunLock.take("nightshift.db")  # raises AlreadyRunning
    >>> # ...; lock.release()
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

__all__ = ["AlreadyRunning", "RunLock"]

log = logging.getLogger(__name__)


class AlreadyRunning(OSError):
    """Another process serves this database."""


class RunLock:
    """The exclusive lock of the process that serves one database."""

    def __init__(self, fd: int, path: str) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def take(cls, db: str) -> RunLock | None:
        """Lock ``<db>.lock`` for this process, or raise AlreadyRunning naming the holder.

        The path is the database's real one, so a symlink or another spelling of it finds
        the same lock. None when there is no lock to take: the folder is missing (opening
        the database then says so in its own words), or the lock file cannot be made or
        locked (said in a WARNING: the process runs, unguarded).
        """
        real = os.path.realpath(db)
        path = f"{real}.lock"
        if not os.path.isdir(os.path.dirname(real)):
            return None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("running without the one-process lock %s: %s", path, exc.strerror)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            said = os.read(fd, 400).decode("utf-8", "replace").splitlines()
            holder = said[0].strip() if said and said[0].strip() else "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another Nightshift ({holder}) is running on {db}; stop it first:"
                " two on one database would send every alert twice and run every job twice"
            ) from None
        except OSError as exc:  # no flock here (some network file systems)
            os.close(fd)
            log.warning("running without the one-process lock %s: %s", path, exc.strerror)
            return None
        me = f"process {_identity()}"
        if os.pread(fd, 400, 0).decode("utf-8", "replace").splitlines()[1:2] != [me]:
            # (this very process: a SIGHUP restart in place keeps its start time)
            os.ftruncate(fd, 0)
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
            os.pwrite(fd, f"pid {os.getpid()}, started {started}\n{me}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)  # closing lets go of the lock (the file stays, as SQLite's -shm does)


def _identity() -> str:
    """This process, the same across an exec (a SIGHUP restart in place): its pid and when
    the kernel started it, where /proc says (a container's pid 1 after a restart is
    another process)."""
    try:
        ticks = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        ticks = "?"
    return f"{os.getpid()}:{ticks}"
