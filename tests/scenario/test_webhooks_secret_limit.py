"""The limit on reading a webhook's ``secret_file`` (closing25: it had no test).

- A reload (SIGHUP) naming a FIFO nobody writes to is refused at once, naming the key,
  and keeps the running policy (the start-up's refusal: tests/unit/test_config_webhooks);
  one naming a regular file whose read hangs is refused once it takes over
  :data:`guards.config_webhooks.SECRET_READ_SECONDS`, and the check runs off the event
  loop meanwhile (review26 R1 L4).
- A delivery whose read of the file does not return (a file on a mount that hangs) is
  not sent and is tried again after :data:`bot.webhooks.SECRET_SECONDS`, saying why;
  the rest of the process goes on meanwhile.

The whole app in Slack HTTP mode, a real receiver on 127.0.0.1, a real SQLite file, time
on a ManualClock."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.reload import check_reload, check_reload_off_loop
from guards import config_webhooks
from guards.clock import ManualClock
from guards.config import load_policy
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhooks import deliveries, policy, send
from tests.scenario.test_webhooks_failures import trip

__all__ = ["webhook_receiver"]


def hooked(receiver: WebhookReceiver, secret: Path) -> dict[str, Any]:
    p = policy(receiver, webhook_after="0m")
    p["webhooks"]["pager"] = {"url": receiver.url, "secret_file": str(secret)}
    return p


def test_a_sighup_naming_a_fifo_is_refused_at_once_naming_the_key(
    webhook_receiver: WebhookReceiver, tmp_path: Path, caplog: Any
):
    secret = tmp_path / "pager.secret"
    secret.write_text("s3cret\n")
    config = tmp_path / "nightshift.yml"
    config.write_text(yaml.safe_dump(hooked(webhook_receiver, secret)))
    current = load_policy(config)
    fifo = tmp_path / "fifo.secret"
    os.mkfifo(fifo)  # nobody ever writes to it
    config.write_text(yaml.safe_dump(hooked(webhook_receiver, fifo)))
    said: list[Any] = []

    def reload() -> None:
        with caplog.at_level(logging.INFO, logger="nightshift"):
            said.append(check_reload(str(config), current, had_file=True))

    started = time.monotonic()
    reader = threading.Thread(target=reload, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "the reload waited for a writer to the FIFO"
    assert time.monotonic() - started < 5
    assert said == [None]  # no restart: the running policy stays
    assert "webhooks.pager.secret_file" in caplog.text, caplog.text
    assert f"the secret_file {fifo} is not a regular file" in caplog.text


async def test_a_secret_read_that_never_returns_holds_only_that_delivery(
    slack_http, webhook_receiver: WebhookReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    secret = tmp_path / "pager.secret"
    secret.write_text("s3cret\n")
    clock = ManualClock()
    slack = await slack_http(hooked(webhook_receiver, secret), clock=clock)
    mount_back = threading.Event()
    read = config_webhooks.read_secret_file

    def hung(path: str) -> str:
        """The file's disk stops answering (an NFS mount gone, say) until the test ends."""
        mount_back.wait(30)
        return str(read(path))

    monkeypatch.setattr("guards.config_webhooks.read_secret_file", hung)
    monkeypatch.setattr("bot.webhooks.SECRET_SECONDS", 0.5)
    try:
        await trip(slack)
        started = time.monotonic()
        await asyncio.wait_for(send(slack), 10)
        assert time.monotonic() - started < 5
        assert webhook_receiver.requests == []  # not sent unsigned
        [row] = await deliveries(slack)
        assert row["state"] == "pending" and row["reached"] == 0
        assert f"its secret_file {secret} took over 0.5s to read" in row["last_error"]
        health = await slack.app.client.get("/healthz")  # the process goes on meanwhile
        assert health.status_code == 200
    finally:
        mount_back.set()
    # the hung read returns once the disk answers; until its thread has ended, a try is
    # given up at once rather than start a second read (guards.slow_reads: one per file)
    for _ in range(100):
        if not any(t.name == "nightshift-slow-read" for t in threading.enumerate()):
            break
        await asyncio.sleep(0.02)
    clock.advance(60)
    await send(slack)  # the disk answers again: sent, signed
    assert webhook_receiver.events() == ["trigger"]
    assert "X-Nightshift-Signature" in webhook_receiver.requests[0].headers


def test_a_sighup_naming_a_secret_file_whose_read_hangs_is_refused_within_the_limit(
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
    caplog: Any,
    monkeypatch: pytest.MonkeyPatch,
):
    """review26 R1 L4: a regular file on a mount that hangs held the SIGHUP's check (on
    the event loop) until the mount answered; it is refused once its read takes over
    the limit (5 s; 0.5 s here), naming the key, and the running policy stays."""
    secret = tmp_path / "pager.secret"
    secret.write_text("s3cret\n")
    config = tmp_path / "nightshift.yml"
    config.write_text(yaml.safe_dump(hooked(webhook_receiver, secret)))
    current = load_policy(config)
    rotated = tmp_path / "rotated.secret"
    rotated.write_text("n3w\n")
    config.write_text(yaml.safe_dump(hooked(webhook_receiver, rotated)))
    mount_back = threading.Event()
    read = config_webhooks.read_secret_file

    def hung(path: str) -> str:
        mount_back.wait(30)
        return str(read(path))

    monkeypatch.setattr("guards.config_webhooks.read_secret_file", hung)
    monkeypatch.setattr("guards.config_webhooks.SECRET_READ_SECONDS", 0.5)
    said: list[Any] = []

    def reload() -> None:
        with caplog.at_level(logging.INFO, logger="nightshift"):
            said.append(check_reload(str(config), current, had_file=True))

    try:
        started = time.monotonic()
        reader = threading.Thread(target=reload, daemon=True)
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "the reload waited for the mount"
        assert time.monotonic() - started < 5
    finally:
        mount_back.set()
    assert said == [None]  # no restart: the running policy stays
    assert "webhooks.pager.secret_file" in caplog.text, caplog.text
    assert f"the secret_file {rotated} took over 0.5s to read" in caplog.text


async def test_a_sighup_s_check_leaves_the_process_answering(
    slack_http, webhook_receiver: WebhookReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The SIGHUP's check (bot.cli_run) runs off the event loop: while a secret_file's
    read hangs, agents' calls and /healthz are answered (review26 R1 L4)."""
    secret = tmp_path / "pager.secret"
    secret.write_text("s3cret\n")
    slack = await slack_http(hooked(webhook_receiver, secret), clock=ManualClock())
    config = tmp_path / "nightshift.yml"
    config.write_text(yaml.safe_dump(hooked(webhook_receiver, tmp_path / "rotated.secret")))
    mount_back = threading.Event()

    def hung(path: str) -> str:
        mount_back.wait(30)
        raise AssertionError("the mount came back only once the test ended")

    monkeypatch.setattr("guards.config_webhooks.read_secret_file", hung)
    monkeypatch.setattr("guards.config_webhooks.SECRET_READ_SECONDS", 2.0)
    try:
        checking = asyncio.create_task(
            check_reload_off_loop(str(config), slack.app.ns.policy, had_file=True, applied="x")
        )
        health = await asyncio.wait_for(slack.app.client.get("/healthz"), 1.5)
        assert health.status_code == 200
        assert not checking.done()  # still waiting for the file, the loop free
        assert await asyncio.wait_for(checking, 10) is None  # refused after the limit
    finally:
        mount_back.set()
