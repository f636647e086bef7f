"""A channel's storm summary's webhook page line, on a real SQLite store: it belongs only on
a summary whose alerts are still paged (review27 R1 L1), and once the chain's next step
paged a person it says so (review27 R1 L2), as the alerts' own posts do.

The chain pages webhook pager first, then the primary rotation (U01) ten minutes on; six
agents trip at once: three posts on their own, #4-#6 in the channel's summary, and the
storm's trigger (webhook storm 1) carries #4-#6's pages. The receiver refuses it."""

from __future__ import annotations

import json
from typing import Any

from bot.alerts import operations as ops
from bot.alerts.engine import AlertEngine
from bot.alerts.storm_page import follow_pages, paged_summaries
from bot.commands_alert_actions import unack
from bot.outbox import URGENT
from guards.clock import ManualClock
from guards.store import Store
from tests.unit.test_alerts_engine import POLICY, deliver_all, emit, make, opened, outbox, run
from tests.unit.test_storm_batch import _secret, agents, channel_posts, webhook_first

__all__ = ["_secret"]

FAILED = "⚠️ The page via webhook pager failed (HTTP 400); <@U01> is next:"


async def refused_storm(store: Store, engine: AlertEngine) -> str:
    """Six agents trip; the channel's summary (#4-#6) goes out; the storm's trigger is
    refused for good, and the summary says so. The summary's ref."""
    await emit(store, *(opened(store, scope=s) for s in agents(0, 6)))
    await run(store, engine)
    ref = str(channel_posts(await outbox(store))[3][3])
    assert ref.startswith("fold:posts:C0ALERTS:")
    await deliver_all(store)
    await store.write(  # what the sender records of a 400 (bot.webhooks_record)
        lambda tx: tx.execute(
            "UPDATE webhook_deliveries SET state = 'failed', attempts = 1, last_status = 400"
            " WHERE storm_id = 1"
        )
    )
    await store.write(lambda tx: follow_pages(engine, tx, [ref], now=tx.clock.now()))
    assert [e["text"] for e in await edits(store, ref)] == [
        f"{FAILED} 🔴 Alert storm · 3 alerts: 🔴 P0 · *Breaker opened on spend rate* × 3"
    ]
    return ref


async def edits(store: Store, ref: str) -> list[dict[str, Any]]:
    """The edits queued for summary ``ref``, oldest first."""
    rows = await store.fetch(
        "SELECT args FROM outbox WHERE method = 'chat.update'"
        " AND json_extract(args, '$.ts') = ? ORDER BY id",
        (f"$ref:{ref}.ts",),
    )
    return [json.loads(r[0]) for r in rows]


def page_line(args: dict[str, Any]) -> str | None:
    lines = [b["text"]["text"] for b in args["blocks"] if b.get("block_id") == "page"]
    return lines[0] if lines else None


async def test_a_handled_summary_unacknowledged_again_gets_its_button_and_its_page_line_back(
    store: Store,
):
    """Acknowledge all drops the line; `/agent unack` of one alert puts its chain back on.
    The storm's next answered trigger used to draw "<@U01> is next" back above "✅ 3
    acknowledged by <@U01>" (review27 R1 L1); then the summary kept "✅ 3 acknowledged"
    with no button while #5 paged again (review28 R3 L4). It is drawn again as it was
    before the click, its button back, its page line as the page is now, in one edit;
    the next answered trigger finds nothing new."""
    engine = webhook_first()
    ref = await refused_storm(store, engine)
    await store.write(lambda tx: ops.ack_storm(engine, tx, ref=ref, actor="U01"))
    done = (await edits(store, ref))[-1]
    assert page_line(done) is None and done["text"].endswith(
        "[✅ 3 acknowledged by <@U01> at 01:00]"
    )
    await deliver_all(store)
    await store.write(lambda tx: unack(engine, tx, alert_id=5, actor="U01", admin=False))
    [*_, before, reopened] = await edits(store, ref)
    assert before == done
    assert "✅" not in json.dumps(reopened, ensure_ascii=False)
    assert [b["block_id"] for b in reopened["blocks"] if b["type"] == "actions"] == ["storm"]
    assert page_line(reopened) == FAILED
    assert reopened["text"].startswith(f"{FAILED} 🔴 Alert storm · 3 alerts")
    done_rows = await store.fetch("SELECT 1 FROM outbox WHERE ref = ?", (f"done:{ref}",))
    assert done_rows == []  # not handled: acknowledged again, it says so again
    redrawn = await store.write(
        lambda tx: follow_pages(
            engine, tx, paged_summaries(tx, storm=1, alert_id=5), now=tx.clock.now()
        )
    )
    assert redrawn == 0
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=5, actor="U01"))
    [*_, again] = await edits(store, ref)
    assert again["text"].endswith("[✅ all 3 alerts handled by 01:00: 3 acknowledged by <@U01>]")


