"""``nightshift migrate``, ``ledger verify`` and ``backup``: the database file's tools.

Example:
    >>> # nightshift --db ops.db ledger verify
    >>> # nightshift --db ops.db backup ops-copy.db     (also while it runs)
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from pathlib import Path

from bot.cli import absent, command, existing_db, files_kept, read_only, why_not_open
from bot.settings import Settings
from guards.migrations import apply_migrations, connect, create_private, schema_behind
from guards.read_only import on_read_only_disk
from guards.verify import verify
from guards.words import plural

__all__ = ["cmd_backup", "cmd_ledger_verify", "cmd_migrate"]


@command("migrate")
async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    conn = connect(settings.db)
    try:
        applied = apply_migrations(conn, now=time.time())
    finally:
        conn.close()
    if applied:
        print(f"applied {plural(len(applied), 'migration')} to {settings.db}: {', '.join(applied)}")
    else:
        print(f"{settings.db} is up to date")
    return 0


@command("ledger verify")
async def cmd_ledger_verify(args: argparse.Namespace, settings: Settings) -> int:
    # exit 1 says the books are wrong; a file it could not check is 2, as is one to migrate
    if absent(settings.db):
        print(
            f"nightshift: no database at {settings.db}: check --db / NIGHTSHIFT_DB", file=sys.stderr
        )
        return 2
    try:
        files_kept(settings.db)  # what it would read is not what the run wrote
    except OSError as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 2
    try:
        # nor upgrade a live file an older version serves; also on a read-only disk
        conn = read_only(settings.db)
        try:
            behind = schema_behind(conn, read_only_disk=on_read_only_disk(settings.db))
            if behind is not None:
                print(f"nightshift: {settings.db}: {behind}", file=sys.stderr)
                return 2
            report = verify(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:  # not a database, unreadable: not a broken ledger
        why = why_not_open(settings.db, exc)
        print(f"nightshift: {settings.db}: cannot check it: {exc}{why}", file=sys.stderr)
        return 2
    print(
        f"checked {plural(report.reservations, 'reservation')},"
        f" {plural(report.journal_rows, 'journal row')},"
        f" {plural(report.usage_rows, 'usage counter')},"
        f" {plural(report.model_usage_rows, 'model counter')}"
    )
    if report.ok:
        print("ledger OK: every total matches the journal")
        return 0
    for problem in report.problems[:50]:
        print(f"MISMATCH {problem}")
    print(f"ledger BROKEN: {plural(len(report.problems), 'problem')}")
    return 1


class Unreadable(Exception):
    """The database to copy cannot be read (not the copy's fault)."""

    def __init__(self, exc: sqlite3.Error) -> None:
        super().__init__(str(exc))
        self.exc = exc


def _readable(db: str) -> sqlite3.Connection:
    """A read-only connection to ``db`` that has read it (also on a read-only file
    system), or Unreadable."""
    try:
        return read_only(db)
    except sqlite3.Error as exc:
        raise Unreadable(exc) from exc


def _backup(db: str, target: Path) -> tuple[str, int]:
    """Copy ``db`` to ``target`` in one snapshot: what the copy's check says ("ok"), and
    its size in bytes."""
    conn = _readable(db)
    made = False
    try:
        made = create_private(target)  # a copy holds what the database holds: its owner's
        conn.execute("VACUUM INTO ?", (str(target),))
    except sqlite3.Error:
        if made:  # half a copy (a full disk) is no backup; a file another made is theirs
            target.unlink(missing_ok=True)
        raise
    finally:
        conn.close()
    copy = read_only(str(target))
    try:
        return str(copy.execute("PRAGMA quick_check").fetchone()[0]), target.stat().st_size
    finally:
        copy.close()


@command("backup")
async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """A consistent copy of the database, also while it runs (``VACUUM INTO``: one read
    snapshot, however busy the server; the sqlite3 shell's ``.backup`` starts over at
    every commit and never ends under load)."""
    existing_db(settings)
    files_kept(settings.db)  # a copy without the run's latest writes
    target = Path(args.file)
    if not absent(args.file):
        print(f"nightshift: {target} exists; name a new file", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        check, size = await asyncio.to_thread(_backup, settings.db, target)
    except Unreadable as unreadable:  # the database's fault, not the copy's (audit23)
        why = why_not_open(settings.db, unreadable.exc)
        print(f"nightshift: {settings.db}: cannot read it: {unreadable}{why}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:  # the copy's fault, not the database's: say so
        why = why_not_open(args.file, exc)
        print(f"nightshift: cannot write the copy {target}: {exc}{why}", file=sys.stderr)
        return 1
    if check != "ok":
        print(f"nightshift: the copy {target} does not check: {check}", file=sys.stderr)
        return 1
    took = time.monotonic() - started
    print(f"backed up {settings.db} to {target}: {size / 1e6:.1f} MB in {took:.1f} s")
    return 0
