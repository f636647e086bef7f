"""Opening a database only to read it, also on a read-only file system (a snapshot, a
read-only mount, a backup on read-only media).

SQLite reads a WAL database through its ``-shm`` file, which it makes beside the
database when there is none; on a read-only file system it cannot, and even
``mode=ro`` fails with "unable to open database file" (sqlite.org/wal.html,
"Read-Only Databases"). A database at rest there (no ``-wal`` file, or an empty one:
every write is in the database file itself) is then read as immutable (``immutable=1``:
no locks, no ``-shm``), which is right because nothing changes a file on a read-only
file system. One whose ``-wal`` still holds writes is not: immutable would read the
database without them, a wrong answer rather than none, so it stays refused and
:func:`unfolded_wal` lets the message say why and what to do.

Example:
    >>> # conn = open_read_only("/mnt/snapshot/nightshift.db", busy_timeout_ms=10_000)
    >>> # conn.execute("SELECT COUNT(*) FROM reservations").fetchone()
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

__all__ = ["on_read_only_disk", "open_read_only", "read_only_disk", "unfolded_wal"]


def read_only_disk(path: str | Path) -> bool:
    """Whether ``path`` (a file or a folder) lies on a file system mounted read-only
    (``EROFS`` for every write), as opposed to one this user may not write to.

    Example:
        >>> read_only_disk("/proc/self/nonexistent")
        False
    """
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:  # not there: nothing to say about its disk
        return False


def on_read_only_disk(db: str | Path) -> bool:
    """Whether nothing can write database ``db`` where it is: it, or its folder (where
    SQLite makes its journal), lies on a read-only file system."""
    return read_only_disk(db) or read_only_disk(Path(db).resolve().parent)


def unfolded_wal(db: str | Path) -> bool:
    """Whether ``db``'s ``-wal`` file may hold writes not yet in the database file
    (it is there and not empty: without the ``-shm`` there is no telling which)."""
    try:
        return os.stat(f"{db}-wal").st_size > 0
    except FileNotFoundError:
        return False
    except OSError:  # there but unreadable: assume the worst
        return True


def open_read_only(db: str | Path, *, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection that cannot change ``db`` and has read it (its schema), or the
    ``sqlite3.Error`` that stopped it.

    On a read-only file system where ``mode=ro`` cannot open it, a database at rest is
    opened ``immutable`` instead (see the module docstring); anything else raises as
    SQLite said it.
    """
    path = Path(db).resolve()  # SQLite names its -wal and -shm after the file itself
    uri = path.as_uri()
    try:
        return _opened(f"{uri}?mode=ro", busy_timeout_ms=busy_timeout_ms)
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode != sqlite3.SQLITE_CANTOPEN or not _at_rest_read_only(path):
            raise
    return _opened(f"{uri}?mode=ro&immutable=1", busy_timeout_ms=busy_timeout_ms)


def _at_rest_read_only(path: Path) -> bool:
    """``path`` is a file in a folder on a read-only file system, with no writes waiting
    in its ``-wal``: reading it as immutable reads all there is."""
    return path.is_file() and read_only_disk(path.parent) and not unfolded_wal(path)


def _opened(uri: str, *, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # SQLite opens lazily
    except sqlite3.Error:
        conn.close()
        raise
    return conn
