"""Alert storms on a real SQLite store: per-agent grouping, folded posts and pages,
and pages withdrawn when nobody needs them any more (audit6_scale F2, F3)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.alerts import operations as ops
from bot.alerts import storm_names
from bot.alerts.engine import AlertEngine
from bot.metrics import Metrics
from bot.outbox import Delivered, OutboxWorker, RetryLater
from guards.clock import ManualClock
from guards.errors import Conflict, InvalidInput, NotFound
from guards.events import Overrun
from guards.store import Store, Tx
from tests.unit.test_alerts_engine import (
    AGENT,
    deliver_all,
    emit,
    make,
    opened,
    outbox,
    run,
    seen,
)


def storm_engine(fold_after: int = 3) -> AlertEngine:
    return make(
        {
            "alerts": {
                "update_interval_seconds": "30s",
                "p1_escalate_after": "30m",
                "fold_after": fold_after,
                "fold_pages_after": 0,  # pages follow fold_after, as posts do
            }
        }
    )


async def storm(store: Store, engine: AlertEngine, agents: int) -> None:
    """``agents`` agents trip on spend at once: a P0 each."""
    await emit(store, *(opened(store, scope=f"acme/team/bot-{i:03d}") for i in range(agents)))
    await run(store, engine)


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def posts(rows: list[Any], lane: str) -> list[Any]:
    return [r for r in rows if r[0] == "chat.postMessage" and r[1] == lane]


async def pending(store: Store, ref: str) -> dict[str, Any] | None:
    rows = await store.fetch("SELECT args FROM outbox WHERE ref = ? AND state = 'pending'", (ref,))
    return json.loads(rows[0]["args"]) if rows else None


async def test_overruns_in_many_conversations_are_one_alert_of_their_agent(store):
    engine = make()
    await emit(
        store,
        *(
            Overrun(
                at=store.clock.now(),
                scope=f"{AGENT}/conv-{i:04d}",
                reservation_id=f"res_{i}",
                held_micros=1_000,
                charged_micros=1_001,
                overrun_micros=1,
                late=False,
            )
            for i in range(260)
        ),
    )
    await run(store, engine)
    rows = await store.fetch("SELECT scope, count, facts FROM alerts")
    assert [(r["scope"], r["count"]) for r in rows] == [(AGENT, 260)]
    assert json.loads(rows[0]["facts"])["conversation"] == f"{AGENT}/conv-0259"
    out = await outbox(store)
    assert len(posts(out, "C0ALERTS")) == 1  # one P1 post, not 260
    text = out[0][2]["text"]
    assert "in conversation conv-0000" in text and "$0.000001 over" in text


async def test_a_storm_folds_posts_and_pages_into_one_message_per_lane(store):
    engine = storm_engine(fold_after=3)
    await storm(store, engine, agents=40)
    out = await outbox(store)
    channel = posts(out, "C0ALERTS")
    pages = posts(out, "U01")
    # three alerts went out on their own in each lane; the other 37 joined one summary
    assert [r[3] for r in channel[:3]] == ["alert:1:post", "alert:2:post", "alert:3:post"]
    assert len(channel) == 4 and channel[3][3].startswith("fold:posts:C0ALERTS:")
    assert len(pages) == 4 and pages[3][3].startswith("fold:pages:U01:")
    summary = await pending(store, pages[3][3])
    assert summary is not None
    assert "You are paged for 37 alerts at once" in dump(summary["blocks"])
    assert "Breaker opened on spend rate* × 37" in dump(summary["blocks"])
    assert "… and 31 more" in dump(summary["blocks"])  # 6 scopes named, 31 more
    channel_summary = await pending(store, channel[3][3])
    assert channel_summary is not None
    assert channel_summary["text"].startswith("<@U01> 🔴 Alert storm · 37 alerts")
    # every alert still is its own alert, on its own chain
    rows = await store.fetch("SELECT COUNT(*) AS n FROM alerts WHERE esc_at IS NOT NULL")
    assert rows[0]["n"] == 40
    folded = await store.fetch("SELECT COUNT(*) AS n FROM alerts WHERE folded_into IS NOT NULL")
    assert folded[0]["n"] == 37
    # the Slack limits hold however big the storm
    assert len(summary["blocks"]) <= 50
    assert all(len(json.dumps(b)) < 3000 for b in summary["blocks"])


async def test_a_folded_summary_drops_what_was_acked_and_is_withdrawn_when_empty(store):
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=3)  # #1 on its own; #2 and #3 folded
    ref = posts(await outbox(store), "U01")[1][3]
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=2, actor="U01"))
    summary = await pending(store, ref)
    assert summary is not None and "You are paged for 1 more alert at once" in dump(
        summary["blocks"]
    )
    assert "#2`" not in dump(summary["blocks"]) and "#3`" in dump(summary["blocks"])
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=3, actor="U01"))
    assert await pending(store, ref) is None
    assert not await store.fetch("SELECT id FROM outbox WHERE ref = ?", (ref,))


async def test_a_sent_summary_stays_and_the_next_fold_starts_a_new_one(store):
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=2)
    first = posts(await outbox(store), "U01")[1][3]
    await deliver_all(store)
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=2, actor="U01"))
    sent = await store.fetch("SELECT state, args FROM outbox WHERE ref = ?", (first,))
    assert sent[0]["state"] == "delivered" and "#2`" in sent[0]["args"]  # as it was sent
    await emit(store, opened(store, scope="acme/team/late-1"), opened(store, scope="acme/team/l2"))
    await run(store, engine)
    refs = [r[3] for r in posts(await outbox(store), "U01")]
    assert refs[-1].startswith("fold:pages:U01:") and refs[-1] != first


async def test_fold_after_zero_never_folds(store):
    engine = storm_engine(fold_after=0)
    await storm(store, engine, agents=12)
    out = await outbox(store)
    assert len(posts(out, "C0ALERTS")) == 12 and len(posts(out, "U01")) == 12
    assert not [r for r in out if (r[3] or "").startswith("fold:")]


async def test_a_page_still_waiting_when_the_alert_is_acked_is_withdrawn(store):
    engine = make()
    await emit(store, opened(store))
    await run(store, engine)
    store.clock.advance(300)
    await store.write(engine.tick)  # the secondary's page is queued too
    assert {r[1] for r in posts(await outbox(store), "U01") + posts(await outbox(store), "U04")}
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=1, actor="U01"))
    out = await outbox(store)
    assert not [r for r in out if (r[3] or "").startswith("alert:1:dm:")]  # never sent
    assert not [r for r in out if "$ref:alert:1:dm:" in json.dumps(r[2])]  # nor edited
    rows = await store.fetch("SELECT target, withdrawn_at FROM escalations ORDER BY id")
    assert [(r["target"], r["withdrawn_at"] is not None) for r in rows] == [
        ("U01", True),
        ("U04", True),
    ]
    # the channel's post has not gone out either: it goes out showing it (audit23 races 1)
    [post] = [r for r in out if r[3] == "alert:1:post"]
    assert "(withdrawn unsent)" in dump(post[2]["blocks"])
    assert not [r for r in out if r[0] == "chat.update"]


async def test_a_silence_withdraws_waiting_pages_but_not_sent_ones(store):
    engine = make()
    await emit(store, opened(store))
    await run(store, engine)
    await deliver_all(store)  # the first page reached U01
    store.clock.advance(300)
    await store.write(engine.tick)  # U04's page waits
    await store.write(lambda tx: ops.silence(engine, tx, target="acme", seconds=3600, actor="U01"))
    rows = await store.fetch("SELECT target, withdrawn_at FROM escalations ORDER BY id")
    assert [(r["target"], r["withdrawn_at"] is not None) for r in rows] == [
        ("U01", False),
        ("U04", True),
    ]
    edits = [r for r in await outbox(store) if r[0] == "chat.update"]
    assert any(e[2]["ts"] == "$ref:alert:1:dm:1.ts" for e in edits)  # the sent page shows it
    assert not any("alert:1:dm:2" in json.dumps(e[2]) for e in edits)


async def test_the_channel_step_nudges_a_storm_once_not_per_alert(store):
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=4)  # #1 posted on its own; #2-#4 in one summary
    store.clock.advance(5 * 60)
    await store.write(engine.tick)  # the second step (one tick 15 min on skips it: catch_up)
    store.clock.advance(10 * 60)
    await store.write(engine.tick)  # the chain's third step: the channel
    out = await outbox(store)
    nudges = [r for r in out if r[0] == "chat.postMessage" and "thread_ts" in r[2]]
    summary = posts(out, "C0ALERTS")[1][3]  # the channel's storm summary
    assert summary.startswith("fold:posts:C0ALERTS:")
    assert [n[2]["thread_ts"] for n in nudges] == ["$ref:alert:1:post.ts", f"$ref:{summary}.ts"]
    assert str(nudges[1][3]).startswith("nudge:fold:posts:C0ALERTS:")
    assert nudges[1][2]["text"].startswith("<!channel> this alert storm is unacknowledged")
    steps = await store.fetch("SELECT COUNT(*) AS n FROM escalations WHERE step = 2")
    assert steps[0]["n"] == 4  # every alert took its step; the storm was nudged once


async def test_a_silenced_conversation_keeps_its_overruns_silenced(store):
    """A silence made on one conversation (before or after the upgrade) still holds it."""
    engine = make()
    conv = f"{AGENT}/c1"
    await seen(store, conv)
    await store.write(lambda tx: ops.silence(engine, tx, target=conv, seconds=3600, actor="U01"))
    await emit(
        store,
        *(
            Overrun(
                at=store.clock.now(),
                scope=scope,
                reservation_id=f"res_{i}",
                held_micros=1_000,
                charged_micros=2_000,
                overrun_micros=1_000,
                late=False,
            )
            for i, scope in enumerate([conv, f"{AGENT}/c2"])
        ),
    )
    await run(store, engine)
    rows = await store.fetch("SELECT scope, silence_id IS NOT NULL AS quiet FROM alerts")
    assert [(r["scope"], bool(r["quiet"])) for r in rows] == [(conv, True), (AGENT, False)]
    assert len(posts(await outbox(store), "C0ALERTS")) == 1  # only c2's, at the agent


async def test_a_summary_being_sent_takes_a_new_alert_in_an_edit_right_after_it(store):
    """It was a new summary, a second buzz (audit27 B2 L5: bot.alerts.folding_join)."""
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=2)  # #1 on its own, #2 in a summary
    first = posts(await outbox(store), "U01")[1][3]
    # the worker has marked it tried and is sending it now
    await store.write(
        lambda tx: tx.execute("UPDATE outbox SET claimed_at = 1 WHERE ref = ?", (first,))
    )
    await emit(store, opened(store, scope="acme/team/late"))
    await run(store, engine)
    refs = [r[3] for r in posts(await outbox(store), "U01")]
    assert refs == ["alert:1:dm:1", first]  # no new summary
    [edit] = [r for r in await outbox(store) if r[0] == "chat.update"]
    assert edit[1] == "U01" and edit[2]["ts"] == f"$ref:{first}.ts"  # waits for it
    assert "`#2`" in dump(edit[2]["blocks"]) and "acme/team/late" in dump(edit[2]["blocks"])
    # nor is a page being sent withdrawn: it goes out, and the ack edits it after
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=2, actor="U01"))
    assert (await store.fetch("SELECT state FROM outbox WHERE ref = ?", (first,)))[0][0] == (
        "pending"
    )


async def test_a_summary_with_nothing_left_goes_with_the_nudges_waiting_on_it(store):
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=3)  # #1 posted; #2 and #3 in one channel summary
    store.clock.advance(15 * 60)
    await store.write(engine.tick)  # the channel step: a nudge waits on the summary
    assert [r for r in await outbox(store) if (r[3] or "").startswith("nudge:fold:")]
    for alert_id in (2, 3):
        await store.write(lambda tx, a=alert_id: ops.resolve(engine, tx, alert_id=a, actor="U01"))
    out = await outbox(store)
    assert not [r for r in out if "fold:posts" in (r[3] or "")]  # summary and nudge gone
    assert not [r for r in out if "$ref:fold:" in json.dumps(r[2])]  # nothing refers to it
    notes = await store.fetch(
        "SELECT COUNT(*) FROM escalations WHERE folded_into IS NOT NULL AND withdrawn_at IS NULL"
    )
    assert notes[0][0] == 0  # their pages say "withdrawn unsent", not "in a storm summary"


async def test_a_lifted_silence_posts_again_an_alert_whose_summary_was_sent(store):
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=2)  # #2 seeds fold:posts:C0ALERTS:2
    await deliver_all(store)
    await store.write(lambda tx: ops.silence(engine, tx, target="2", seconds=600, actor="U01"))
    # the lane fills again before the silence is lifted
    await emit(store, opened(store, scope="acme/team/x1"), opened(store, scope="acme/team/x2"))
    await run(store, engine)
    await store.write(lambda tx: ops.lift(engine, tx, target="2", actor="U01"))
    row = (await store.fetch("SELECT folded_into FROM alerts WHERE id = 2"))[0]
    assert row[0] != "fold:posts:C0ALERTS:2"  # not the sent one: a summary that goes out
    waiting = await pending(store, row[0])
    assert waiting is not None and "`#2`" in dump(waiting["blocks"])


async def test_a_page_silenced_in_a_waiting_summary_does_not_come_back_twice(store):
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=3)  # U01: #1 on its own; #2, #3 in a summary
    ref = posts(await outbox(store), "U01")[1][3]
    await store.write(lambda tx: ops.silence(engine, tx, target="2", seconds=600, actor="U01"))
    summary = await pending(store, ref)
    assert summary is not None and "`#2`" not in dump(summary["blocks"])
    await store.write(lambda tx: ops.lift(engine, tx, target="2", actor="U01"))
    summary = await pending(store, ref)
    pages_of_2 = await store.fetch(
        "SELECT COUNT(*) FROM escalations WHERE alert_id = 2 AND withdrawn_at IS NULL"
    )
    assert summary is not None and "`#2`" in dump(summary["blocks"])  # paged again, once:
    assert pages_of_2[0][0] == 1  # the new page; the one in the summary before was withdrawn


async def test_a_storm_spread_over_ticks_is_nudged_once(store):
    """Alerts fold over several ticks (a blip's heartbeats miss seconds apart): the
    channel step still nudges the summary once, not once per second they fired (review7 H1)."""
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=1)  # #1 posted on its own
    for i in range(3):  # #2-#4, two seconds apart, one tick each: all in one summary
        store.clock.advance(2)
        await emit(store, opened(store, scope=f"acme/team/late-{i}"))
        await run(store, engine)
    store.clock.advance(15 * 60)
    await store.write(engine.tick)
    nudges = [r for r in await outbox(store) if (r[3] or "").startswith("nudge:fold:")]
    assert len(nudges) == 1
    steps = await store.fetch("SELECT COUNT(*) FROM escalations WHERE step = 2")
    assert steps[0][0] == 4


class RetryPages:
    """Slack: posts go out; pages get 429 (Retry-After 30 s)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def deliver(self, method: str, args: dict[str, Any]) -> Delivered:
        channel = str(args.get("channel"))
        self.calls.append(channel)
        if channel.startswith("U"):
            raise RetryLater("ratelimited", after=30, kind="ratelimited")
        return Delivered(channel, f"1.{len(self.calls)}")


async def test_a_page_waiting_out_a_429_is_withdrawn_by_the_ack(store):
    """A page Slack put back (429) is not being sent: acknowledging the alert withdraws
    it, so the phone does not buzz half a minute later (review7 M1)."""
    engine = make()
    await emit(store, opened(store))
    await run(store, engine)
    slack = RetryPages()
    worker = OutboxWorker(slack, wall=ManualClock(1000.0), pace_seconds=0.0)
    await worker.start(cast(Any, SimpleNamespace(store=store, metrics=Metrics(), extras={})))
    await worker.pass_once()
    while worker._in_flight:
        await asyncio.wait(list(worker._in_flight.values()))
    assert "U01" in slack.calls  # tried once, put back for 30 s
    page = await store.fetch("SELECT state, claimed_at FROM outbox WHERE ref = 'alert:1:dm:1'")
    assert tuple(page[0]) == ("pending", None)
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=1, actor="U01"))
    assert not await store.fetch("SELECT 1 FROM outbox WHERE ref = 'alert:1:dm:1'")
    await worker.stop(cast(Any, None))


