"""A post retried after a 5xx with a person's edit of it behind (review24 trial H1): the
post and its edit go before the lane's ordinary posts, but never before its P0 pages and
acknowledgements. A real SQLite store, the real worker, a manual wall clock."""

from __future__ import annotations

import json
from typing import Any, cast

from bot.outbox import (
    AFTER_POST,
    ORDINARY,
    ROUTINE,
    URGENT,
    RetryLater,
    enqueue,
    enqueue_edit,
)
from guards import migrations
from guards.store import Store, Tx
from tests.unit.test_alert_folding import posts, storm, storm_engine
from tests.unit.test_alerts_engine import outbox
from tests.unit.test_outbox import Recorder, settle, start


def post(tx: Tx, ref: str, text: str, *, urgent: bool = False) -> None:
    args = {"channel": "C", "text": text}
    enqueue(tx, method="chat.postMessage", args=args, ref=ref, urgent=urgent)


async def lane(store: Store) -> list[tuple[str, int, str]]:
    """(method, priority, text) of the rows still waiting, in id order."""
    rows = await store.fetch(
        "SELECT method, priority, args FROM outbox WHERE state = 'pending' ORDER BY id"
    )
    return [(r[0], r[1], json.loads(r[2])["text"]) for r in rows]


async def test_a_p0_page_and_an_ack_overtake_a_post_in_backoff_with_its_resolution(store):
    """review24 trial H1: raised to URGENT for its resolution, a P3 post Slack kept
    refusing with 503s held the P0 page and the acknowledgement queued after it for its
    whole backoff (up to 5 min a try, for up to 24 h). Now they go at once; the post, then
    its resolution, go when it is due, before the post queued meanwhile."""
    rec = Recorder()
    worker, wall = await start(store, rec, pace=0)
    await store.write(lambda tx: post(tx, "x", "x open"))  # alert x's message is out
    await settle(worker)
    rec.script = [RetryLater("HTTP 503", kind="server_error")] * 6
    await store.write(lambda tx: post(tx, "p3", "p3 open"))
    for i in range(6):  # six 5xx: the next try is 32 s away
        await settle(worker)
        if i < 5:
            due = (await store.fetch("SELECT due_at FROM outbox WHERE ref = 'p3'"))[0][0]
            wall.advance(max(0.0, due - wall.now()))

    def meanwhile(tx: Tx) -> None:
        post(tx, "p4", "p4 open")  # an ordinary post, queued while p3 waits
        enqueue_edit(tx, "p3", text="p3 resolved", blocks=[], channel="C", urgent=True)
        post(tx, "p0", "P0 PAGE", urgent=True)
        enqueue_edit(tx, "x", text="x acked", blocks=[], channel="C", urgent=True)

    await store.write(meanwhile)
    assert await lane(store) == [
        ("chat.postMessage", AFTER_POST, "p3 open"),  # its text as it was: maybe shown
        ("chat.postMessage", ORDINARY, "p4 open"),
        ("chat.update", AFTER_POST, "p3 resolved"),
        ("chat.postMessage", URGENT, "P0 PAGE"),
        ("chat.update", URGENT, "x acked"),
    ]
    n = len(rec.calls)
    await settle(worker)
    await settle(worker)  # no time passes: p3 still waits out its backoff
    assert [a["text"] for _, a in rec.calls[n:]] == ["P0 PAGE", "x acked"]
    due = (await store.fetch("SELECT due_at FROM outbox WHERE ref = 'p3'"))[0][0]
    wall.advance(max(0.0, due - wall.now()))
    for _ in range(4):  # nothing stalls: the post is the head before its edit
        await settle(worker)
    assert [a["text"] for _, a in rec.calls[n + 2 :]] == ["p3 open", "p3 resolved", "p4 open"]
    assert await lane(store) == []
    await worker.stop(cast(Any, None))


