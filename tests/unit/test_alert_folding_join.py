"""Alerts due just after a storm summary went out join it by an edit (audit27 B2 L5), on a
real SQLite store: within a minute of its beginning, not after; not a handled summary;
not an alert it holds already; a P0 joining a summary of P1s buzzes once."""

from __future__ import annotations

import json
from typing import Any, cast

from bot.alerts import operations as ops
from bot.alerts.engine import AlertEngine
from bot.alerts.folding_join import JOIN_SECONDS
from bot.outbox import URGENT
from guards.store import Store
from tests.unit.test_alert_folding import posts, storm, storm_engine
from tests.unit.test_alerts_engine import POLICY, deliver_all, emit, make, opened, outbox, run


async def edits_of(store: Store, ref: str) -> list[dict[str, Any]]:
    """The edits queued for summary ``ref`` (its button's "done:" line included)."""
    rows = await store.fetch(
        "SELECT args, priority FROM outbox WHERE method = 'chat.update'"
        " AND json_extract(args, '$.ts') = ? ORDER BY id",
        (f"$ref:{ref}.ts",),
    )
    return [{**json.loads(r[0]), "priority": r[1]} for r in rows]


async def lead_of(store: Store, ref: str) -> str:
    """The lead line of summary ``ref`` as it was first posted."""
    sent = await store.fetch("SELECT args FROM outbox WHERE ref = ?", (ref,))
    return str(json.loads(sent[0][0])["blocks"][1]["text"]["text"])


async def sent_storm(store: Store, engine: AlertEngine, agents: int = 3) -> str:
    """``agents`` P0s: U01's first page on its own, the rest in a summary; all delivered.
    The page summary's ref."""
    await storm(store, engine, agents=agents)
    ref = str(posts(await outbox(store), "U01")[1][3])
    assert ref.startswith("fold:pages:U01:")
    await deliver_all(store)
    return ref


async def test_a_page_due_within_the_minute_joins_the_sent_summary_by_an_edit(store):
    engine = storm_engine(fold_after=1)
    ref = await sent_storm(store, engine)  # #2, #3 in it
    store.clock.advance(JOIN_SECONDS - 1)
    await emit(store, opened(store, scope="acme/team/late"))  # #4
    await run(store, engine)
    out = await outbox(store)
    assert [r[3] for r in posts(out, "U01")] == ["alert:1:dm:1", ref]  # nothing new buzzes
    [edit] = await edits_of(store, ref)
    blocks = json.dumps(edit["blocks"])
    assert edit["text"].startswith("🔴 Alert storm · 3 alerts: 🔴 P0")
    assert "`#2`" in blocks and "`#4` acme/team/late" in blocks
    assert "were still on their way or in the minute after" in blocks
    assert edit["priority"] == URGENT  # a P0's: it does not wait behind redraws
    # its post row says what it shows now: Acknowledge all's edit starts from it
    row = await store.fetch("SELECT state, args FROM outbox WHERE ref = ?", (ref,))
    assert row[0][0] == "delivered" and json.loads(row[0][1])["blocks"] == edit["blocks"]
    assert not [r for r in out if str(r[3]).startswith(f"nudge:{ref}")]  # it held P0s
    # the channel's summary (sent too) takes its post alike
    channel = posts(out, "C0ALERTS")
    assert [r[3] for r in channel][-1].startswith("fold:posts:C0ALERTS:") and len(channel) == 2

    done = await store.write(lambda tx: ops.ack_storm(engine, tx, ref=ref, actor="U01"))
    assert done.acked == (1, 2, 3, 4)  # the storm's first page (#1, above it) too
    marked = (await edits_of(store, ref))[-1]
    assert "`#4` acme/team/late" in json.dumps(marked["blocks"])  # not the list first sent
    assert marked["text"].endswith(
        "[✅ 4 acknowledged (3 here and the page before) by <@U01> at 01:00]"
    )


async def test_after_the_minute_a_page_buzzes_again_as_a_new_storm(store):
    engine = storm_engine(fold_after=1)
    ref = await sent_storm(store, engine)
    store.clock.advance(JOIN_SECONDS)
    await emit(store, opened(store, scope="acme/team/x1"), opened(store, scope="acme/team/x2"))
    await run(store, engine)
    refs = [r[3] for r in posts(await outbox(store), "U01")]
    assert refs[:2] == ["alert:1:dm:1", ref] and refs[2] == "alert:4:dm:4"  # its own page
    assert refs[3].startswith("fold:pages:U01:") and refs[3] != ref  # and a new summary
    assert await edits_of(store, ref) == []


