"""The outbox worker on a real SQLite store, with a recording deliverer and a manual wall clock."""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock_watch import ClockWatch
from bot.metrics import Metrics
from bot.outbox import (
    AFTER_POST,
    ORDINARY,
    ROUTINE,
    Delivered,
    DeliveryFailed,
    OutboxWorker,
    RetryLater,
    backoff,
    delivered,
    enqueue,
    enqueue_edit,
    outbox_health,
)
from guards.clock import ManualClock
from guards.migrations import begin_immediate, connect
from guards.store import Store


class Recorder:
    """A deliverer that records calls and fails on cue."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.script: list[Exception] = []
        self.n = 0

    async def deliver(self, method: str, args: dict[str, Any]) -> Delivered:
        self.calls.append((method, args))
        if self.script:
            raise self.script.pop(0)
        self.n += 1
        return Delivered(channel=args.get("channel"), ts=f"ts{self.n}")


async def start(
    store: Store, deliverer: Any, *, pace: float = 1.0
) -> tuple[OutboxWorker, ManualClock]:
    wall = ManualClock(1000.0)
    ns = SimpleNamespace(store=store, metrics=Metrics(), extras={})
    worker = OutboxWorker(deliverer, wall=wall, pace_seconds=pace)
    await worker.start(cast(Any, ns))
    halt_loop(worker)  # the test drives the passes
    return worker, wall


def halt_loop(worker: OutboxWorker) -> None:
    """Stop the worker's own loop: the test drives the passes."""
    assert worker._task is not None
    worker._task.cancel()


async def settle(worker: OutboxWorker) -> None:
    """One pass, and wait for what it started."""
    await worker.pass_once()
    while worker._in_flight:
        await asyncio.wait(list(worker._in_flight.values()))


async def states(store: Store) -> list[tuple[Any, ...]]:
    rows = await store.fetch("SELECT state, attempts, last_error FROM outbox ORDER BY id")
    return [tuple(r) for r in rows]


# -- enqueue ------------------------------------------------------------------------------


async def test_enqueue_keys_refs_and_validation(store):
    def write(tx):
        a = enqueue(tx, method="chat.postMessage", args={"channel": "C1", "text": "x"}, ref="r")
        again = enqueue(tx, method="chat.postMessage", args={"channel": "C1", "text": "y"}, ref="r")
        dm = enqueue(
            tx, method="chat.postMessage", args={"channel": "U1", "text": "x"}, channel="K"
        )
        hook = enqueue(tx, method="response_url", args={"url": "https://h/1", "payload": {}})
        return a, again, dm, hook

    a, again, _, _ = await store.write(write)
    assert a == again
    rows = await store.fetch("SELECT channel, method FROM outbox ORDER BY id")
    assert [r[0] for r in rows][:2] == ["C1", "K"]
    assert rows[2][0].startswith("response:")
    with pytest.raises(ValueError, match="not a Slack Web API method"):
        await store.write(lambda tx: enqueue(tx, method="DROP TABLE", args={"channel": "C"}))
    with pytest.raises(ValueError, match="give a channel"):
        await store.write(lambda tx: enqueue(tx, method="chat.postMessage", args={"text": "x"}))


def test_backoff_doubles_up_to_five_minutes():
    assert [backoff(n) for n in (1, 2, 3, 4, 9, 10, 30)] == [1, 2, 4, 8, 256, 300, 300]


# -- the worker ---------------------------------------------------------------------------


async def test_order_and_pacing_per_channel(store):
    rec = Recorder()
    worker, wall = await start(store, rec)

    def write(tx):
        for text in ("a1", "a2"):
            enqueue(tx, method="chat.postMessage", args={"channel": "A", "text": text})
        enqueue(tx, method="chat.postMessage", args={"channel": "B", "text": "b1"})

    await store.write(write)
    await settle(worker)
    assert sorted(a["text"] for _, a in rec.calls) == ["a1", "b1"]
    await settle(worker)
    assert len(rec.calls) == 2  # a2 waits for A's pace
    delay = await worker.pass_once()
    assert delay == pytest.approx(1.0)
    wall.advance(1.0)
    await settle(worker)
    assert [a["text"] for _, a in rec.calls][-1] == "a2"
    assert [s[0] for s in await states(store)] == ["delivered"] * 3
    await worker.stop(cast(Any, None))