async def test_a_page_retried_after_a_5xx_keeps_its_place_among_the_urgent(store):
    """A P0 page being retried is URGENT already: its acknowledgement's edit takes URGENT
    too, right behind it (never lowered to AFTER_POST)."""

    def page_being_sent(tx: Tx) -> None:
        post(tx, "page", "P0 page", urgent=True)
        tx.execute("UPDATE outbox SET claimed_at = 1 WHERE ref = 'page'")  # on its way
        post(tx, "later", "a later post")
        enqueue_edit(tx, "page", text="page acked", blocks=[], channel="C", urgent=True)

    await store.write(page_being_sent)
    assert await lane(store) == [
        ("chat.postMessage", URGENT, "P0 page"),
        ("chat.postMessage", ORDINARY, "a later post"),
        ("chat.update", URGENT, "page acked"),
    ]


async def test_an_edit_merged_into_a_waiting_one_takes_its_post_level(store):
    """A redraw of the post already waits (ROUTINE); the resolution made while the post is
    retried takes its place, at AFTER_POST: behind the post, before the lane's posts."""

    def redraw_then_resolve(tx: Tx) -> None:
        post(tx, "p", "p open")
        tx.execute("UPDATE outbox SET claimed_at = 1 WHERE ref = 'p'")
        enqueue_edit(tx, "p", text="p redrawn", blocks=[], channel="C")
        post(tx, "q", "q open")
        enqueue_edit(tx, "p", text="p resolved", blocks=[], channel="C", urgent=True)

    await store.write(redraw_then_resolve)
    assert await lane(store) == [
        ("chat.postMessage", AFTER_POST, "p open"),
        ("chat.update", AFTER_POST, "p resolved"),  # the redraw's row, with the new text
        ("chat.postMessage", ORDINARY, "q open"),
    ]


async def test_a_raised_post_does_not_count_as_a_p0_waiting_in_a_storm(store):
    """review24 trial H1: a P0 storm folds after ``alerts.fold_after`` P0 posts wait in the
    lane (they overtake the rest). A P3 post raised for its resolution is not one of them:
    raised to URGENT, it made the storm fold one post early."""

    def raised(tx: Tx) -> None:
        args = {"channel": "C0ALERTS", "text": "P3 open"}
        enqueue(tx, method="chat.postMessage", args=args, ref="alert:99:post")
        tx.execute("UPDATE outbox SET claimed_at = 1 WHERE ref = 'alert:99:post'")  # a 5xx
        enqueue_edit(
            tx, "alert:99:post", text="P3 resolved", blocks=[], channel="C0ALERTS", urgent=True
        )

    await store.write(raised)
    await storm(store, storm_engine(fold_after=3), agents=5)
    refs = [r[3] for r in posts(await outbox(store), "C0ALERTS")]
    assert refs[:4] == ["alert:99:post", "alert:1:post", "alert:2:post", "alert:3:post"]
    assert len(refs) == 5 and str(refs[4]).startswith("fold:posts:C0ALERTS:")  # 2 folded


def test_the_migration_moves_the_waiting_urgent_rows_to_the_new_urgent(tmp_path, monkeypatch):
    """0042: URGENT is -1 now; a P0 page written as 0 before it stays ahead of the posts
    raised to AFTER_POST (0), and counts as a P0 waiting; the other levels stay."""
    every = migrations._migrations()
    monkeypatch.setattr(migrations, "_migrations", lambda: [m for m in every if m[0] < 42])
    conn = migrations.connect(tmp_path / "n.db")
    migrations.apply_migrations(conn, now=0.0)
    for ref, priority in (("page", 0), ("post", 1), ("redraw", 2)):
        conn.execute(
            "INSERT INTO outbox (ref, method, channel, args, created_at, priority)"
            " VALUES (?, 'chat.postMessage', 'C', '{}', 0, ?)",
            (ref, priority),
        )
    conn.commit()
    monkeypatch.setattr(migrations, "_migrations", lambda: [m for m in every if m[0] <= 42])
    assert migrations.apply_migrations(conn, now=0.0) == ["0042_outbox_after_post"]
    rows = conn.execute("SELECT ref, priority FROM outbox ORDER BY id").fetchall()
    conn.close()
    assert rows == [("page", URGENT), ("post", ORDINARY), ("redraw", ROUTINE)]
