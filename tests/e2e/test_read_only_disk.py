"""A database on a read-only file system (audit28 C3 L3): a snapshot, a read-only mount,
a backup on read-only media. The commands that only read read it there; the others say
the disk is read-only, not that the folder "is not writable by this user".

The folder is mounted read-only for real (a bind mount in a mount namespace of the
command's own, made without privilege through a user namespace): the EROFS a snapshot
gives, which chmod (EACCES, and nothing at all to root) does not.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from guards import migrations
from tests.e2e.test_process import PY, cli, env

__all__ = ["env"]

_READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'


def on_read_only(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``nightshift <args>`` with ``folder`` mounted read-only under it."""
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", _READ_ONLY, "sh", str(folder), PY, "-m", "bot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def ro(tmp_path: Path) -> Path:
    """A folder to mount read-only; skipped where a user namespace cannot mount."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to mount a folder read-only")
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", _READ_ONLY, "sh", str(folder), "touch", f"{folder}/x"],
        capture_output=True,
        text=True,
    )
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot mount a folder read-only here: {probe.stderr.strip()[:200]}")
    return folder


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_database_at_rest_on_a_read_only_disk_is_verified_backed_up_and_listed(env, ro):
    db = ro / "ns.db"
    made = cli("token", "create", "acme/alice", "--label", "on ro", "--db", str(db), env=env)
    assert made.returncode == 0, made.stderr
    assert files(ro) == ["ns.db"]  # at rest: a clean close leaves no -wal
    out = ro.parent / "out"
    out.mkdir()

    verify = on_read_only(ro, "ledger", "verify", "--db", str(db), env=env)
    assert verify.returncode == 0, verify.stderr
    assert "ledger OK" in verify.stdout
    listed = on_read_only(ro, "token", "list", "--db", str(db), env=env)
    assert listed.returncode == 0, listed.stderr
    assert "acme/alice" in listed.stdout and "on ro" in listed.stdout
    backup = on_read_only(ro, "backup", str(out / "copy.db"), "--db", str(db), env=env)
    assert backup.returncode == 0, backup.stderr  # (the copy checked, as always)
    assert f"backed up {db} to {out / 'copy.db'}" in backup.stdout

    # a command that writes is refused naming the true cause, and what to do
    revoke = on_read_only(ro, "token", "revoke", "tok_0000", "--db", str(db), env=env)
    assert revoke.returncode == 1
    assert (
        f"the folder {ro} is on a read-only file system: nothing can write the database there"
    ) in revoke.stderr
    assert "mount it read-write, or copy the database to a writable folder" in revoke.stderr
    assert "not writable by this user" not in revoke.stderr
    # a copy to the read-only disk: its folder is named, not the database
    there = on_read_only(ro, "backup", str(ro / "copy.db"), "--db", str(out / "copy.db"), env=env)
    assert there.returncode == 1
    assert f"the folder {ro} is on a read-only file system: name a path on a writable" in (
        there.stderr
    )
    assert files(ro) == ["ns.db"]  # nothing was made there

    # the file alone mounted read-only (a container's `-v ns.db:/data/ns.db:ro`)
    create = on_read_only(db, "token", "create", "acme/bob", "--db", str(db), env=env)
    assert create.returncode == 1
    assert (
        "attempt to write a readonly database: the file is on a read-only file system (a"
        " read-only mount); mount it read-write, or copy the database to a writable folder"
    ) in create.stderr


def test_a_read_only_disk_whose_wal_holds_writes_says_to_copy_it_with_the_database(env, ro):
    """Read as immutable, the database would be read without its -wal's writes: a wrong
    answer, so it is refused with what to do; done, the copy reads them."""
    made = cli("token", "create", "acme/alice", "--label", "before", env=env)
    assert made.returncode == 0, made.stderr
    live = Path(env["NIGHTSHIFT_DB"])
    conn = sqlite3.connect(live, isolation_level=None)
    try:  # a write still in the -wal, as a snapshot taken while it runs holds
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("UPDATE tokens SET label = 'in the wal'")
        shutil.copy(live, ro / "ns.db")
        shutil.copy(f"{live}-wal", ro / "ns.db-wal")  # (no -shm: a copy, a snapshot)
    finally:
        conn.close()
    db = ro / "ns.db"

    verify = on_read_only(ro, "ledger", "verify", "--db", str(db), env=env)
    assert verify.returncode == 2
    assert (
        f"{db}: cannot check it: unable to open database file (the folder {ro} is on a"
        " read-only file system, and ns.db-wal beside it holds writes not yet in the"
        " database file: SQLite reads them through a -shm file, which it cannot make there."
        " Copy ns.db and ns.db-wal together to a writable folder and name the copy)"
    ) in verify.stderr
    listed = on_read_only(ro, "token", "list", "--db", str(db), env=env)
    assert listed.returncode == 1 and "Copy ns.db and ns.db-wal together" in listed.stderr
    assert "before" not in listed.stdout  # never the database without its -wal's writes

    copy = ro.parent / "copy"
    copy.mkdir()
    shutil.copy(db, copy / "ns.db")
    shutil.copy(f"{db}-wal", copy / "ns.db-wal")
    listed = cli("token", "list", "--db", str(copy / "ns.db"), env=env)
    assert listed.returncode == 0, listed.stderr
    assert "in the wal" in listed.stdout


def test_an_older_database_on_a_read_only_disk_is_told_to_migrate_a_copy(env, ro, monkeypatch):
    """recheck28 Ka L4: a database from an older Nightshift on a read-only disk (the
    snapshot of an older release's) was told "run `nightshift migrate` first", which
    cannot run there. It is told to migrate a copy; `backup` makes one as it is."""
    every = migrations._migrations()
    monkeypatch.setattr(migrations, "_migrations", lambda *_: every[:-1])
    db = ro / "ns.db"
    conn = migrations.connect(db)
    try:
        migrations.apply_migrations(conn, now=0.0)
    finally:
        conn.close()
    monkeypatch.undo()
    assert files(ro) == ["ns.db"]  # at rest
    said = (
        f"{db}: the database is from an older Nightshift (schema version {every[-2][0]},"
        f" this one at {every[-1][0]}) and on a read-only file system, where it cannot be"
        " migrated: copy it to a writable folder (`nightshift backup COPY` copies it as it"
        " is), run `nightshift --db COPY migrate`, then this command on the copy"
    )
    for command, code in ((["ledger", "verify"], 2), (["token", "list"], 2)):
        done = on_read_only(ro, *command, "--db", str(db), env=env)
        assert done.returncode == code and said in done.stderr, (command, done.stderr)
        assert "run `nightshift migrate` first" not in done.stderr
    assert files(ro) == ["ns.db"]
