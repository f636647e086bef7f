"""Webhooks after recheck25 (b): an event is sent once even when its try ends while a
pass of the sender reads the due rows (M1); what a reload says of a url changed on the
same host (L3; the thread of a taken-out webhook's trigger: test_webhooks). The whole app in Slack
HTTP mode, a real receiver on 127.0.0.1, a real SQLite file, time on a ManualClock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.webhooks import _DUE
from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_slack_commands import spend
from tests.scenario.test_webhooks import BOT, _secret, deliveries, policy, send
from tests.scenario.test_webhooks_reload import sighup

__all__ = ["_secret", "webhook_receiver"]


async def test_a_try_ending_while_a_pass_reads_the_due_rows_is_not_sent_again(
    slack_http, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
):
    clock = ManualClock()
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    store = slack.app.store
    webhook_receiver.hold = asyncio.Event()  # the receiver answers when the test says
    await spend(slack.app, BOT, micros=2_000_000, key="k1")
    await slack.app.ns.extras["alerts"].tick()  # the P0's webhook step: a trigger row
    first = asyncio.create_task(send(slack))  # its try, and the wait for its record
    await asyncio.wait_for(webhook_receiver.arrived.wait(), 5)
    [row] = await deliveries(slack)
    assert row["state"] == "pending"  # the request is in flight

    read = store.fetch
    stale_reads = 0

    async def fetch(sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The due rows, read while the try is in flight; the try then ends (answered,
        recorded, out of flight) before the pass gets them."""
        nonlocal stale_reads
        rows: list[Any] = await read(sql, params)
        if sql == _DUE and stale_reads == 0:
            stale_reads += 1
            assert [int(r["id"]) for r in rows] == [row["id"]]  # read as pending
            webhook_receiver.hold.set()  # type: ignore[union-attr]
            await asyncio.wait_for(first, 5)  # its answer is written, it left the set
        return rows

    monkeypatch.setattr(store, "fetch", fetch)
    await send(slack)  # a pass (woken by another write, say) reads then
    assert stale_reads == 1
    await send(slack)  # and the one after it, which reads the row as it is now
    assert len(webhook_receiver.requests) == 1, [
        r.headers["X-Nightshift-Delivery"] for r in webhook_receiver.requests
    ]
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"]) == ("delivered", 1)


async def test_a_sighup_changing_a_webhooks_path_on_its_host_says_so(
    webhook_receiver: WebhookReceiver, tmp_path: Path, caplog: Any
):
    """L3: "url changed (127.0.0.1 to 127.0.0.1)" read as no change at all."""
    before = policy(webhook_receiver)
    after = policy(webhook_receiver)
    after["webhooks"]["pager"]["url"] = webhook_receiver.url + "/N3WK3Y0123"
    said = sighup(tmp_path, before, after, caplog)
    assert said is not None
    where = f"127.0.0.1:{urlsplit(webhook_receiver.url).port}"
    assert (
        f"webhook pager's url changed on the same host ({where}): its events still waiting,"
        " and the resolves of the incidents it opened at the old url, go to the new one now" in said
    ), said
    assert "N3WK3Y0123" not in said and "/hook" not in said  # (a path may hold a key)


async def test_a_sighup_moving_a_webhook_to_another_port_says_where(
    webhook_receiver: WebhookReceiver, tmp_path: Path, caplog: Any
):
    """recheck25c L3: a url moved to another port of the host was logged as "changed on
    the same host (127.0.0.1)", as if the receiver were the same."""
    before = policy(webhook_receiver)
    after = policy(webhook_receiver)
    old = urlsplit(webhook_receiver.url)
    port = old.port or 80
    after["webhooks"]["pager"]["url"] = f"http://127.0.0.1:{port + 1}{old.path}/K3Y"
    said = sighup(tmp_path, before, after, caplog)
    assert said is not None
    assert (
        f"webhook pager's url changed (127.0.0.1:{port} to 127.0.0.1:{port + 1}): its"
        " events still waiting" in said
    ), said
    assert "same host" not in said and "K3Y" not in said