async def test_a_handled_summary_is_not_joined(store):
    engine = storm_engine(fold_after=1)
    ref = await sent_storm(store, engine)
    await store.write(lambda tx: ops.ack_storm(engine, tx, ref=ref, actor="U01"))
    await emit(store, opened(store, scope="acme/team/late"))
    await run(store, engine)
    refs = [r[3] for r in posts(await outbox(store), "U01")]
    assert refs == ["alert:1:dm:1", ref, "alert:4:dm:4"]  # its button became a line: news
    assert len(await edits_of(store, ref)) == 1  # that line, only


async def test_an_alert_paged_again_is_not_hidden_in_the_summary_that_held_it(store):
    """A silence lifted within the minute pages #2 again: the sent summary lists #2
    already, so an edit would tell nobody anything; it pages on its own."""
    engine = storm_engine(fold_after=1)
    ref = await sent_storm(store, engine)  # #2, #3 in it
    await store.write(lambda tx: ops.silence(engine, tx, target="2", seconds=600, actor="U01"))
    await store.write(lambda tx: ops.lift(engine, tx, target="2", actor="U01"))
    out = await outbox(store)
    again = [r for r in posts(out, "U01") if str(r[3]).startswith("alert:2:dm:")]
    assert len(again) == 1 and "acme/team/bot-001" in again[0][2]["text"]
    assert await edits_of(store, ref) == []


def one_step_policy() -> AlertEngine:
    """One step, the primary: a P1 pages U01 after a minute, a P0 at once."""
    oncall: dict[str, Any] = dict(cast(dict[str, Any], POLICY["oncall"]))
    oncall["escalation"] = [{"notify": "rotation:primary", "after": "0m"}]
    return make(
        {"alerts": {"update_interval_seconds": "30s", "p1_escalate_after": "1m"}, "oncall": oncall}
    )


async def test_a_p0_joining_a_summary_of_p1s_buzzes_once(store):
    engine = one_step_policy()
    scopes = [f"acme/team/slow-{i}" for i in range(3)]
    await emit(store, *(opened(store, scope=s, trip="failures") for s in scopes))  # P1s
    await run(store, engine)
    store.clock.advance(61)
    await store.write(engine.tick)  # U01: #1's page, then #2 and #3 in one summary
    ref = str(posts(await outbox(store), "U01")[1][3])
    assert ref.startswith("fold:pages:U01:")
    await deliver_all(store)
    sent = await store.fetch("SELECT args FROM outbox WHERE ref = ?", (ref,))
    assert json.loads(sent[0][0])["text"].startswith("🟠 Alert storm · 2 alerts")

    store.clock.advance(1)
    await emit(store, opened(store, scope="acme/team/down-1"))  # a P0: #4
    await run(store, engine)
    [edit] = await edits_of(store, ref)
    assert edit["text"].startswith("🔴 Alert storm · 3 alerts: 🔴 P0")  # its head counts it
    notes = [r for r in await outbox(store) if r[3] == f"nudge:{ref}:p0"]
    assert len(notes) == 1 and notes[0][2]["thread_ts"] == f"$ref:{ref}.ts"
    assert notes[0][2]["reply_broadcast"] is True  # shown in the DM: the phone buzzes
    assert notes[0][2]["text"] == (
        "🔴 A P0 joined this alert storm: `#4` *Breaker opened on spend rate* on"
        " acme/team/down-1. The summary above counts it; Acknowledge all takes it with the rest."
    )
    priority = await store.fetch("SELECT priority FROM outbox WHERE ref = ?", (f"nudge:{ref}:p0",))
    assert priority[0][0] == URGENT

    await emit(store, opened(store, scope="acme/team/down-2"))  # another P0: no second buzz
    await run(store, engine)
    assert len([r for r in await outbox(store) if str(r[3]).startswith(f"nudge:{ref}")]) == 1
    assert [r[3] for r in posts(await outbox(store), "U01") if "thread_ts" not in r[2]] == [
        "alert:1:dm:1",
        ref,
    ]