async def test_a_summary_says_whom_the_next_step_paged_once_it_did(store: Store):
    """Ten minutes on the chain's next step pages U01 for #4-#6: the summary said "<@U01>
    is next" until a later trigger was answered (never, if none was); it says "paged
    <@U01>" at that step, as their own posts mention U01 then, in one routine edit."""
    engine = webhook_first()
    ref = await refused_storm(store, engine)
    await deliver_all(store)  # (its failed line went out)
    assert isinstance(store.clock, ManualClock)
    store.clock.advance(10 * 60)
    await store.write(engine.tick)
    rows = await store.fetch("SELECT oncall_user FROM alerts WHERE folded_into = ?", (ref,))
    assert [r[0] for r in rows] == ["U01"] * 3
    paged = "⚠️ The page via webhook pager failed (HTTP 400); paged <@U01>:"
    [*_, last] = await edits(store, ref)
    assert page_line(last) == paged
    assert last["text"].startswith(f"{paged} 🔴 Alert storm · 3 alerts")
    priority = await store.fetch(
        "SELECT priority FROM outbox WHERE method = 'chat.update'"
        " AND json_extract(args, '$.ts') = ? ORDER BY id DESC LIMIT 1",
        (f"$ref:{ref}.ts",),
    )
    assert priority[0][0] != URGENT  # U01 was paged: nobody need act on the failure now
    # a later answer of the storm's triggers leaves it so: no "is next" again
    await store.write(lambda tx: follow_pages(engine, tx, [ref], now=tx.clock.now()))
    assert (await edits(store, ref))[-1] == last


async def test_a_person_first_summary_mentions_whom_the_next_step_paged(store: Store):
    """recheck27 Kb L1: a chain paging the primary first, then the secondary (U04) at 5m.
    The channel's summary of #4-#6 said "<@U01> 🔴 Alert storm · 3 alerts" after step 2
    paged U04 for all of them, while their own posts were redrawn to mention U04. It is
    edited to mention U04, once (a tick's batch), routine."""
    engine = make({"alerts": {**POLICY["alerts"], "fold_after": 3, "fold_pages_after": 0}})  # type: ignore[dict-item]
    await emit(store, *(opened(store, scope=s) for s in agents(0, 6)))
    await run(store, engine)
    ref = str(channel_posts(await outbox(store))[3][3])
    assert ref.startswith("fold:posts:C0ALERTS:")
    await deliver_all(store)
    sent = await store.fetch("SELECT args FROM outbox WHERE ref = ?", (ref,))
    assert json.loads(sent[0][0])["text"].startswith("<@U01> 🔴 Alert storm · 3 alerts")
    assert await edits(store, ref) == []
    assert isinstance(store.clock, ManualClock)
    store.clock.advance(5 * 60)
    await store.write(engine.tick)
    rows = await store.fetch("SELECT oncall_user FROM alerts WHERE folded_into = ?", (ref,))
    assert [r[0] for r in rows] == ["U04"] * 3
    [edit] = await edits(store, ref)
    assert edit["text"].startswith("<@U04> 🔴 Alert storm · 3 alerts: 🔴 P0")
    lead = next(b["text"]["text"] for b in edit["blocks"] if b.get("type") == "section")
    assert lead.startswith("<@U04> *3 alerts* came while") and "<@U01>" not in json.dumps(edit)
    priority = await store.fetch(
        "SELECT priority FROM outbox WHERE method = 'chat.update'"
        " AND json_extract(args, '$.ts') = ?",
        (f"$ref:{ref}.ts",),
    )
    assert priority[0][0] != URGENT
    await store.write(engine.tick)  # nothing new to say: no second edit
    assert len(await edits(store, ref)) == 1
    await deliver_all(store)
    await store.write(lambda tx: ops.ack_storm(engine, tx, ref=ref, actor="U04"))
    done = (await edits(store, ref))[-1]  # its button becomes a line; U04 it still says
    assert done["text"].startswith("<@U04> 🔴 Alert storm · 3 alerts")
    assert done["text"].endswith("[✅ 3 acknowledged by <@U04> at 01:05]")