async def test_escalate_now_to_the_channel_always_nudges(store):
    """The storm's channel step nudged its summary a minute ago; an operator presses
    Escalate now on another of its alerts at that step: that nudge goes out (review8 M1)."""
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=3)  # #2 and #3 in one summary
    store.clock.advance(10 * 60)
    await emit(store, opened(store, scope="acme/team/later"))  # #4 joins the summary
    await run(store, engine)
    store.clock.advance(5 * 60)
    await store.write(engine.tick)  # #2, #3 at the channel step (one nudge); #4 at step 2
    nudges = lambda rows: [r for r in rows if (r[3] or "").startswith("nudge:fold:")]  # noqa: E731
    assert len(nudges(await outbox(store))) == 1
    store.clock.advance(60)
    await store.write(
        lambda tx: engine.escalate(tx, engine.get(tx, 4), tx.clock.now(), manual_by="U01")
    )
    assert len(nudges(await outbox(store))) == 2


# -- Acknowledge all ----------------------------------------------------------------------


def storm_button(args: dict[str, Any]) -> dict[str, Any] | None:
    elements = [e for b in args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert len(elements) <= 1
    return elements[0] if elements else None


async def test_a_summary_offers_acknowledge_all_while_one_of_its_alerts_is_open(store):
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=3)  # #1 on its own; #2 and #3 in a summary per lane
    ref = posts(await outbox(store), "C0ALERTS")[1][3]
    summary = await pending(store, ref)
    assert summary is not None
    assert storm_button(summary) == {
        "type": "button",
        "text": {"type": "plain_text", "text": "Acknowledge all"},
        "action_id": "storm_ack",
        "value": f"{ref}~1767225600000",  # the summary (tagged: its seed fired), not ids
        "style": "primary",
    }
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=2, actor="U01"))
    summary = await pending(store, ref)
    assert summary is not None and storm_button(summary) is not None  # #3 is open
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=3, actor="U01"))
    summary = await pending(store, ref)  # a channel's summary keeps acknowledged alerts
    assert summary is not None and "`#3`" in dump(summary["blocks"])
    assert storm_button(summary) is None  # nothing left to acknowledge


