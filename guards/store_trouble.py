"""How the store tells the database's trouble (a full disk, a lock held by another
process, an I/O error, the file deleted under the process) from a bug, and what it says
of each: trouble answers 503 and is reported once a minute, a bug is a 500 with its
traceback (:class:`guards.store.Store`).
"""

from __future__ import annotations

import os
import sqlite3

from guards.errors import said

__all__ = ["FileLost", "cause", "identity", "likely_cause", "storage_trouble"]


def likely_cause(exc: BaseException, *, goes_on: bool = False) -> str:
    """What an operator can do about a refusal, from SQLite's primary code. ``goes_on``:
    the process carries on after it (a running server), and a full disk says so; a start
    or a CLI command exits at it."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (5, 6):  # BUSY, LOCKED
        return (
            " (another process holds its write lock: a sqlite3 shell or a backup tool in a"
            " transaction? Nightshift's own commands let go within milliseconds)"
        )
    if code == 13:  # FULL
        return (
            " (the disk holding it is full: free space"
            f"{'; Nightshift goes on by itself' if goes_on else ''})"
        )
    if code == 10:  # IOERR
        return " (an I/O error: check the disk and the file's permissions)"
    if code == 8:  # READONLY
        return (
            " (the file, or its folder, is not writable by this user, or its disk is mounted"
            " read-only)"
        )
    return ""


def identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


# SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
STORAGE_CODES = frozenset({5, 6, 8, 10, 13, 14})  # busy, locked, read-only, I/O, full, open


def storage_trouble(exc: BaseException) -> bool:
    """The database could not do the work (full, locked, an I/O error), as opposed to a
    statement that is wrong (a bug: it stays a 500 with its traceback)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in STORAGE_CODES


def cause(exc: BaseException) -> str:
    """Why the database refused, in a line (a lost file says it all by itself)."""
    return str(exc) if isinstance(exc, FileLost) else said(exc)


class FileLost(Exception):
    """The database file was deleted or replaced under the running process: writes are
    refused (503), as a full disk's are, instead of answered 2xx into a file that is gone."""