async def test_a_summary_whose_page_line_edit_failed_for_good_is_drawn_again(store: Store):
    """A redraw Slack never took (its chat.update failed for good: refused, or given up
    after a day of 5xx) is not what the summary shows: the next answered trigger draws the
    line again, rather than leaving "📟 Paging via…" on it until its next change (it
    compared with the failed edit, found nothing new, and queued nothing)."""
    engine = webhook_first()
    ref = await refused_storm(store, engine)
    await store.write(  # what the outbox writes when it gives the edit up
        lambda tx: tx.execute(
            "UPDATE outbox SET state = 'failed', last_error = 'gave up after 30 attempts'"
            " WHERE method = 'chat.update' AND json_extract(args, '$.ts') = ?",
            (f"$ref:{ref}.ts",),
        )
    )
    redrawn = await store.write(lambda tx: follow_pages(engine, tx, [ref], now=tx.clock.now()))
    assert redrawn == 1
    [failed, again] = await edits(store, ref)
    assert again == failed and page_line(again) == FAILED
    # once that one is shown, the same answer again queues nothing
    await deliver_all(store)
    await store.write(lambda tx: follow_pages(engine, tx, [ref], now=tx.clock.now()))
    assert len(await edits(store, ref)) == 2


async def test_a_page_line_redraw_after_a_join_s_edit_failed_shows_what_it_holds(store: Store):
    """review28 R3 L3: the summary went out with #4-#6, its page line's edit went out,
    then #7 joined it and that edit failed for good (a refusal that is not "gone"). The
    next redraw of its page line was drawn on the last edit that went out, and said "3
    alerts" while it held 4 (or queued nothing). It is drawn from its post row's args,
    which the join kept."""
    engine = webhook_first()
    ref = await refused_storm(store, engine)
    await deliver_all(store)  # (its failed line went out)
    assert isinstance(store.clock, ManualClock)
    store.clock.advance(10)
    await emit(store, opened(store, scope="acme/team/bot-late"))
    await run(store, engine)
    [*_, joined] = await edits(store, ref)
    assert joined["text"].startswith(f"{FAILED} 🔴 Alert storm · 4 alerts")
    await store.write(  # what the outbox writes of a refusal
        lambda tx: tx.execute(
            "UPDATE outbox SET state = 'failed', last_error = 'Slack error invalid_blocks'"
            " WHERE state = 'pending' AND method = 'chat.update'"
            " AND json_extract(args, '$.ts') = ?",
            (f"$ref:{ref}.ts",),
        )
    )
    redrawn = await store.write(lambda tx: follow_pages(engine, tx, [ref], now=tx.clock.now()))
    assert redrawn == 1
    [*_, again] = await edits(store, ref)
    assert again["text"].startswith(f"{FAILED} 🔴 Alert storm · 4 alerts")
