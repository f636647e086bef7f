"""A storm's summaries are redrawn once per batch of events (review27 R1 M2), on a real
SQLite store: the statements a storm costs the writer grow with its alerts, not with
their square; a summary that cannot be drawn keeps the batch's alerts."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.alerts import operations as ops
from bot.alerts.engine import AlertEngine
from guards.clock import ManualClock
from guards.store import Store
from tests.fakes.tracing import on_writer, writer_statements
from tests.unit.test_alert_folding import posts
from tests.unit.test_alerts_engine import POLICY, deliver_all, emit, make, opened, outbox, run

SECRET_ENV = "NIGHTSHIFT_TEST_STORM_SECRET"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "whsec-storm-0123456789")


def webhook_first() -> AlertEngine:
    """A chain that pages a webhook first, then the primary rotation; storms fold after 3
    messages wait in a lane (posts), after 3 pages in a minute (the webhook)."""
    return make(
        {
            "alerts": {**POLICY["alerts"], "fold_after": 3, "fold_pages_after": 0},  # type: ignore[dict-item]
            "webhooks": {
                "pager": {
                    "url": "http://127.0.0.1:9/pager",
                    "secret_env": SECRET_ENV,
                    "fold_after": 3,
                }
            },
            "oncall": {
                **POLICY["oncall"],  # type: ignore[dict-item]
                "escalation": [
                    {"notify": "webhook:pager", "after": "0m"},
                    {"notify": "rotation:primary", "after": "10m"},
                ],
            },
        }
    )


def channel_posts(rows: list[Any]) -> list[Any]:
    """The alerts channel's messages, not the replies in their threads."""
    return [r for r in posts(rows, "C0ALERTS") if "thread_ts" not in r[2]]


def agents(first: int, last: int) -> list[str]:
    return [f"acme/team/bot-{i:03d}" for i in range(first, last)]


async def storm_statements(store: Store, engine: AlertEngine, alerts: int) -> int:
    """The statements two batches cost the writer: half the storm's agents trip (their
    posts fold into the channel's summary, their pages into the webhook's storm), the
    summary goes out, and half a minute later the other half trip and join it."""
    statements: list[str] = []

    async def batch(scopes: list[str]) -> None:
        await emit(store, *(opened(store, scope=s) for s in scopes))
        async with writer_statements(store) as traced:
            assert await run(store, engine) == len(scopes)
        statements.extend(traced)

    await batch(agents(0, alerts // 2))
    await deliver_all(store)
    assert isinstance(store.clock, ManualClock)
    store.clock.advance(30)
    await batch(agents(alerts // 2, alerts))
    # it is a storm: the first three posts on their own, one summary for the rest
    channel = channel_posts(await outbox(store))
    assert len(channel) == 4 and str(channel[3][3]).startswith("fold:posts:C0ALERTS:")
    return len(statements)


async def at_240_and_480(
    tmp_path: Path, cost: Callable[[Store, AlertEngine, int], Awaitable[int]]
) -> list[int]:
    """What ``cost`` measures of a storm of 240 alerts, then of 480, each on a new store
    with a webhook-first chain."""
    counts = []
    for alerts in (240, 480):
        store = await Store.open(tmp_path / f"storm-{alerts}.db", clock=ManualClock())
        try:
            counts.append(await cost(store, webhook_first(), alerts))
        finally:
            await store.close()
    return counts


async def test_a_storm_costs_the_writer_statements_in_proportion_to_its_alerts(tmp_path):
    """240 alerts then 480: twice the statements, not four times (it was 121,941 and
    474,261: each alert's fold rebuilt the summary, reading every alert's webhook page)."""
    small, large = counts = await at_240_and_480(tmp_path, storm_statements)
    assert large < 2.5 * small, counts


async def lift_steps(store: Store, engine: AlertEngine, alerts: int) -> int:
    """The SQLite steps (in hundreds of virtual machine instructions) a lift costs the
    writer: a silence held a storm's alerts (recorded, not posted); lifted, they post and
    page at once, folded as a batch's are. (Steps, not statements: a rebuild is a few
    statements, each reading all the summary holds.)"""
    await store.write(
        lambda tx: ops.silence(
            engine, tx, target="acme/team", seconds=3600, actor="U01", unseen_ok=True
        )
    )
    await emit(store, *(opened(store, scope=s) for s in agents(0, alerts)))
    assert await run(store, engine) == alerts
    assert channel_posts(await outbox(store)) == []
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0  # (go on)

    await on_writer(store, store._conn.set_progress_handler, step, 100)
    try:
        await store.write(lambda tx: ops.lift(engine, tx, target="acme/team", actor="U01"))
    finally:
        await on_writer(store, store._conn.set_progress_handler, None, 0)
    channel = channel_posts(await outbox(store))
    assert len(channel) == 4 and str(channel[3][3]).startswith("fold:posts:C0ALERTS:")
    return steps


async def test_lifting_a_silence_over_a_storm_costs_the_writer_in_proportion(tmp_path):
    """A lift starts its alerts again in one write, as a batch: its summaries are drawn
    once, not once per alert."""
    small, large = counts = await at_240_and_480(tmp_path, lift_steps)
    assert large < 2.5 * small, counts


async def test_a_summary_that_cannot_be_drawn_keeps_the_batchs_alerts(
    store: Store, caplog: pytest.LogCaptureFixture
):
    """A bug in drawing one summary is logged; the batch's alerts, their pages and the
    events' dispatch stay (a summary drawn once as the batch ends, not in each event's
    own savepoint)."""
    engine = webhook_first()
    await emit(store, *(opened(store, scope=s) for s in agents(0, 5)))
    await run(store, engine)
    ref = str(channel_posts(await outbox(store))[3][3])
    before = await store.fetch("SELECT args FROM outbox WHERE ref = ?", (ref,))
    # one of the alerts it holds can no longer be read (a row a bug wrote)
    await store.write(lambda tx: tx.execute("UPDATE alerts SET facts = '{' WHERE id = 4"))
    await emit(store, *(opened(store, scope=s) for s in agents(5, 7)))
    with caplog.at_level(logging.ERROR, logger="bot.alerts.storm_batch"):
        assert await run(store, engine) == 2
    assert [r.getMessage() for r in caplog.records] == [
        f"alert storm summary {ref} could not be redrawn; it stays as it was"
    ]
    rows = await store.fetch("SELECT id, folded_into FROM alerts WHERE id > 5 ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [(6, ref), (7, ref)]  # folded, kept
    assert not await store.fetch("SELECT 1 FROM events WHERE dispatched_at IS NULL")
    after = await store.fetch("SELECT args FROM outbox WHERE ref = ?", (ref,))
    assert json.loads(after[0][0]) == json.loads(before[0][0])