async def test_acknowledge_all_refuses_a_summary_that_has_not_gone_out(store):
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=3)
    ref = posts(await outbox(store), "U01")[1][3]
    with pytest.raises(Conflict, match="has not reached Slack"):
        await store.write(lambda tx: ops.ack_storm(engine, tx, ref=ref, actor="U01"))
    with pytest.raises(NotFound):
        await store.write(lambda tx: ops.ack_storm(engine, tx, ref=ref + "-9", actor="U01"))
    rows = await store.fetch("SELECT COUNT(*) FROM alerts WHERE acked_at IS NOT NULL")
    assert rows[0][0] == 0 and not await store.fetch("SELECT 1 FROM audit")


async def storm_state(store: Store) -> list[Any]:
    """What acknowledging changes: the alerts, their pages, the outbox (edits aside)."""
    alerts = await store.fetch("SELECT id, acked_by, esc_at FROM alerts ORDER BY id")
    pages = await store.fetch("SELECT id, withdrawn_at FROM escalations ORDER BY id")
    sent = await store.fetch(  # a summary's "done:" edit is an edit too
        "SELECT ref, state, args FROM outbox WHERE ref IS NOT NULL AND ref NOT LIKE 'done:%'"
        " ORDER BY id"
    )
    return [[tuple(r) for r in rows] for rows in (alerts, pages, sent)]