async def test_acknowledge_all_takes_the_storms_first_pages_and_no_page_before_them(store):
    """With ``fold_pages_after: 1`` a storm is its first page, then the summary of the
    rest (FR4 item 2: Acknowledge all left that first page's chain paging). The summary
    names and takes every page to that person that went out on its own within the minute
    before it began (recheck27 Kb M1: not only the last one): the page just before it,
    of P1s paged a minute after they fired, and a P0's page 21 s before that; not a P0's
    page 61 s before it."""
    engine = one_step_policy()
    await emit(store, opened(store, scope="acme/old/down"))  # a P0, #1: paged at once
    await run(store, engine)
    await deliver_all(store)
    scopes = [f"acme/team/slow-{i}" for i in range(3)]
    await emit(store, *(opened(store, scope=s, trip="failures") for s in scopes))  # P1s
    await run(store, engine)
    store.clock.advance(40)
    await emit(store, opened(store, scope="acme/other/down"))  # a P0, #5: paged on its own
    await run(store, engine)
    await deliver_all(store)
    store.clock.advance(21)
    await store.write(engine.tick)  # U01: #2's page, then #3 and #4 in one summary
    refs = [r[3] for r in posts(await outbox(store), "U01")]
    assert refs[:3] == ["alert:1:dm:1", "alert:5:dm:2", "alert:2:dm:3"]
    ref = str(refs[3])
    assert (await lead_of(store, ref)).endswith(
        " Acknowledge all takes this storm's first 2 pages above too (`#2`, `#5`)."
    )
    await deliver_all(store)

    done = await store.write(lambda tx: ops.ack_storm(engine, tx, ref=ref, actor="U01"))
    assert done.acked == (2, 3, 4, 5)
    rows = await store.fetch("SELECT id FROM alerts WHERE acked_at IS NULL")
    assert [r[0] for r in rows] == [1]
    # the first pages themselves show it, as acknowledging each alone would
    for page in ("alert:2:dm:3", "alert:5:dm:2"):
        edits = await store.fetch(
            "SELECT args FROM outbox WHERE method = 'chat.update'"
            " AND json_extract(args, '$.ts') = ?",
            (f"$ref:{page}.ts",),
        )
        assert len(edits) == 1 and "acknowledged by <@U01>" in edits[0][0]


async def test_a_storm_whose_first_tick_read_one_alert_is_acknowledged_whole(store):
    """recheck27 Kb M1: one agent went silent 2 s before the others, so the watchdog's
    first tick read it alone: its page went out on its own, then the next tick's first
    page, then the summary of the rest. Acknowledge all takes all of them: nothing is
    left to page the next step. A later storm's summary does not take the first storm's
    pages, which began that one."""
    engine = storm_engine(fold_after=1)
    await storm(store, engine, agents=1)  # #1, on its own
    await deliver_all(store)
    store.clock.advance(2)
    await emit(store, *(opened(store, scope=f"acme/hb/bot-{i:03d}") for i in range(4)))
    await run(store, engine)  # #2's page, then #3-#5 in one summary
    refs = [r[3] for r in posts(await outbox(store), "U01")]
    assert refs[:2] == ["alert:1:dm:1", "alert:2:dm:2"] and len(refs) == 3
    ref = str(refs[2])
    assert (await lead_of(store, ref)).endswith(
        " Acknowledge all takes this storm's first 2 pages above too (`#1`, `#2`)."
    )
    await deliver_all(store)
    done = await store.write(lambda tx: ops.ack_storm(engine, tx, ref=ref, actor="U01"))
    assert done.acked == (1, 2, 3, 4, 5)
    assert await store.fetch("SELECT id FROM alerts WHERE acked_at IS NULL") == []

    # a second storm 30 s on: its own first page and summary; the first storm's are its own
    store.clock.advance(30)  # (a handled summary is not joined)
    await emit(store, *(opened(store, scope=f"acme/new/bot-{i:03d}") for i in range(3)))
    await run(store, engine)
    refs = [r[3] for r in posts(await outbox(store), "U01")]
    assert refs[3] == "alert:6:dm:6" and refs[4].startswith("fold:pages:U01:")
    await deliver_all(store)
    second = await store.write(lambda tx: ops.ack_storm(engine, tx, ref=str(refs[4]), actor="U01"))
    assert second.acked == (6, 7, 8) and second.earlier == {}  # not #1, #2 (acknowledged)
