"""A webhook try whose record meets an unexpected error (a bug, not the database refusing
writes) is recorded as what its answer was (review27 R1 M3).

A 2xx whose record raised (in the redraw of its messages, or in the record's own write)
was counted as a try that "may have got there" and sent again after its backoff: 16 times
when the error came every time, then marked failed with no note. Now a known answer is
recorded as it is (the note and the redraws, when they are what failed, are undone alone
and the posts redrawn at their next update); only a try with no answer may have got
there, tried again within the usual bounds and, given up, said in the thread. A try whose
alert was acknowledged while it was out, then whose record raised, still gets the resolve
its answer calls for.

The whole app in Slack HTTP mode, a real receiver on 127.0.0.1, a real SQLite file, time
on a ManualClock; the failures are stand-ins that raise, over the real database."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from bot import webhooks_send
from bot.webhooks_send import MAX_BACKOFF_SECONDS, MAX_TRIES
from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhooks import ALERTS, SECRET, SECRET_ENV, deliveries, policy, send
from tests.scenario.test_webhooks_failures import message, trip, until

__all__ = ["webhook_receiver"]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def raising(real: Any, *, times: int | None) -> Any:
    """A stand-in for ``real`` that raises its first ``times`` calls (None: every one)."""
    calls: list[int] = []

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if times is None or len(calls) <= times:
            raise RuntimeError("a bug in a record")
        return real(*args, **kwargs)

    return stand_in


async def shown(slack: Any, alert_id: int) -> str:
    """The alert's post as Slack shows it now (blocks, as JSON)."""
    [(ts,)] = await slack.app.store.fetch(
        "SELECT result_ts FROM outbox WHERE ref = ?", (f"alert:{alert_id}:post",)
    )
    return json.dumps(slack.fake.messages[(ALERTS, str(ts))]["blocks"], ensure_ascii=False)


@pytest.mark.parametrize(
    ("where", "times"),
    [("_touch_trigger", 1), ("_touch_trigger", None), ("_record", 1), ("_record_one", None)],
    ids=["redraw-once", "redraw-always", "record-once", "record-always"],
)
async def test_a_2xx_whose_record_raises_is_delivered_and_not_sent_again(
    slack_http,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
    where: str,
    times: int | None,
):
    """The receiver answers 200; the record raises (in the redraw of the messages that
    show the page, in the record's write, once or every time). The trigger reached the
    receiver once, its row says delivered, the error is logged, and the alert's post says
    delivered once its next update is due."""
    clock = ManualClock()
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    sender = slack.app.ns.extras["webhooks"]
    monkeypatch.setattr(sender, where, raising(getattr(sender, where), times=times))
    with caplog.at_level(logging.ERROR, logger="bot.webhooks"):
        alert_id = await trip(slack)
        await send(slack)
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"], row["last_status"], row["in_flight_at"]) == (
        "delivered",
        1,
        200,
        None,
    )
    assert row["last_error"] is None and row["reached"] == 1
    assert any("a bug in a record" in (r.exc_text or r.getMessage()) for r in caplog.records)
    for _ in range(3):  # past any backoff: nothing is due
        clock.advance(MAX_BACKOFF_SECONDS)
        await send(slack)
    assert webhook_receiver.events() == ["trigger"]
    await slack.app.ns.extras["alerts"].tick()  # (its update is due: the interval passed)
    assert "webhook pager 00:00 (delivered)" in await message(slack, alert_id)
    assert await until(
        lambda: _says(slack, alert_id, "webhook pager 00:00 (delivered)"), within=10
    ), await shown(slack, alert_id)


async def _says(slack: Any, alert_id: int, words: str) -> bool:
    return words in await shown(slack, alert_id)


async def test_a_try_with_no_answer_failing_every_time_is_bounded_and_said(
    slack_http, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, caplog: Any
):
    """An error after the request went out, before its answer was read (the stand-in
    sends with the real request, then raises), every time: each try may have got there,
    so it is tried again, within the usual bounds (an hour, or MAX_TRIES); then it is
    failed, logged and said in the thread, as any page given up is. No "did not take the
    page" note: the receiver may have taken it."""
    clock = ManualClock()
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    real = webhooks_send.post

    async def sent_then_raises(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        raise RuntimeError("a bug reading the answer")

    monkeypatch.setattr("bot.webhooks.post", sent_then_raises)
    with caplog.at_level(logging.WARNING, logger="bot.webhooks"):
        alert_id = await trip(slack)
        for _ in range(MAX_TRIES + 1):
            await send(slack)
            [row] = await deliveries(slack)
            if row["state"] != "pending":
                break
            clock.set(float(row["next_at"]))
    tries = len(webhook_receiver.events())
    assert 1 < tries <= MAX_TRIES
    assert (row["state"], row["attempts"], row["reached"], row["in_flight_at"]) == (
        "failed",
        tries,
        1,
        None,
    )
    said = "an unexpected error in Nightshift (RuntimeError: a bug reading the answer)"
    assert row["last_error"] == f"{said} (gave up after {tries} tries)"
    assert any("the trigger of alert #" in r.getMessage() for r in caplog.records)
    note = f"⚠️ The page to webhook pager (delivery {row['id']}) failed: {said}"
    await slack.fake.wait_for(lambda: any(note in t for t in slack.fake.texts()))
    assert not any("did not take the page" in t for t in slack.fake.texts())
    assert "⚠️ failed" in await message(slack, alert_id)


async def test_an_ack_while_the_try_is_out_then_a_record_error_still_resolves_it(
    slack_http, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
):
    """The page's first try is out when the alert is acknowledged (its row is withdrawn
    unsent: no try had got there), the receiver answers 200, and the record raises. The
    incident is open at the receiver: the row says delivered and its resolve is sent.
    The bare write only cleared the mark, so nothing ever closed it (review27 R1 M3's
    untested corner)."""
    clock = ManualClock()
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    sender = slack.app.ns.extras["webhooks"]
    monkeypatch.setattr(sender, "_record", raising(sender._record, times=1))
    alert_id = await trip(slack)
    webhook_receiver.hold = asyncio.Event()
    sending = asyncio.create_task(send(slack))
    await asyncio.wait_for(webhook_receiver.arrived.wait(), 5)
    said = await slack.command(f"ack {alert_id}", user="U0ONCALL")
    assert "acknowledged" in said["text"], said
    webhook_receiver.hold.set()
    await asyncio.wait_for(sending, 5)
    await send(slack)
    assert webhook_receiver.events() == ["trigger", "resolve"]
    trigger, resolve = await deliveries(slack)
    assert (trigger["state"], trigger["attempts"], trigger["in_flight_at"]) == (
        "delivered",
        1,
        None,
    )
    assert (resolve["event"], resolve["state"]) == ("resolve", "delivered")