async def test_a_page_overtakes_the_posts_waiting_in_its_channel(store):
    rec = Recorder()
    worker, wall = await start(store, rec)

    def write(tx):
        enqueue(tx, method="chat.postMessage", args={"channel": "A", "text": "p1"}, ref="p1")
        enqueue(tx, method="chat.postMessage", args={"channel": "A", "text": "p2"})
        update = {"channel": "$ref:page.channel", "ts": "$ref:page.ts", "text": "page, updated"}
        enqueue(tx, method="chat.update", args=update, channel="A")
        enqueue(
            tx,
            method="chat.postMessage",
            args={"channel": "A", "text": "page"},
            ref="page",
            urgent=True,
        )

    await store.write(write)
    for _ in range(4):
        await settle(worker)
        wall.advance(1.0)
    # the page goes first; the rest keep their order, the update after its message
    assert [a["text"] for _, a in rec.calls] == ["page", "p1", "p2", "page, updated"]
    await worker.stop(cast(Any, None))


async def test_retry_after_and_backoff_are_stored_on_the_row(store):
    rec = Recorder()
    rec.script = [RetryLater("429", after=30, kind="ratelimited"), RetryLater("503")]
    worker, wall = await start(store, rec)
    await store.write(
        lambda tx: enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "x"})
    )
    await settle(worker)
    row = (await store.fetch("SELECT due_at, attempts, last_error FROM outbox"))[0]
    assert tuple(row) == (1030.0, 1, "429")
    wall.advance(29)
    await settle(worker)
    assert len(rec.calls) == 1
    wall.advance(1)
    await settle(worker)  # the 503: backoff(2) = 2 s
    assert (await store.fetch("SELECT due_at FROM outbox"))[0][0] == 1032.0
    wall.advance(2)
    await settle(worker)
    assert await states(store) == [("delivered", 3, None)]
    await worker.stop(cast(Any, None))


async def test_unexpected_errors_retry_and_old_rows_give_up(store):
    rec = Recorder()
    rec.script = [KeyError("bug"), RetryLater("503")]
    worker, wall = await start(store, rec)
    worker.max_age_seconds = 60
    await store.write(
        lambda tx: enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "x"})
    )
    await settle(worker)
    assert (await states(store))[0][:2] == ("pending", 1)
    wall.advance(61)
    await settle(worker)
    state, attempts, error = (await states(store))[0]
    assert (state, attempts) == ("failed", 2)
    assert error.startswith("gave up after 2 attempts: 503")
    health = await outbox_health(store)
    assert health.failed == 1 and "gave up" in (health.last_error or "")
    await worker.stop(cast(Any, None))


