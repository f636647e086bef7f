"""The outbox worker never starts a row again that finished while its pass was reading.

A pass reads the channel heads, then awaits (the pending COUNT for the metrics, the
``$ref:`` lookups of an update) before it starts deliveries. A delivery that ends
during those awaits must not be started again from the pass's stale rows: the demo
once printed an on-call page twice (audit 4, M7). These tests make that happen on
purpose, on the real worker and a real SQLite store: the deliverer's call finishes
exactly when the pass is between reading and starting.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bot.metrics import Metrics
from bot.outbox import Delivered, DeliveryFailed, OutboxWorker, RetryLater, enqueue
from guards.clock import ManualClock
from guards.store import Store

HEADS = "ROW_NUMBER()"  # the worker's query of the channel heads
REFS = "WHERE ref = ?"  # resolve_refs' query of a referenced row


class Gated:
    """A deliverer whose calls on ``held`` channels wait until the test opens the gate."""

    def __init__(self, *held: str) -> None:
        self.held = set(held)
        self.gate = asyncio.Event()
        self.calls: list[str] = []
        self.answers: list[Exception] = []  # raised, in order, by the held calls

    async def deliver(self, method: str, args: dict[str, Any]) -> Delivered:
        self.calls.append(str(args.get("text")))
        if args.get("channel") in self.held:
            await self.gate.wait()
            if self.answers:
                raise self.answers.pop(0)
        return Delivered(args.get("channel"), f"ts{len(self.calls)}")


class Interposed:
    """The real store; ``hook`` runs once, right after the first read whose SQL has ``at``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.at = ""
        self.hook: Callable[[], Awaitable[None]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def fetch(self, sql: str, params: Any = ()) -> list[Any]:
        rows = await self._store.fetch(sql, params)
        if self.hook is not None and self.at in sql:
            hook, self.hook = self.hook, None
            await hook()
        return rows


async def start(store: Store, deliverer: Any, *, pace: float) -> tuple[OutboxWorker, Interposed]:
    seam = Interposed(store)
    ns = SimpleNamespace(store=seam, metrics=Metrics(), extras={})
    worker = OutboxWorker(deliverer, wall=ManualClock(1000.0), pace_seconds=pace)
    await worker.start(cast(Any, ns))
    assert worker._task is not None
    worker._task.cancel()  # the test drives the passes
    return worker, seam


def finish_during_the_pass(worker: OutboxWorker, deliverer: Gated, channel: str):
    """A hook: open the gate and wait until the channel's delivery has ended."""

    async def hook() -> None:
        task = worker._in_flight[channel]
        deliverer.gate.set()
        await task
        assert channel not in worker._in_flight

    return hook


async def sent(deliverer: Gated, n: int) -> None:
    """Wait until ``n`` calls reached the deliverer (each row is marked tried first)."""
    for _ in range(400):
        if len(deliverer.calls) >= n:
            return
        await asyncio.sleep(0.005)


async def settle(worker: OutboxWorker) -> None:
    while worker._in_flight:
        await asyncio.wait(list(worker._in_flight.values()))


async def rows(store: Store) -> list[tuple[Any, ...]]:
    got = await store.fetch("SELECT args, state, attempts FROM outbox ORDER BY id")
    return [(r["args"], r["state"], r["attempts"]) for r in got]


def post(channel: str, text: str, **kw: Any) -> Callable[[Any], int]:
    args = {"channel": channel, "text": text}
    return lambda tx: enqueue(tx, method="chat.postMessage", args=args, **kw)


async def test_a_delivery_ending_after_the_heads_are_read_is_not_started_again(store):
    sender = Gated("D")
    worker, seam = await start(store, sender, pace=0.0)  # shell mode: no pacing
    await store.write(post("D", "You are paged"))
    await worker.pass_once()
    await sent(sender, 1)
    assert sender.calls == ["You are paged"]  # in flight, waiting at the gate

    seam.at, seam.hook = HEADS, finish_during_the_pass(worker, sender, "D")
    await worker.pass_once()  # read the heads (the page, still pending); then it ends
    await settle(worker)
    assert sender.calls == ["You are paged"]  # printed once
    assert [r[1:] for r in await rows(store)] == [("delivered", 1)]
    await worker.stop(cast(Any, None))


async def test_a_delivery_ending_while_a_reference_is_looked_up_is_not_started_again(store):
    sender = Gated("D")
    worker, seam = await start(store, sender, pace=0.0)
    await store.write(post("C", "alert", ref="alert"))
    await worker.pass_once()
    await settle(worker)  # the alert is out; an update of it may now go
    update = {"channel": "$ref:alert.channel", "ts": "$ref:alert.ts", "text": "acked"}
    await store.write(lambda tx: enqueue(tx, method="chat.update", args=update, channel="C"))
    await store.write(post("D", "You are paged"))
    # the page starts first, in a pass of its own (the update is not due yet)
    await store.write(lambda tx: tx.execute("UPDATE outbox SET due_at = 2000 WHERE channel = 'C'"))
    await worker.pass_once()
    await sent(sender, 2)
    assert sender.calls == ["alert", "You are paged"]
    await store.write(lambda tx: tx.execute("UPDATE outbox SET due_at = 0 WHERE channel = 'C'"))

    # the update's reference is looked up after the heads were read: the page ends then
    seam.at, seam.hook = REFS, finish_during_the_pass(worker, sender, "D")
    await worker.pass_once()
    await settle(worker)
    assert sender.calls == ["alert", "You are paged", "acked"]
    assert [r[1:] for r in await rows(store)] == [("delivered", 1)] * 3
    await worker.stop(cast(Any, None))


async def test_a_retry_ending_during_the_pass_waits_its_retry_after(store):
    sender = Gated("D")
    sender.answers = [RetryLater("429", after=30, kind="ratelimited")]
    worker, seam = await start(store, sender, pace=0.0)
    await store.write(post("D", "You are paged"))
    await worker.pass_once()
    seam.at, seam.hook = HEADS, finish_during_the_pass(worker, sender, "D")
    delay = await worker.pass_once()
    await settle(worker)
    assert sender.calls == ["You are paged"]  # not again at once: Slack said 30 s
    assert [r[1:] for r in await rows(store)] == [("pending", 1)]
    assert delay == 0.0  # the channel is looked at again at once, with fresh rows
    await worker.pass_once()
    await settle(worker)
    assert sender.calls == ["You are paged"]
    assert (await store.fetch("SELECT due_at FROM outbox"))[0][0] == 1030.0
    cast(ManualClock, worker.wall).advance(30)
    await worker.pass_once()
    await settle(worker)
    assert sender.calls == ["You are paged"] * 2  # the retry, when Slack allows it
    await worker.stop(cast(Any, None))


async def stale_head(store, *, pace: float) -> tuple[Any, Gated]:
    """Pages 1 and 2 in channel D; page 1's delivery ends while the next pass reads."""
    sender = Gated("D")
    worker, seam = await start(store, sender, pace=pace)
    await store.write(post("D", "page 1"))
    await store.write(post("D", "page 2"))
    await worker.pass_once()
    seam.at, seam.hook = HEADS, finish_during_the_pass(worker, sender, "D")
    return worker, sender


async def test_the_next_row_of_the_channel_goes_out_right_after(store):
    """Skipping the stale head costs nothing: the next pass (no wait) sends what follows."""
    worker, sender = await stale_head(store, pace=0.0)
    assert await worker.pass_once() == 0.0
    await worker.pass_once()
    await settle(worker)
    assert sender.calls == ["page 1", "page 2"]
    assert [r[1:] for r in await rows(store)] == [("delivered", 1)] * 2
    await worker.stop(cast(Any, None))


async def test_slack_pacing_is_unchanged_by_the_check(store):
    """Slack mode (1 s a channel): the same race waits out the pace, as it always did."""
    worker, sender = await stale_head(store, pace=1.0)
    await worker.pass_once()
    await settle(worker)
    assert sender.calls == ["page 1"]
    assert await worker.pass_once() == 1.0  # page 2 waits for the channel's pace
    wall = cast(ManualClock, worker.wall)
    wall.advance(1.0)
    await worker.pass_once()
    await settle(worker)
    assert sender.calls == ["page 1", "page 2"]
    await worker.stop(cast(Any, None))


async def test_a_drain_on_stop_still_delivers_what_follows_a_stale_head(store):
    worker, sender = await stale_head(store, pace=0.0)
    await worker.stop(cast(Any, None))  # the drain's first pass meets the race
    assert sender.calls == ["page 1", "page 2"]
    assert [r[1:] for r in await rows(store)] == [("delivered", 1)] * 2


async def test_a_row_withdrawn_after_the_read_is_not_sent_even_if_its_id_is_reused(store):
    """An ack withdraws the page just read, and the edit it queues takes the page's id
    (the newest row's): the worker must not send that edit as the page (review7 M2)."""
    sender = Gated()
    worker, seam = await start(store, sender, pace=0.0)
    await store.write(post("D", "You are paged", ref="alert:1:dm:1"))

    async def ack() -> None:
        def withdraw_and_edit(tx: Any) -> int:
            tx.execute("DELETE FROM outbox WHERE ref = 'alert:1:dm:1'")
            edit = {"channel": "C", "ts": "1.1", "text": "acknowledged"}
            return enqueue(tx, method="chat.update", args=edit, channel="C")

        reused = await store.write(withdraw_and_edit)
        assert reused == 1  # the page's id, given to the edit

    seam.at, seam.hook = HEADS, ack
    await worker.pass_once()  # read the page's head; then the ack; then the claim
    await settle(worker)
    assert sender.calls == []  # neither the page (withdrawn) nor the edit as the page
    await worker.pass_once()
    await settle(worker)
    assert sender.calls == ["acknowledged"]  # the edit, as itself, on its own channel
    await worker.stop(cast(Any, None))


async def test_stop_while_the_loop_waits_ends_the_loop(store):
    """stop() wakes the loop and cancels it in one turn, while it waits for work: 3.11's
    asyncio.wait_for then returns the finished wait and swallows the cancel, so the loop
    must end on its flag (without it, this stop never returns)."""
    worker = OutboxWorker(Gated(), wall=ManualClock(1000.0), pace_seconds=0.0)
    await worker.start(cast(Any, SimpleNamespace(store=store, metrics=Metrics(), extras={})))
    await asyncio.sleep(0.2)  # the loop waits in wait_for(wakeup.wait(), poll)
    await asyncio.wait_for(worker.stop(cast(Any, None)), timeout=30)
    assert worker._task is not None and worker._task.done()


async def test_a_row_a_stopped_process_was_sending_goes_out_after_the_start(store):
    await store.write(post("D", "You are paged"))
    await store.write(lambda tx: tx.execute("UPDATE outbox SET claimed_at = 999"))  # killed
    sender = Gated()
    worker, _ = await start(store, sender, pace=0.0)
    # it may have been shown before the kill: it keeps its mark, so nobody withdraws it
    assert (await store.fetch("SELECT claimed_at FROM outbox"))[0][0] == 999
    await worker.pass_once()
    await settle(worker)
    assert sender.calls == ["You are paged"]
    row = await store.fetch("SELECT state, claimed_at FROM outbox")
    assert tuple(row[0]) == ("delivered", 1000.0)
    await worker.stop(cast(Any, None))


@pytest.mark.parametrize(
    ("answer", "ref", "kept"),
    [
        (RetryLater("network error: reset", kind="network"), "alert:1:dm:1", True),  # on screen?
        (RetryLater("Slack answered 503", kind="server_error"), "alert:1:dm:1", True),
        (RetryLater("rate limited (429)", after=1.0, kind="ratelimited"), "alert:1:dm:1", False),
        # a storm summary is rebuilt while it waits (nothing edits it once sent): unmarked
        (RetryLater("network error: reset", kind="network"), "fold:pages:D:1", False),
    ],
)
async def test_a_retry_keeps_the_mark_unless_slack_surely_showed_nothing(store, answer, ref, kept):
    """review8 L1: a page whose call ended in a network error may already be on the
    person's phone; an ack must not withdraw it (its "acknowledged" edit would be lost)."""
    sender = Gated("D")
    sender.answers.append(answer)
    sender.gate.set()
    worker, _ = await start(store, sender, pace=0.0)
    await store.write(post("D", "You are paged", ref=ref))
    await worker.pass_once()
    await settle(worker)
    row = await store.fetch("SELECT state, attempts, claimed_at FROM outbox")
    assert (row[0][0], row[0][1]) == ("pending", 1)
    assert (row[0][2] is not None) is kept
    await worker.stop(cast(Any, None))


def change_args(store: Store, ref: str, args: dict[str, Any]) -> Callable[[], Awaitable[None]]:
    """A hook: the row's args change after the heads were read (a summary rebuilt)."""

    async def hook() -> None:
        await store.write(
            lambda tx: tx.execute(
                "UPDATE outbox SET args = ? WHERE ref = ?", (json.dumps(args), ref)
            )
        )

    return hook


async def test_a_row_changed_to_wait_for_a_reference_is_put_back_unsent(store):
    sender = Gated()
    worker, seam = await start(store, sender, pace=0.0)
    await store.write(post("C", "the post", ref="post"))
    await store.write(lambda tx: tx.execute("UPDATE outbox SET due_at = 5000 WHERE ref = 'post'"))
    await store.write(post("D", "summary", ref="fold"))
    edit = {"channel": "$ref:post.channel", "thread_ts": "$ref:post.ts", "text": "now a reply"}
    seam.at, seam.hook = HEADS, change_args(store, "fold", edit)
    await worker.pass_once()
    await settle(worker)
    assert sender.calls == []  # its reference is not sent yet: it waits, unclaimed
    row = await store.fetch("SELECT state, claimed_at FROM outbox WHERE ref = 'fold'")
    assert tuple(row[0]) == ("pending", None)
    await worker.stop(cast(Any, None))


async def test_a_row_changed_to_refer_to_nothing_fails_cleanly(store):
    sender = Gated()
    worker, seam = await start(store, sender, pace=0.0)
    await store.write(post("D", "summary", ref="fold"))
    broken = {"channel": "$ref:gone.channel", "ts": "$ref:gone.ts", "text": "edit"}
    seam.at, seam.hook = HEADS, change_args(store, "fold", broken)
    await worker.pass_once()
    await settle(worker)
    assert sender.calls == []
    row = await store.fetch("SELECT state, last_error FROM outbox WHERE ref = 'fold'")
    assert row[0][0] == "failed" and "gone" in row[0][1]
    await worker.stop(cast(Any, None))


@pytest.mark.parametrize(
    ("answer", "kept"),
    [
        (DeliveryFailed("Slack error channel_not_found"), False),  # refused: nobody saw it
        (RetryLater("network error: reset", kind="network"), True),  # given up: maybe seen
        (RetryLater("rate limited (429)", kind="ratelimited"), False),
    ],
)
async def test_a_failed_row_keeps_its_mark_only_when_it_may_have_been_shown(store, answer, kept):
    sender = Gated("D")
    sender.answers.append(answer)
    sender.gate.set()
    worker, _ = await start(store, sender, pace=0.0)
    await store.write(post("D", "the summary", ref="fold:pages:D:1"))
    await store.write(lambda tx: tx.execute("UPDATE outbox SET first_try_at = -1e9"))  # old
    await worker.pass_once()
    await settle(worker)
    row = await store.fetch("SELECT state, claimed_at FROM outbox")
    assert row[0][0] == "failed"
    assert (row[0][1] is not None) is kept
    await worker.stop(cast(Any, None))
