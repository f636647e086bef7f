"""One Nightshift per database, however its path is spelled (review12 M2)."""

from __future__ import annotations

import logging
import os

import pytest

from bot.run_lock import AlreadyRunning, RunLock


def test_a_symlink_or_another_spelling_finds_the_same_lock(tmp_path):
    db = tmp_path / "ns.db"
    db.touch()
    (tmp_path / "link.db").symlink_to(db)
    first = RunLock.take(str(db))
    assert first is not None
    try:
        for other in (tmp_path / "link.db", tmp_path / "." / "ns.db"):
            with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
                RunLock.take(str(other))
    finally:
        first.release()
    again = RunLock.take(str(tmp_path / "link.db"))  # free once released
    assert again is not None
    again.release()


def test_a_lock_that_cannot_be_made_is_said_and_the_process_runs(tmp_path, caplog):
    db = tmp_path / "ns.db"
    (tmp_path / "ns.db.lock").mkdir()  # something in the way
    with caplog.at_level(logging.WARNING):
        lock = RunLock.take(str(db))
    assert "running without the one-process lock" in caplog.text
    assert lock is not None  # the database file's own lock still holds
    lock.release()
    assert RunLock.take(str(tmp_path / "missing" / "ns.db")) is None  # the store says why


def test_a_restart_in_place_keeps_the_start_time_another_process_writes_its_own(tmp_path):
    """audit20 newcomer L: after a SIGHUP (the same process, exec'd) the refusal of a
    second run named the reload's time as the first one's start."""
    db = tmp_path / "ns.db"
    lock_file = tmp_path / "ns.db.lock"
    first = RunLock.take(str(db))
    assert first is not None
    first.release()
    line, me = lock_file.read_text().splitlines()
    assert line.startswith(f"pid {os.getpid()}, started ")
    lock_file.write_text(f"pid {os.getpid()}, started 2026-11-28 05:50:00\n{me}\n")
    again = RunLock.take(str(db))  # as the exec'd process takes it at its start
    assert again is not None
    try:
        with pytest.raises(AlreadyRunning, match=r"started 2026-11-28 05:50:00\)"):
            RunLock.take(str(db))
    finally:
        again.release()
    # another process that happened to get the same pid (a container's pid 1) is new
    lock_file.write_text(f"pid {os.getpid()}, started 2026-11-28 05:50:00\nprocess 1:42\n")
    third = RunLock.take(str(db))
    assert third is not None
    third.release()
    assert "2026-11-28 05:50:00" not in lock_file.read_text()


def test_a_hard_link_in_another_folder_finds_the_same_lock(tmp_path):
    """audit23 backup 4: the same file through a hard link (or bind-mounted into two
    containers) had a `.lock` beside each path: two runs started and lost writes."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    db = tmp_path / "a" / "ns.db"
    db.touch()
    os.link(db, tmp_path / "b" / "ns.db")
    first = RunLock.take(str(db))
    assert first is not None
    try:
        with pytest.raises(AlreadyRunning) as refused:
            RunLock.take(str(tmp_path / "b" / "ns.db"))
        said = str(refused.value)
        assert said.startswith(f"another Nightshift (pid {os.getpid()}, ")
        assert "another path to this file" in said
        assert f"is running on {tmp_path / 'b' / 'ns.db'}; stop it first" in said
    finally:
        first.release()
    again = RunLock.take(str(tmp_path / "b" / "ns.db"))  # free once released
    assert again is not None
    again.release()


def test_a_new_database_is_made_so_that_its_lock_is_held_from_the_start(tmp_path):
    db = tmp_path / "ns.db"
    first = RunLock.take(str(db))
    assert first is not None and db.exists() and db.stat().st_size == 0
    try:
        (tmp_path / "other").mkdir()
        os.link(db, tmp_path / "other" / "ns.db")
        with pytest.raises(AlreadyRunning):
            RunLock.take(str(tmp_path / "other" / "ns.db"))
    finally:
        first.release()


def test_an_open_called_off_midway_keeps_the_file_s_lock_until_the_process_ends(tmp_path):
    """review23 L1: a stop during the migrations released the file's lock while their
    connection was still open; closing that descriptor dropped the connection's locks."""
    db = str(tmp_path / "ns.db")
    lock = RunLock.take(db)
    assert lock is not None
    lock.release(keep_file=True)
    with pytest.raises(AlreadyRunning):  # nobody else serves it meanwhile
        RunLock.take(db)
    kept = [
        fd for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == db
    ]
    for fd in kept:  # (the process ending does this)
        os.close(int(fd))
    again = RunLock.take(db)
    assert again is not None
    again.release()