class Held(Recorder):
    """A Recorder whose posts wait for ``go``: a post still on its way, as long as a test
    needs (a pass may otherwise see it delivered before it reads what refers to it)."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def deliver(self, method: str, args: dict[str, Any]) -> Delivered:
        if method == "chat.postMessage":
            await self.go.wait()
        return await super().deliver(method, args)


async def in_flight(worker: OutboxWorker) -> None:
    """Wait for the deliveries already started, starting none."""
    while worker._in_flight:
        await asyncio.wait(list(worker._in_flight.values()))


async def test_references_wait_substitute_and_fail_together(store):
    rec = Held()
    worker, _ = await start(store, rec, pace=0)

    def write(tx):
        enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "p"}, ref="post.2026")
        enqueue(
            tx,
            method="chat.update",
            args={"channel": "$ref:post.2026.channel", "ts": "$ref:post.2026.ts", "text": "u"},
            channel="other",
        )
        enqueue(tx, method="chat.update", args={"channel": "C", "ts": "$ref:nope.ts"}, channel="x")

    await store.write(write)
    await worker.pass_once()  # the update waits: its post is on its way, not delivered
    await worker.pass_once()
    assert rec.calls == [] and (await states(store))[1][0] == "pending"
    rec.go.set()
    await in_flight(worker)
    assert [m for m, _ in rec.calls] == ["chat.postMessage"]
    await settle(worker)
    assert rec.calls[-1] == ("chat.update", {"channel": "C", "ts": "ts1", "text": "u"})
    assert await delivered(store, "post.2026") == ("C", "ts1")
    assert (await states(store))[2][0] == "failed"
    assert "not in the outbox" in (await states(store))[2][2]
    await worker.stop(cast(Any, None))


async def test_permanent_failures_and_drain_on_stop(store):
    rec = Recorder()
    rec.script = [DeliveryFailed("channel_not_found")]
    worker, _ = await start(store, rec, pace=0)

    def write(tx):
        enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "gone"})
        enqueue(tx, method="chat.postMessage", args={"channel": "D", "text": "fine"})

    await store.write(write)
    await worker.stop(cast(Any, None))
    assert [s[0] for s in await states(store)] == ["failed", "delivered"]
    assert await delivered(store, "missing") is None


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.lists(
        st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(min_value=0, max_value=2)),
        min_size=1,
        max_size=12,
    )
)
def test_every_row_goes_out_once_in_channel_order(plan):
    """Whatever transient failures happen, each row is delivered once, in order per channel."""

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = await Store.open(Path(tmp) / "o.db", clock=ManualClock())
            rec = Recorder()
            failures: dict[str, int] = {}

            class Flaky(Recorder):
                async def deliver(self, method, args):
                    left = failures.get(args["text"], 0)
                    if left:
                        failures[args["text"]] = left - 1
                        rec.calls.append(("failed", args))
                        raise RetryLater("flaky", after=1)
                    return await rec.deliver(method, args)

            worker, wall = await start(store, Flaky(), pace=0.5)

            def write(tx):
                for i, (channel, fails) in enumerate(plan):
                    failures[f"m{i}"] = fails
                    enqueue(
                        tx, method="chat.postMessage", args={"channel": channel, "text": f"m{i}"}
                    )

            await store.write(write)
            for _ in range(200):
                await settle(worker)
                if not (await outbox_health(store)).pending:
                    break
                wall.advance(0.5)
            ok = [a["text"] for m, a in rec.calls if m == "chat.postMessage"]
            assert sorted(ok) == sorted(f"m{i}" for i in range(len(plan)))
            for channel in "ABC":
                sent = [
                    a["text"] for m, a in rec.calls if m != "failed" and a["channel"] == channel
                ]
                wanted = [f"m{i}" for i, (c, _) in enumerate(plan) if c == channel]
                assert sent == wanted
            await worker.stop(cast(Any, None))
            await store.close()

    asyncio.run(run())


async def test_what_waits_is_read_at_each_scrape_even_with_the_worker_stuck(store):
    """audit16 observability M5: the pending gauge was set by the worker's own passes, so a
    hung worker left it at 0 while messages waited."""
    metrics = Metrics()
    ns = SimpleNamespace(store=store, metrics=metrics, extras={})
    worker = OutboxWorker(Recorder(), wall=ManualClock(1000.0))
    await worker.start(cast(Any, ns))
    halt_loop(worker)  # stuck: it passes no more
    for text in ("a", "b"):
        await store.write(
            lambda tx, text=text: enqueue(
                tx, method="chat.postMessage", args={"channel": "C", "text": text}
            )
        )
    cast(ManualClock, store.clock).advance(90)
    await worker.refresh_gauges()
    scraped = metrics.render()[0].decode()
    assert "nightshift_outbox_pending 2.0" in scraped
    assert "nightshift_outbox_oldest_pending_age_seconds 90.0" in scraped
    await worker.stop(cast(Any, None))


async def test_slack_not_taking_messages_for_minutes_is_a_warning_once_a_minute(store, caplog):
    """audit16 observability M4: Slack out of reach was INFO lines only, for up to 24 h."""
    rec = Recorder()
    rec.script = [RetryLater("network error: Slack unreachable", kind="network")] * 5
    worker, wall = await start(store, rec)
    await store.write(
        lambda tx: enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "x"})
    )
    with caplog.at_level(logging.INFO, logger="bot.outbox"):
        await settle(worker)  # the first try
        wall.advance(301)
        await settle(worker)  # five minutes on: said
        wall.advance(20)
        await settle(worker)  # not again within the minute
        wall.advance(60)  # backed off: no retry is due, and a pass still says it
        await worker.pass_once()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2, warned
    assert warned[0].startswith("Slack has not taken a message for 5m1s (outbox row 1,")
    assert warned[1].startswith("Slack has not taken a message for 6m21s (outbox row 1,")
    assert warned[1].endswith("(said once a minute)")
    await worker.stop(cast(Any, None))


async def test_a_message_has_at_most_one_edit_waiting_and_it_is_the_latest(store):
    """audit18 soak finding 1: each touch of a firing alert queued another chat.update of
    its message (192 edits waiting for 59 messages); the lane fell further behind every
    minute, posts and acknowledgements with it."""
    rec = Recorder()
    worker, _ = await start(store, rec, pace=0)

    def post_and_edit(tx):
        enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "p"}, ref="a:1")
        enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "q"}, ref="a:2")
        for n in range(4):
            enqueue_edit(tx, "a:1", text=f"a:1 v{n}", blocks=[], channel="C")
        enqueue_edit(tx, "a:2", text="a:2 v0", blocks=[], channel="C")

    await store.write(post_and_edit)
    rows = await store.fetch("SELECT method, args FROM outbox WHERE method = 'chat.update'")
    assert [json.loads(r[1])["text"] for r in rows] == ["a:1 v3", "a:2 v0"]
    for _ in range(4):  # one row a pass in the lane: two posts, two edits
        await settle(worker)
    texts = [args["text"] for method, args in rec.calls if method == "chat.update"]
    assert texts == ["a:1 v3", "a:2 v0"]
    # an edit already sent (or being sent) is not rewritten: the next one is a row of its own
    await store.write(lambda tx: enqueue_edit(tx, "a:1", text="a:1 v4", blocks=[], channel="C"))
    await settle(worker)
    assert rec.calls[-1][1]["text"] == "a:1 v4"
    await worker.stop(cast(Any, None))


async def test_an_edit_is_not_merged_ahead_of_a_click_s_edit_of_the_same_message(store):
    """review18 M2: merged into the waiting edit, the newer render went out before a
    button click's update of the message (by its own ts), and the click's older blocks
    were what stayed shown."""
    rec = Recorder()
    worker, _ = await start(store, rec, pace=0)
    await store.write(
        lambda tx: enqueue(
            tx, method="chat.postMessage", args={"channel": "C", "text": "p"}, ref="a:1"
        )
    )
    await settle(worker)  # posted: ts1

    def edits(tx):
        enqueue_edit(tx, "a:1", text="v0", blocks=[], channel="C")
        enqueue(tx, method="chat.update", args={"channel": "C", "ts": "ts1", "text": "click"})
        enqueue_edit(tx, "a:1", text="v1", blocks=[], channel="C")

    await store.write(edits)
    for _ in range(2):
        await settle(worker)
    # v0, superseded, is not sent; v1 goes after the click: the latest render has the
    # last word
    assert [args["text"] for method, args in rec.calls if method == "chat.update"] == [
        "click",
        "v1",
    ]
    await worker.stop(cast(Any, None))


async def test_a_step_of_the_wall_clock_moves_retries_and_the_pace_with_it(store):
    """review18 L2: after a step back of an hour, a retry waited an hour more, and each
    channel's pace (the time of its last message, kept on the wall clock) an hour too."""
    t0 = 1_800_000_000.0
    wall, mono = [t0], [50.0]
    watch = ClockWatch(AsyncIOScheduler(timezone="UTC"), wall=lambda: wall[0], mono=lambda: mono[0])
    store.before_batch.insert(0, watch.shift_deadlines)
    ns = SimpleNamespace(store=store, metrics=Metrics(), extras={}, clock_watch=watch)
    rec = Recorder()
    clock = ManualClock(t0)
    worker = OutboxWorker(rec, wall=clock, pace_seconds=1.0)
    await worker.start(cast(Any, ns))
    halt_loop(worker)

    def queue(tx):
        enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "a"})
        row = enqueue(tx, method="chat.postMessage", args={"channel": "D", "text": "b"})
        tx.execute("UPDATE outbox SET due_at = ? WHERE id = ?", (t0 + 30, row))  # a retry

    await store.write(queue)
    await settle(worker)  # C's message goes: C's pace runs from t0
    assert [args["text"] for _, args in rec.calls] == ["a"]
    wall[0] -= 3600  # the step back
    mono[0] += 1
    clock.set(t0 + 1 - 3600)
    await store.write(lambda tx: None)  # the next write moves what is stored
    rows = await store.fetch("SELECT due_at FROM outbox WHERE args LIKE '%\"b\"%'")
    assert rows[0][0] == t0 + 30 - 3601
    await store.write(
        lambda tx: enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "c"})
    )
    clock.advance(1)  # a second after the last message, in real time
    await settle(worker)
    assert [args["text"] for _, args in rec.calls] == ["a", "c"]  # not an hour later
    assert watch.unapplied == 0
    await worker.stop(cast(Any, ns))
    assert watch.deadlines == []