async def acknowledged_storm(path: Any, way: str) -> list[Any]:
    """30 agents trip; U01 takes what their page summary's Acknowledge all takes (the 27
    it holds, and the storm's first 3 pages before it) ``way``: "each" or "all"."""
    store = await Store.open(path, clock=ManualClock())
    try:
        return await acknowledge_storm(store, way)
    finally:
        await store.close()


async def acknowledge_storm(store: Store, way: str) -> list[Any]:
    engine = storm_engine(fold_after=3)
    await storm(store, engine, agents=30)
    out = await outbox(store)
    page, channel = posts(out, "U01")[3][3], posts(out, "C0ALERTS")[3][3]
    await store.write(  # the page summary was sent; the channel's waits (Slack's pace)
        lambda tx: tx.execute(
            "UPDATE outbox SET state = 'delivered', result_channel = channel,"
            " result_ts = '1.' || id WHERE state = 'pending' AND ref != ?",
            (channel,),
        )
    )
    cast(ManualClock, store.clock).advance(60)
    if way == "all":
        done = await store.write(lambda tx: ops.ack_storm(engine, tx, ref=page, actor="U01"))
        assert done.acked == tuple(range(1, 31)) and done.total == 30
        edit = [r for r in await outbox(store) if "$ref:" + page in dump(r[2])]
        assert len(edit) == 1 and edit[0][1] == "U01"  # in the summary's lane, after it
        assert edit[0][2]["blocks"][-1]["elements"][0]["text"] == (
            "✅ 30 acknowledged (27 here and the 3 pages before) by <@U01> at 01:01"
        )
    else:
        for alert_id in range(1, 31):

            def take(tx: Tx, a: int = alert_id) -> None:
                ops.ack(engine, tx, alert_id=a, actor="U01")

            await store.write(take)
        # the last one leaves the sent summary nothing to ask: its button goes, once
        [handled] = [r for r in await outbox(store) if "$ref:" + page in dump(r[2])]
        assert handled[2]["blocks"][-1]["elements"][0]["text"] == (
            "✅ all 27 alerts handled by 01:01: 27 acknowledged by <@U01>"
        )
    waiting = await pending(store, channel)
    assert waiting is not None and storm_button(waiting) is None
    return await storm_state(store)


