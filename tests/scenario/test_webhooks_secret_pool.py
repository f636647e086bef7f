"""A webhook's ``secret_file`` whose read hangs, tried again and again, holds one thread
of its own and nothing else (review26 R3 H1).

Each try's read ran on the loop's shared default executor, and a try that gave up on it
left its thread there, blocked until the mount answered: a few tries filled the pool
(min(32, cores + 4) threads), and then Slack calls (aiohttp resolves a host name on it),
validations, the SIGHUP check and the exit all waited. The read now runs on a daemon
thread of its own, at most one per file: a try while it hangs is given up at once.

The whole app in Slack HTTP mode, a real receiver on 127.0.0.1, a real SQLite file, the
real slack_sdk client against the fake Slack server, time on a ManualClock; the hung
mount is a read that waits for an Event the test sets at the end.
"""

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
from slack_sdk.web.async_client import AsyncWebClient

from bot.reload import check_reload_off_loop
from guards import config_webhooks
from guards.clock import ManualClock
from tests.fakes.slack_api import BOT_TOKEN
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhooks import deliveries, send
from tests.scenario.test_webhooks_failures import trip
from tests.scenario.test_webhooks_secret_limit import hooked

__all__ = ["webhook_receiver"]

#: more tries than the loop's default executor has threads (Python's default size)
TRIES = min(32, (os.cpu_count() or 1) + 4) + 2


def readers() -> int:
    """How many secret_file reads are still blocked on their threads."""
    return sum(t.name == "nightshift-slow-read" for t in threading.enumerate())


async def test_a_hung_secret_read_tried_many_times_holds_one_thread_and_nothing_else(
    slack_http,
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
    caplog: Any,
    monkeypatch: pytest.MonkeyPatch,
):
    secret = tmp_path / "pager.secret"
    secret.write_text("s3cret\n")
    clock = ManualClock()
    slack = await slack_http(hooked(webhook_receiver, secret), clock=clock)
    mount_back = threading.Event()
    read = config_webhooks.read_secret_file
    reads: list[str] = []

    def hung(path: str) -> str:
        """The file's disk stops answering (an NFS mount gone) until the test ends."""
        reads.append(path)
        mount_back.wait(60)
        return str(read(path))

    monkeypatch.setattr("guards.config_webhooks.read_secret_file", hung)
    monkeypatch.setattr("bot.webhooks.SECRET_SECONDS", 0.2)
    monkeypatch.setattr("guards.config_webhooks.SECRET_READ_SECONDS", 0.2)  # (a SIGHUP)
    # Slack addressed by a host name, as slack.com is: aiohttp resolves it on the pool
    by_name = slack.fake.url.replace("127.0.0.1", "localhost").rstrip("/") + "/"
    web = AsyncWebClient(token=BOT_TOKEN, base_url=by_name, timeout=5, retry_handlers=[])
    try:
        await trip(slack)
        for _ in range(TRIES):
            started = time.monotonic()
            await asyncio.wait_for(send(slack), 10)
            assert time.monotonic() - started < 5
            [row] = await deliveries(slack)
            assert row["state"] == "pending", row
            assert f"its secret_file {secret} took over 0.2s to read" in row["last_error"]
            clock.advance(400)  # past the try's backoff
        assert webhook_receiver.requests == []  # never sent unsigned
        # the rest of the process, which shares the loop's default executor
        started = time.monotonic()
        assert await asyncio.wait_for(asyncio.to_thread(lambda: 1), 3) == 1
        assert time.monotonic() - started < 1
        posted = await asyncio.wait_for(web.chat_postMessage(channel="C0ALERTS", text="hi"), 5)
        assert posted["ok"]
        tok = await slack.app.token("acme/alice")
        validated = await asyncio.wait_for(
            slack.app.request(
                "POST",
                "/v1/validations",
                token=tok,
                json={"scope": "acme/alice/rss-bot", "stream": "s", "items": ["hello world"]},
            ),
            3,
        )
        assert validated.status_code == 200, validated.text
        # a SIGHUP's check naming the file: its read hangs already, refused at once
        config = tmp_path / "nightshift.yml"
        config.write_text(yaml.safe_dump(hooked(webhook_receiver, secret)))
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="nightshift"):
            checked = await asyncio.wait_for(
                check_reload_off_loop(str(config), slack.app.ns.policy, had_file=True, applied="x"),
                8,
            )
        assert checked is None and time.monotonic() - started < 3
        assert "webhooks.pager.secret_file" in caplog.text, caplog.text
        assert f"the secret_file {secret} took over 0.2s to read" in caplog.text
        assert len(reads) == 1 and readers() == 1  # one read in flight, not one per try
    finally:
        mount_back.set()
    for _ in range(100):  # (the reader ends as soon as the "mount" answers)
        if not readers():
            break
        await asyncio.sleep(0.02)
    assert readers() == 0
    clock.advance(400)
    await send(slack)  # the disk answers again: a fresh read, sent and signed
    assert len(reads) == 2
    assert webhook_receiver.events() == ["trigger"]
    assert "X-Nightshift-Signature" in webhook_receiver.requests[0].headers