async def test_an_acknowledgement_and_a_new_post_go_before_the_lanes_redraws(store):
    """recheck18: with sixty alerts firing, their redraws (one waiting a message) still
    kept an acknowledgement's edit, and a new P1 post, behind them for about a minute."""
    rec = Recorder()
    worker, _ = await start(store, rec, pace=0)

    def posts(tx):
        for n in range(1, 6):
            enqueue(
                tx, method="chat.postMessage", args={"channel": "C", "text": f"p{n}"}, ref=f"a:{n}"
            )

    await store.write(posts)
    for _ in range(5):
        await settle(worker)

    def busy(tx):
        for n in range(1, 5):  # four alerts redrawn: routine
            enqueue_edit(tx, f"a:{n}", text=f"redraw {n}", blocks=[], channel="C")
        enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "new"}, ref="a:6")
        enqueue_edit(tx, "a:5", text="acknowledged", blocks=[], channel="C", urgent=True)

    await store.write(busy)
    for _ in range(6):
        await settle(worker)
    sent = [args["text"] for _, args in rec.calls[5:]]
    assert sent == ["acknowledged", "new", "redraw 1", "redraw 2", "redraw 3", "redraw 4"]
    await worker.stop(cast(Any, None))


async def test_an_acknowledgement_before_its_post_went_out_is_what_the_post_shows(store):
    """audit23 races 1: a P0 acknowledged before its channel post went out: the post went
    out red and unowned, and the edit that showed the acknowledgement waited behind the
    lane's redraws for minutes."""
    rec = Recorder()
    worker, _ = await start(store, rec, pace=0)

    def busy(tx):
        for n in range(1, 4):  # the lane is busy: three posts wait
            enqueue(
                tx, method="chat.postMessage", args={"channel": "C", "text": f"p{n}"}, ref=f"a:{n}"
            )
        enqueue(
            tx,
            method="chat.postMessage",
            args={"channel": "C", "text": "<@U1> P0", "blocks": [{"type": "section"}]},
            ref="a:9",
        )
        enqueue_edit(tx, "a:9", text="P0 fired twice", blocks=[], channel="C")  # a redraw
        enqueue_edit(tx, "a:9", text="P0 acked by U1", blocks=[], channel="C", urgent=True)

    await store.write(busy)
    for _ in range(5):
        await settle(worker)
    assert [(m, a["text"]) for m, a in rec.calls] == [
        ("chat.postMessage", "p1"),
        ("chat.postMessage", "p2"),
        ("chat.postMessage", "p3"),
        ("chat.postMessage", "P0 acked by U1"),  # no redraw after it brings back the old state
    ]
    assert rec.calls[-1][1]["blocks"] == [] and rec.calls[-1][1]["channel"] == "C"
    # once it is out, an acknowledgement is an edit, as before
    await store.write(
        lambda tx: enqueue_edit(tx, "a:9", text="P0 resolved", blocks=[], channel="C", urgent=True)
    )
    await settle(worker)
    assert rec.calls[-1][0] == "chat.update" and rec.calls[-1][1]["text"] == "P0 resolved"
    await worker.stop(cast(Any, None))


