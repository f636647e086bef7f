"""The database file: connection settings and the schema migrations.

``migrations/NNNN_name.sql`` files are applied in order, each in its own
transaction, and recorded in ``schema_migrations``; a database that has a
migration this code does not know is refused (it was written by a newer version).

Example:
    >>> conn = connect(":memory:")
    >>> "0001_ledger" in apply_migrations(conn, now=0.0)
    True
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from pathlib import Path

__all__ = [
    "MIGRATIONS_DIR",
    "SchemaTooNew",
    "apply_migrations",
    "begin_immediate",
    "connect",
    "schema_behind",
    "statements",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SchemaTooNew(RuntimeError):
    """The database was written by a newer Nightshift than this one."""


def create_private(path: str | Path) -> bool:
    """Create ``path`` empty and readable by its owner only (0600) when nothing is there;
    True when this call made it.

    SQLite takes an empty file for a new database and makes its ``-wal`` and ``-shm`` with
    the database file's mode; left to the umask (usually 022), every user of the machine
    could read the jobs' signing key and the Slack reply links in it (audit24 security M1).
    A path it cannot create is left to SQLite, which says why."""
    text = str(path)
    if not text or text == ":memory:" or text.startswith("file:"):
        return False
    try:
        os.close(os.open(text, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError:  # there already (an existing database), or a folder that is not
        return False
    return True


def connect(path: str | Path) -> sqlite3.Connection:
    """Open a connection with the pragmas every connection needs (a new file: 0600)."""
    create_private(path)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Two processes opening a new file at once (`migrate` beside a starting `run`): the
    # switch to WAL can be refused at once, without SQLite's busy handler: try again.
    try:
        _while_locked(conn, "PRAGMA journal_mode=WAL", BUSY_TIMEOUT_MS / 1000, pause=0.01)
    except sqlite3.Error:
        conn.close()
        raise
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # After a checkpoint, a WAL that a big transaction (a migration, a backlog) grew is
    # truncated back to this size instead of keeping its peak size on disk until shutdown.
    conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES}")
    return conn


BUSY_TIMEOUT_MS = 10_000
JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
LOCK_POLL_SECONDS = 0.0005


def begin_immediate(
    conn: sqlite3.Connection, *, timeout: float = 30.0, give_up: threading.Event | None = None
) -> None:
    """``BEGIN IMMEDIATE``, trying for the write lock every half millisecond until ``timeout``.

    SQLite's own busy handler backs off to one try per 100 ms. Against a writer that
    holds the lock nearly all the time and lets go for well under a millisecond between
    batches (the server under load), those sparse tries keep missing the gaps: a
    ``nightshift token revoke`` waited seconds. Polling finds a gap within milliseconds.

    Raises:
        sqlite3.OperationalError: still locked after ``timeout`` seconds, or once
            ``give_up`` is set (a shutdown that cannot wait), or another error.
    """
    conn.execute("PRAGMA busy_timeout=0")
    try:
        _while_locked(conn, "BEGIN IMMEDIATE", timeout, pause=LOCK_POLL_SECONDS, give_up=give_up)
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _while_locked(
    conn: sqlite3.Connection,
    sql: str,
    timeout: float,
    *,
    pause: float,
    give_up: threading.Event | None = None,
) -> None:
    """Run ``sql``, trying again every ``pause`` seconds while the database is locked.

    Raises:
        sqlite3.OperationalError: still locked after ``timeout`` seconds, or once
            ``give_up`` is set, or another error.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute(sql)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            if give_up is not None and give_up.is_set():
                raise
        time.sleep(pause)


def _migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, str, Path]]:
    found = []
    for file in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(file.name)
        if not m:
            raise RuntimeError(f"migration file {file.name} is not named NNNN_name.sql")
        found.append((int(m.group(1)), m.group(2), file))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def _not_newer(applied: set[int], known: list[int]) -> int:
    """The newest version this code knows; SchemaTooNew if the database is past it."""
    newest = known[-1] if known else 0
    if applied and max(applied) > newest:
        raise SchemaTooNew(
            f"the database is at schema version {max(applied)} but this Nightshift knows "
            f"only up to {newest}: upgrade Nightshift, or restore a backup"
        )
    return newest


def schema_behind(conn: sqlite3.Connection, *, read_only_disk: bool = False) -> str | None:
    """Why a command that only reads cannot use this database as it is, or None.

    It says so rather than migrating it: verifying a backup must not change it, nor
    upgrade the file a running older version serves. ``read_only_disk``: the database is
    on a read-only file system (:func:`guards.read_only.on_read_only_disk`), where
    ``migrate`` cannot run: the words say to migrate a copy (recheck28 Ka L4).

    Raises:
        SchemaTooNew: the database has migrations this code does not know.
        sqlite3.Error: the file could not be read.
    """
    try:
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
    except sqlite3.OperationalError as exc:
        # only a file with no migrations yet; one that cannot be read (a folder it may
        # not write beside a WAL file, an I/O error) says so in its own words (audit23)
        if "no such table" not in str(exc):
            raise
        applied = set()
    known = [v for v, _, _ in _migrations()]
    newest = _not_newer(applied, known)
    missing = [v for v in known if v not in applied]
    if not missing:
        return None
    at = max(applied, default=0)
    if read_only_disk:
        return (
            f"the database is from an older Nightshift (schema version {at}, this one at"
            f" {newest}) and on a read-only file system, where it cannot be migrated: copy it"
            " to a writable folder (`nightshift backup COPY` copies it as it is), run"
            " `nightshift --db COPY migrate`, then this command on the copy"
        )
    return (
        f"the database is at schema version {at}, this Nightshift at"
        f" {newest}: run `nightshift migrate` first (this command does not change the file)"
    )


def apply_migrations(conn: sqlite3.Connection, *, now: float) -> list[str]:
    """Apply pending migrations, each in its own transaction; return the names applied.

    Raises:
        SchemaTooNew: the database has migrations this code does not know.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    known = _migrations()
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    _not_newer(applied, [v for v, _, _ in known])
    done = []
    for version, name, file in known:
        if version in applied:
            continue
        begin_immediate(conn)
        try:
            # Looked at again under the write lock: another process (`migrate` while a
            # `run` starts) may have applied it since the list above was read.
            if conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone():
                conn.execute("ROLLBACK")
                continue
            for statement in statements(file.read_text(encoding="utf-8")):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, now),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        done.append(f"{version:04d}_{name}")
    return done


def statements(script: str) -> list[str]:
    """The statements of an SQL script, one by one (``executescript`` would commit the
    transaction they must run in); a trigger's ``BEGIN ... END`` and a ``;`` in a string
    or a comment stay inside their statement.

    Example:
        >>> statements("CREATE TABLE t (x); INSERT INTO t VALUES (';'); -- done")
        ['CREATE TABLE t (x);', "INSERT INTO t VALUES (';');", '-- done']
    """
    found: list[str] = []
    begun = 0
    for at, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[begun : at + 1]):
            found.append(script[begun : at + 1].strip())
            begun = at + 1
    if script[begun:].strip():  # comments after the last `;`, or a last statement
        # without one: SQLite runs the one, skips the other, and refuses a half statement
        found.append(script[begun:].strip())
    return found
