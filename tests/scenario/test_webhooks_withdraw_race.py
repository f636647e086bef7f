"""A trigger withdrawn while a sending pass has already read it is not sent (closing25),
nor one withdrawn while its try reads its secret_file (review26 R1 L1).

The pass reads the due rows; the alert is acknowledged (its trigger withdrawn unsent)
before the pass starts the try. The try used to go out from that stale read; it now
claims its row in the database first, and a withdrawn row cannot be claimed. The steps
are driven in that order (the read, then the ack, then the try), not timed with sleeps.

The whole app in Slack HTTP mode, a real receiver on 127.0.0.1, a real SQLite file,
time on a ManualClock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.webhooks import _DUE
from bot.webhooks_rows import WITHDRAWN
from guards import config_webhooks
from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhooks import SECRET, SECRET_ENV, deliveries, policy, send
from tests.scenario.test_webhooks_failures import message, trip

__all__ = ["webhook_receiver"]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


async def test_a_trigger_withdrawn_after_the_pass_read_it_is_not_sent(
    slack_http, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
):
    clock = ManualClock()
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    store = slack.app.store
    read = store.fetch
    acked: list[int] = []

    async def fetch(sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The first read of due rows that finds the trigger: the alert is acknowledged
        (its trigger withdrawn) after the read, before the pass starts the try."""
        rows: list[Any] = await read(sql, params)
        if sql == _DUE and rows and not acked:
            [row] = rows
            acked.append(int(row["id"]))
            [(alert_id,)] = await read("SELECT alert_id FROM webhook_deliveries")
            said = await slack.command(f"ack {alert_id}", user="U0ONCALL")
            assert "acknowledged" in said["text"], said
            [now] = await deliveries(slack)
            assert (now["state"], now["last_error"]) == ("failed", WITHDRAWN)
        return rows

    monkeypatch.setattr(store, "fetch", fetch)  # (before the step: whichever pass reads)
    alert_id = await trip(slack)
    await send(slack)
    await send(slack)
    assert len(acked) == 1
    assert webhook_receiver.requests == []  # neither the page nor a resolve
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"], row["last_error"]) == ("failed", 0, WITHDRAWN)
    assert "webhook pager 00:00 (withdrawn unsent)" in await message(slack, alert_id)


async def test_a_trigger_read_by_a_pass_and_not_withdrawn_is_sent_once(
    slack_http, webhook_receiver: WebhookReceiver
):
    clock = ManualClock()
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    await trip(slack)
    await send(slack)
    await send(slack)
    assert webhook_receiver.events() == ["trigger"]
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"]) == ("delivered", 1)


async def test_a_trigger_withdrawn_while_its_secret_file_is_read_is_not_sent(
    slack_http,
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """review26 R1 L1: the try claimed its row, then read its secret_file (up to 5 s); an
    acknowledgement in that time withdrew the row "unsent", and the page went out anyway
    (and then its resolve). The try now reads its secret first and claims its row right
    before the request. The acknowledgement is made from inside the read, on the loop."""
    secret = tmp_path / "pager.secret"
    secret.write_text("s3cret\n")
    p = policy(webhook_receiver, webhook_after="0m")
    p["webhooks"]["pager"] = {"url": webhook_receiver.url, "secret_file": str(secret)}
    clock = ManualClock()
    slack = await slack_http(p, clock=clock)
    loop = asyncio.get_running_loop()
    read = config_webhooks.read_secret_file
    acked: list[str] = []

    async def ack() -> None:
        [(alert_id,)] = await slack.app.store.fetch("SELECT alert_id FROM webhook_deliveries")
        said = await slack.command(f"ack {alert_id}", user="U0ONCALL")
        acked.append(said["text"])

    def slow(path: str) -> str:
        """The file's disk is slow; the on-call person acknowledges meanwhile."""
        if not acked:
            asyncio.run_coroutine_threadsafe(ack(), loop).result(10)
        return str(read(path))

    monkeypatch.setattr("guards.config_webhooks.read_secret_file", slow)
    alert_id = await trip(slack)
    await send(slack)
    await send(slack)
    assert len(acked) == 1 and "acknowledged" in acked[0], acked
    assert webhook_receiver.requests == []  # neither the page nor a resolve
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"], row["last_error"]) == ("failed", 0, WITHDRAWN)
    assert "webhook pager 00:00 (withdrawn unsent)" in await message(slack, alert_id)
