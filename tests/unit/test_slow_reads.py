"""Reads that may hang run on daemon threads of their own, one per file at most, and a
read that fails says what failed (review26 R3 H1, L3). The hung mount is a read waiting
for an Event the test sets at the end."""

from __future__ import annotations

import asyncio
import errno
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from guards import config_webhooks
from guards.config_webhooks import (
    SecretSlow,
    SecretUnreadable,
    read_secret_file_async,
    read_secret_file_within,
)
from guards.slow_reads import StillReading, in_daemon_thread, read_within, read_within_async


@pytest.fixture
def mount() -> Iterator[threading.Event]:
    """Set: the mount answers again (always at the end, so no reader is left waiting)."""
    back = threading.Event()
    yield back
    back.set()


def hanging(back: threading.Event, reads: list[str]) -> Callable[[str], str]:
    def read(key: str) -> str:
        reads.append(key)
        if not back.wait(30):
            raise AssertionError("the mount never came back")
        return f"read {key}"

    return read


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "nightshift-slow-read"]


def test_a_hung_read_is_one_thread_however_often_it_is_tried(mount: threading.Event):
    reads: list[str] = []
    read = hanging(mount, reads)
    with pytest.raises(StillReading):
        read_within("/mnt/a", read=read, seconds=0.1)
    started = time.monotonic()
    for _ in range(20):  # begun over its time ago: given up at once, no new thread
        with pytest.raises(StillReading):
            read_within("/mnt/a", read=read, seconds=0.1)
    assert time.monotonic() - started < 1
    assert reads == ["/mnt/a"]
    assert all(t.daemon for t in reader_threads())  # an exit does not wait for them
    mount.set()
    for thread in reader_threads():
        thread.join(5)
    assert read_within("/mnt/a", read=read, seconds=5) == "read /mnt/a"  # a fresh read
    assert reads == ["/mnt/a", "/mnt/a"]


def test_a_second_caller_within_the_time_waits_for_the_read_in_flight(
    mount: threading.Event,
):
    reads: list[str] = []
    read = hanging(mount, reads)
    got: list[str] = []
    first = threading.Thread(target=lambda: got.append(read_within("k", read=read, seconds=10)))
    first.start()
    while not reads:
        time.sleep(0.01)  # (until the first read is under way: no time travel)
    threading.Timer(0.1, mount.set).start()
    assert read_within("k", read=read, seconds=10) == "read k"
    first.join(5)
    assert got == ["read k"] and reads == ["k"]


def test_another_file_is_not_held_by_a_hung_one(mount: threading.Event):
    reads: list[str] = []
    with pytest.raises(StillReading):
        read_within("/mnt/hung", read=hanging(mount, reads), seconds=0.05)
    assert read_within("/etc/other", read=lambda key: "ok", seconds=1) == "ok"


def test_a_read_s_error_is_raised_as_it_is():
    def stale(key: str) -> str:
        raise OSError(errno.ESTALE, "Stale file handle")

    with pytest.raises(OSError, match="Stale file handle"):
        read_within("/mnt/x", read=stale, seconds=5)


async def test_an_awaited_hung_read_leaves_the_loop_and_its_pool_free(mount: threading.Event):
    reads: list[str] = []
    read = hanging(mount, reads)
    for _ in range(40):  # more than the loop's default executor has threads
        with pytest.raises(StillReading):
            await read_within_async("/mnt/b", read=read, seconds=0.05)
    assert reads == ["/mnt/b"]
    assert await asyncio.wait_for(asyncio.to_thread(lambda: 1), 2) == 1
    mount.set()
    for thread in reader_threads():
        thread.join(5)
    assert await read_within_async("/mnt/b", read=read, seconds=5) == "read /mnt/b"


async def test_a_cancelled_call_hands_its_result_to_abandoned(mount: threading.Event):
    left: list[str] = []
    ended = threading.Event()

    def call() -> str:
        mount.wait(30)
        return "snapshot.yml"

    def abandoned(result: str) -> None:
        left.append(result)
        ended.set()

    waiting = asyncio.create_task(in_daemon_thread(call, name="t", abandoned=abandoned))
    await asyncio.sleep(0)  # (the thread is started: the task is waiting for it)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    mount.set()
    assert ended.wait(5) and left == ["snapshot.yml"]
    assert await in_daemon_thread(lambda: 7, name="t") == 7


def test_a_secret_file_whose_read_fails_says_what_failed_not_that_it_was_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """review26 R3 L3: an error other than SecretUnreadable (fstat on a stale NFS mount)
    ended the reader thread, and the file was said to take over 5s to read."""
    secret = tmp_path / "pager.secret"
    secret.write_text("s3cret\n")

    def stale(path: str) -> str:
        raise OSError(errno.ESTALE, "Stale file handle")

    monkeypatch.setattr(config_webhooks, "read_secret_file", stale)
    started = time.monotonic()
    with pytest.raises(SecretUnreadable) as info:
        read_secret_file_within(str(secret), seconds=5)
    assert time.monotonic() - started < 1
    assert str(info.value) == (
        f"cannot read the secret_file {secret} (Stale file handle): check the file and the"
        " disk or mount it is on"
    )
    assert not isinstance(info.value, SecretSlow)


async def test_a_secret_file_on_a_hung_mount_is_slow_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mount: threading.Event
):
    secret = tmp_path / "pager.secret"
    monkeypatch.setattr(config_webhooks, "read_secret_file", hanging(mount, []))
    with pytest.raises(SecretSlow, match=f"the secret_file {secret} took over 0.05s to read"):
        await read_secret_file_async(str(secret), seconds=0.05)
    with pytest.raises(SecretSlow):  # at once, the same read still hanging
        read_secret_file_within(str(secret), seconds=0.05)
