"""One Nightshift per database: a second one would send every Slack message twice.

Two processes on one file keep the money right (SQLite serialises their writes), but
each delivers the outbox, runs the agents' jobs and keeps its own duplicate index: every
page goes out twice, a shell-mode second process swallows pages, and a job's run is
abandoned by the other. So the process that serves holds an exclusive ``flock`` on
``<db>.lock`` while it runs (it says who holds it), and one on the database file itself:
a hard link in another folder, or the file bind-mounted into two containers, has another
``.lock`` beside it but is the same inode (audit23 backup 4). On a local Linux file system
a ``flock`` and SQLite's POSIX locks do not touch each other: the CLI's commands still open
the file (on NFS a flock is a POSIX lock, and would keep them out: review23 L2).
The kernel lets go when the process exits, even on SIGKILL. The CLI's short commands
(``token``, ``ledger verify``) take neither.

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

__all__ = ["AlreadyRunning", "RunLock", "serving"]

log = logging.getLogger(__name__)
ANOTHER_PATH = "through another path to this file: a hard link, or a bind mount"
#: locks this process took ahead of its start, by path (:meth:`RunLock.hand_on`)
_handed: dict[str, RunLock] = {}


class AlreadyRunning(OSError):
    """Another process serves this database."""


class RunLock:
    """The exclusive locks of the process that serves one database."""

    def __init__(self, fds: list[int], path: str, *, file_fd: int | None = None) -> None:
        self._fds = fds
        self._file_fd = file_fd  # the one on the database file itself (among fds)
        self.path = path

    @classmethod
    def take(cls, db: str) -> RunLock | None:
        """Lock ``<db>.lock`` and the database file for this process, or raise
        AlreadyRunning naming the holder.

        The path is the database's real one, so a symlink or another spelling of it finds
        the same lock; the file's own lock finds a hard link or a bind mount of it (the
        file is made if there is none yet: empty, as SQLite starts one). None when there is
        no lock to take: the folder is missing (opening the database then says so in its
        own words), or neither lock can be made or taken (said in a WARNING: the process
        runs, unguarded).
        """
        real = os.path.realpath(db)
        if (handed := _handed.pop(f"{real}.lock", None)) is not None:
            return handed  # (this process holds it already: a second flock would fail)
        if not os.path.isdir(os.path.dirname(real)):
            return None
        fds = [fd for fd in (_path_lock(db, real),) if fd is not None]
        try:
            on_file = _file_lock(db, real)
        except AlreadyRunning:
            for fd in fds:
                os.close(fd)
            raise
        if on_file is not None:
            fds.append(on_file)
        return cls(fds, f"{real}.lock", file_fd=on_file) if fds else None

    def hand_on(self) -> None:
        """Keep holding the locks for the next :meth:`take` of this database in this
        process: a reload's hold (bot.reload_refused) hands them to the start it ends in,
        so that no other process takes the database in between."""
        _handed[self.path] = self

    def release(self, *, keep_file: bool = False) -> None:
        """Let go of both locks. After the store is closed: closing a descriptor of the
        database file drops every POSIX lock this process holds on it, SQLite's too.
        ``keep_file``: a connection may still be open (an open called off midway): the
        file's own lock is kept until the process ends."""
        fds, self._fds = self._fds, []
        for fd in fds:
            if keep_file and fd == self._file_fd:
                continue
            os.close(fd)  # closing lets go of the lock (the file stays, as SQLite's -shm does)


def _running(holder: str, db: str) -> AlreadyRunning:
    return AlreadyRunning(
        f"another Nightshift ({holder}) is running on {db}; stop it first:"
        " two on one database would send every alert twice and run every job twice"
    )


def _path_lock(db: str, real: str) -> int | None:
    """The lock beside the database's real path, with its holder's pid and start time."""
    path = f"{real}.lock"
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
        raise _running(holder, db) from None
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
    return fd


def _file_lock(db: str, real: str) -> int | None:
    """The lock on the database file itself (its inode, whatever path reaches it)."""
    try:
        fd = os.open(real, os.O_RDONLY | os.O_CREAT, 0o600)  # as create_private makes it
    except OSError:  # a folder, a file this user may not open: the store says why
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _flock_holder(os.fstat(fd))
        os.close(fd)  # (no SQLite connection to the file is open yet)
        raise _running(f"pid {pid}, {ANOTHER_PATH}" if pid else ANOTHER_PATH, db) from None
    except OSError as exc:
        os.close(fd)
        log.warning("running without the one-process lock on %s itself: %s", real, exc.strerror)
        return None
    return fd


def serving(db: str) -> str | None:
    """Who serves ``db`` now ("pid 31458"; "a run" when /proc does not say), or None:
    a look at the file's lock that takes nothing (the CLI's commands ask, before they
    open the file: closing this descriptor would drop their SQLite locks)."""
    try:
        fd = os.open(os.path.realpath(db), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _flock_holder(os.fstat(fd))
        return f"pid {pid}" if pid else "a run"
    except OSError:
        return None
    finally:
        os.close(fd)  # (a lock it took goes with it)
    return None


def _flock_holder(st: os.stat_result) -> str | None:
    """The pid holding a ``flock`` on this file, from /proc/locks (None when it does not
    say: another pid namespace, another OS)."""
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:  # "4: FLOCK  ADVISORY  WRITE 31458 fe:00:2147556 0 EOF"
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == inode and parts[4] != "0":
            return parts[4]
    return None


def _identity() -> str:
    """This process, the same across an exec (a SIGHUP restart in place): its pid and when
    the kernel started it, where /proc says (a container's pid 1 after a restart is
    another process)."""
    try:
        ticks = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        ticks = "?"
    return f"{os.getpid()}:{ticks}"
