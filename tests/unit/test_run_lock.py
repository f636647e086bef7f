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
        assert RunLock.take(str(db)) is None
    assert "running without the one-process lock" in caplog.text
    assert RunLock.take(str(tmp_path / "missing" / "ns.db")) is None  # the store says why