async def test_an_acknowledgement_while_its_post_is_being_sent_goes_right_behind_it(store):
    """recheck23 N3: an acknowledgement made while the post was on its way to Slack
    waited as a redraw, behind every redraw of the lane; audit24 B L1: then behind every
    post queued after its message (the post and its edit go before the lane's posts now,
    at AFTER_POST: behind its P0 pages, review24 trial H1)."""

    def post_being_sent(tx):
        enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "P1"}, ref="a:9")
        tx.execute("UPDATE outbox SET claimed_at = 1 WHERE ref = 'a:9'")  # on its way
        enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "P1 b"}, ref="b")
        enqueue_edit(tx, "a:9", text="acked", blocks=[], channel="C", urgent=True)
        enqueue_edit(tx, "a:8", text="a redraw", blocks=[], channel="C")

    await store.write(post_being_sent)
    rows = await store.fetch("SELECT method, priority, args FROM outbox ORDER BY id")
    shown = [(r[0], r[1], json.loads(r[2])["text"]) for r in rows]
    assert shown == [
        ("chat.postMessage", AFTER_POST, "P1"),  # its text untouched: maybe on screen already
        ("chat.postMessage", ORDINARY, "P1 b"),
        ("chat.update", AFTER_POST, "acked"),  # right behind its post, before the lane's posts
        ("chat.update", ROUTINE, "a redraw"),
    ]