async def test_acknowledge_all_is_acknowledging_each_in_one_write(tmp_path):
    """Acknowledging all ends as acknowledging each one does (the channel's waiting
    summary, rebuilt once instead of 27 times, included)."""
    each = await acknowledged_storm(tmp_path / "each.db", "each")
    assert await acknowledged_storm(tmp_path / "all.db", "all") == each


@given(st.text(max_size=80) | st.from_regex(r"fold:(pages|posts):[#A-Za-z0-9_-]{1,20}:[0-9]{1,4}"))
def test_storm_ref_takes_only_what_a_summary_is_named(value):
    try:
        ref, tag = storm_names.storm_ref(value)
    except InvalidInput as exc:
        assert exc.message.startswith("This button does not name an alert storm summary: nothing")
        return
    assert ref + (f"~{tag}" if tag is not None else "") == value
    assert value.isascii() and len(value) < 300
    kind, _, rest = value.partition(":")[2].partition(":")
    assert kind in ("pages", "posts") and ":" in rest and not any(c.isspace() for c in value)


async def test_acknowledge_all_withdraws_the_storms_nudge_still_waiting(store):
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=3)  # #2 and #3 in the channel's summary
    ref = posts(await outbox(store), "C0ALERTS")[1][3]
    await deliver_all(store)
    store.clock.advance(15 * 60)
    await store.write(engine.tick)  # the channel step: "this alert storm is unacknowledged"
    nudge = "SELECT ref FROM outbox WHERE ref LIKE 'nudge:fold:%' AND state = 'pending'"
    assert len(await store.fetch(nudge)) == 1
    done = await store.write(lambda tx: ops.ack_storm(engine, tx, ref=ref, actor="U04"))
    assert done.acked == (2, 3)
    assert await store.fetch(nudge) == []  # nobody is woken for a storm somebody took
    rows = await store.fetch("SELECT COUNT(*) FROM alerts WHERE esc_at IS NOT NULL")
    assert rows[0][0] == 1  # only #1, posted on its own, is still on its chain
