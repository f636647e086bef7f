"""A channel's storm summary someone deleted in Slack, on a real SQLite store
(bot.alerts.storm_gone): the outbox's refusal hook as the worker runs it, row by row.

The summary of #4-#6 (tests/unit/test_storm_page_line.refused_storm) went out, and an
edit of its page line waits. Acknowledge all queues its ``done:`` edit behind it. Then
Slack answers both ``message_not_found``: an admin deleted the message."""

from __future__ import annotations

import json

from bot.alerts import operations as ops
from bot.alerts.folding_join import storm_to_join
from bot.alerts.refused import Memory, on_refused
from bot.alerts.storm_gone import summary_is_gone
from bot.alerts.storm_page import follow_pages
from bot.alerts.storm_sent import handled, mark_storm
from bot.outbox import enqueue_edit
from bot.outbox_delivery import Refused
from guards.store import Store, Tx
from tests.unit.test_storm_batch import _secret, webhook_first
from tests.unit.test_storm_page_line import edits, refused_storm

__all__ = ["_secret"]

GONE = "message_not_found"


async def refuse(store: Store, engine: object, row_id: int) -> bool:
    """What the outbox worker does with a chat.update Slack answered ``message_not_found``:
    the refusal hooks first; a row none of them took fails (True: one took it)."""

    def write(tx: Tx) -> bool:
        row = tx.one("SELECT ref, method, channel, args FROM outbox WHERE id = ?", (row_id,))
        assert row is not None
        stored = json.loads(row[3])
        refused = Refused(row_id, row[0], row[1], row[2], stored, stored, GONE)
        if on_refused(engine, tx, refused, Memory()):  # type: ignore[arg-type]
            return True
        tx.execute(
            "UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ?",
            (f"Slack error {GONE}", row_id),
        )
        return False

    return await store.write(write)


async def test_a_deleted_summary_keeps_its_done_edit_and_takes_no_alert_or_edit(
    store: Store, _secret: None
):
    engine = webhook_first()
    ref = await refused_storm(store, engine)
    await store.write(lambda tx: ops.ack_storm(engine, tx, ref=ref, actor="U01"))
    rows = await store.fetch(
        "SELECT id, ref FROM outbox WHERE method = 'chat.update' AND state = 'pending'"
        " AND json_extract(args, '$.ts') = ? ORDER BY id",
        (f"$ref:{ref}.ts",),
    )
    [(line, line_ref), (done, done_ref)] = [(int(r[0]), r[1]) for r in rows]
    assert line_ref is None and done_ref == f"done:{ref}"
    assert not await store.write(lambda tx: summary_is_gone(tx, ref))

    assert await refuse(store, engine, line) is False  # the first: fails, logged
    assert await store.write(lambda tx: summary_is_gone(tx, ref))
    # review28 R3 H1: the done: edit was deleted, and the summary was "not handled" again
    assert await refuse(store, engine, done) is False  # fails as any, and stays
    states = await store.fetch("SELECT state FROM outbox WHERE ref = ?", (done_ref,))
    assert [r[0] for r in states] == ["failed"]
    assert await store.write(lambda tx: handled(tx, ref))

    # an edit without a ref of its own, queued before Slack said so, goes quietly
    later = await store.write(
        lambda tx: enqueue_edit(tx, ref, text="t", blocks=[], channel="C0ALERTS")
    )
    assert await refuse(store, engine, later) is True
    assert await store.fetch("SELECT 1 FROM outbox WHERE id = ?", (later,)) == []

    # from now on nothing edits it, and no alert joins it (review28 R3 M1)
    count = len(await edits(store, ref))
    await store.write(
        lambda tx: mark_storm(tx, ref, lane="C0ALERTS", sent={"text": "x", "blocks": []}, line="l")
    )
    assert await store.write(lambda tx: follow_pages(engine, tx, [ref], now=tx.clock.now())) == 0
    assert len(await edits(store, ref)) == count
    joins = await store.write(
        lambda tx: storm_to_join(
            tx, engine.policy, "C0ALERTS", pages=False, alert_id=99, now=tx.clock.now()
        )
    )
    assert joins is None


async def test_a_summary_whose_edit_failed_otherwise_still_takes_alerts(
    store: Store, _secret: None
):
    """Only "gone" errors count: an edit given up after a day of 5xx, or refused for its
    content, leaves the summary taking alerts in its minute (and edited again)."""
    engine = webhook_first()
    ref = await refused_storm(store, engine)
    await store.write(
        lambda tx: tx.execute(
            "UPDATE outbox SET state = 'failed', last_error = 'gave up after 30 attempts:"
            " HTTP 503' WHERE method = 'chat.update' AND state = 'pending'"
        )
    )
    assert not await store.write(lambda tx: summary_is_gone(tx, ref))
    joins = await store.write(
        lambda tx: storm_to_join(
            tx, engine.policy, "C0ALERTS", pages=False, alert_id=99, now=tx.clock.now()
        )
    )
    assert joins == ref