async def test_a_resolution_while_its_post_waits_for_a_retry(store):
    """audit24 B L1: a post retried after a 5xx (marked: maybe shown) goes out as it was,
    and the resolution's edit right behind it, before the posts queued since; a post
    retried after a 429 (unmarked: surely not shown) goes out showing the resolution."""
    rec = Recorder()
    worker, wall = await start(store, rec, pace=0)
    rec.script = [
        RetryLater("HTTP 500", kind="server_error"),
        RetryLater("429", kind="ratelimited"),
    ]

    def posts(tx):
        enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "p1 open"}, ref="p1")
        enqueue(tx, method="chat.postMessage", args={"channel": "D", "text": "q1 open"}, ref="q1")

    await store.write(posts)
    await settle(worker)  # both refused: p1 by a 5xx, q1 by a 429

    def meanwhile(tx):
        for lane, name in (("C", "p"), ("D", "q")):
            args = {"channel": lane, "text": f"{name}2 open"}
            enqueue(tx, method="chat.postMessage", args=args, ref=f"{name}2")
            enqueue_edit(
                tx, f"{name}1", text=f"{name}1 resolved", blocks=[], channel=lane, urgent=True
            )

    await store.write(meanwhile)
    wall.advance(600)
    for _ in range(4):
        await settle(worker)
    sent = [(m, a["text"]) for m, a in rec.calls[2:]]
    assert [s for s in sent if s[1].startswith("p")] == [
        ("chat.postMessage", "p1 open"),  # as it was: the 5xx may have shown it
        ("chat.update", "p1 resolved"),  # then at once, before p2
        ("chat.postMessage", "p2 open"),
    ]
    assert [s for s in sent if s[1].startswith("q")] == [
        ("chat.postMessage", "q1 resolved"),  # the 429: nobody saw it, so it shows the end
        ("chat.postMessage", "q2 open"),
    ]
    await worker.stop(cast(Any, None))


async def test_a_post_slack_took_while_the_database_refused_its_record_goes_out_once(
    store, monkeypatch, caplog
):
    """audit26 chaos H1: the write marking a post delivered was refused (a lock landed
    while Slack answered); the delivery task died, the row stayed pending, and the next
    pass posted the alert a second time."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    monkeypatch.setattr("bot.written.FIRST_WAIT_SECONDS", 0.05)
    other = connect(store.path)

    class LockedWhileSlackAnswers(Recorder):
        async def deliver(self, method: str, args: dict[str, Any]) -> Delivered:
            answer = await super().deliver(method, args)
            begin_immediate(other)  # a sqlite3 shell, a backup tool: writes are refused
            return answer

    slack = LockedWhileSlackAnswers()
    worker, _ = await start(store, slack, pace=0.0)
    await store.write(
        lambda tx: enqueue(tx, method="chat.postMessage", args={"channel": "C", "text": "P0"})
    )
    with caplog.at_level(logging.WARNING, logger="bot.outbox"):
        await worker.pass_once()
        await asyncio.sleep(1.0)  # its record refused again and again
        await worker.pass_once()
        await worker.pass_once()
        assert len(slack.calls) == 1
        other.execute("ROLLBACK")
        other.close()
        await settle(worker)
    assert await states(store) == [("delivered", 1, None)]
    await settle(worker)
    assert len(slack.calls) == 1  # and never again
    said = [r.getMessage() for r in caplog.records if r.name == "bot.outbox"]
    assert len(said) == 1  # once a minute, not once a try
    assert "Slack answered, but the database refused to record it" in said[0]
    assert "not sent again" in said[0]
