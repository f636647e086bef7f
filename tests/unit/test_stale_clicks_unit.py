"""Repeated Keep open and Escalate now: the breaker's reason and the escalation step."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts import operations as ops
from bot.alerts.messages import escalate_value
from bot.commands_alert_buttons import _escalate_value
from guards.breaker import (
    HALF_OPEN_PENDING,
    OPEN,
    Breaker,
    BreakerConfig,
    trip_reason,
)
from guards.config_types import format_seconds
from guards.errors import Conflict, InvalidInput
from tests.unit.test_alerts_engine import alerts, emit, make, opened, outbox, run

KEY = "acme/alice/bot"


def tripped(**kw):
    b = Breaker(KEY, BreakerConfig(consecutive=1, cooldown_seconds=100, **kw))
    b.record(0.0, failed=True, source=KEY)
    return b


# -- the breaker's reason -----------------------------------------------------------------


def test_trip_reason_peels_every_wrapper():
    assert trip_reason("1 failures in a row (limit 1)") == "1 failures in a row (limit 1)"
    nested = "kept open by U2 for 4m (kept open by U1 for 2m (1 failures in a row (limit 1)))"
    assert trip_reason(nested) == "1 failures in a row (limit 1)"
    auto = "cool-down over, trial started (kept open by U1 for 2m (spent $3.00 (limit $2.00)))"
    assert trip_reason(auto) == "spent $3.00 (limit $2.00)"
    assert trip_reason("kept open by U1 (no duration)") == "kept open by U1 (no duration)"


def test_keep_open_on_every_request_wraps_the_reason_once():
    b = tripped()
    now = 0.0
    for n in range(1, 6):
        now += b.cooldown_seconds
        assert b.expire(now) is not None and b.state == HALF_OPEN_PENDING
        b.keep_open(now, actor=f"U{n}")
        assert b.state == OPEN and b.reopens == n
        wait = format_seconds(b.cooldown_seconds)
        assert b.reason == f"kept open by U{n} for {wait} (1 failures in a row (limit 1))"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["keep_open", "expire", "approve", "fail_trial"]), max_size=40))
def test_no_history_nests_the_reason(moves):
    b = tripped(modes={"failures": "auto"}, max_cooldown_seconds=10_000)
    now = 0.0
    for move in moves:
        now += 1
        try:
            if move == "keep_open":
                b.keep_open(now, actor="U1")
            elif move == "expire":
                now += b.cooldown_seconds
                b.expire(now)
            elif move == "approve":
                b.approve(now, actor="U1")
            elif b.state == "half_open":
                b.admitted("r1", 1)
                b.record(now, failed=True, source=KEY, res_id="r1")
        except Conflict:
            pass
        assert b.reason.count("kept open by") <= 1
        assert b.reason.count("cool-down over") <= 1


# -- the Escalate now value ---------------------------------------------------------------


def test_escalate_button_values():
    assert _escalate_value("20") == (20, None)
    assert _escalate_value("20:1") == (20, 1)
    for bad in ("20:", "20:x", ":1", "20:1:2", "20:-1", "20:١"):
        with pytest.raises(InvalidInput):
            _escalate_value(bad)


async def test_the_rendered_button_carries_the_step_it_takes(store):
    engine = make()
    await emit(store, opened(store))
    await run(store, engine)
    alert = await store.write(lambda tx: engine.get(tx, 1))
    assert alert.esc_step == 1 and escalate_value(alert) == "1:1~1767225600000"
    page = (await outbox(store))[1][2]  # the DM, rendered once step 1 was taken
    values = {
        e["action_id"]: e["value"]
        for b in page["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }
    assert (
        values["alert_escalate"] == "1:1~1767225600000" and values["alert_ack"] == "1~1767225600000"
    )


async def test_a_stale_step_writes_nothing(store):
    engine = make()
    await emit(store, opened(store))
    await run(store, engine)
    who = await store.write(
        lambda tx: ops.escalate_now(engine, tx, alert_id=1, actor="U01", at_step=1)
    )
    assert who == "U04"
    queued = len(await outbox(store))
    with pytest.raises(Conflict, match="already escalated to step 2 of 3 by <@U01>"):
        await store.write(
            lambda tx: ops.escalate_now(engine, tx, alert_id=1, actor="U02", at_step=1)
        )
    with pytest.raises(Conflict, match="already escalated to step 2 of 3 by <@U01>"):
        await store.write(lambda tx: ops.escalate_now(engine, tx, alert_id=1, actor="U02"))
    assert len(await outbox(store)) == queued
    audit = await store.fetch("SELECT actor FROM audit WHERE action = 'alert.escalate'")
    assert [r[0] for r in audit] == ["U01"]
    [row] = await alerts(store)
    assert row["esc_step"] == 2


async def test_escalate_now_never_pages_the_clicker_again(store):
    """audit17 phone M5: with the README's default set-up (a rotation, no chain), the person
    paged tapping Escalate now was paged again, told "Escalated", and nobody else woke."""
    engine = make({"oncall": {"rotations": [{"name": "primary", "users": ["U01", "U02"]}]}})
    await emit(store, opened(store))
    await run(store, engine)
    paged = await store.write(lambda tx: engine.first_responder(tx, store.clock.now()))
    assert paged is not None
    queued = len(await outbox(store))
    with pytest.raises(Conflict, match="Escalate now would page you again") as refused:
        await store.write(
            lambda tx: ops.escalate_now(engine, tx, alert_id=1, actor=paged, at_step=1)
        )
    assert "`/agent oncall override @someone 1h`" in refused.value.message
    assert len(await outbox(store)) == queued
    assert await store.fetch("SELECT 1 FROM audit WHERE action = 'alert.escalate'") == []
    # anyone else (an admin, a colleague) still escalates: it pages the person on call
    who = await store.write(
        lambda tx: ops.escalate_now(engine, tx, alert_id=1, actor="U0ADMIN", at_step=1)
    )
    assert who == paged


async def test_escalate_now_passes_over_steps_that_would_page_the_clicker(store):
    """Closing13: a chain paging the primary twice refused the primary's Escalate now,
    though a later step reached someone else."""
    chain = [
        {"notify": "rotation:primary", "after": "0m"},
        {"notify": "rotation:primary", "after": "5m"},  # paged again before anyone else
        {"notify": "rotation:secondary", "after": "10m"},
        {"notify": "channel", "after": "15m"},
    ]
    rotations = [
        {"name": "primary", "users": ["U01", "U02"], "start": "2025-12-29"},
        {"name": "secondary", "users": ["U04"]},
    ]
    engine = make({"oncall": {"rotations": rotations, "escalation": chain}})
    await emit(store, opened(store))
    await run(store, engine)
    paged = await store.write(lambda tx: engine.first_responder(tx, store.clock.now()))
    assert paged in ("U01", "U02")
    who = await store.write(
        lambda tx: ops.escalate_now(engine, tx, alert_id=1, actor=paged, at_step=1)
    )
    assert who == "U04"
    [row] = await alerts(store)
    assert row["esc_step"] == 3  # the channel is next, on the chain's times from now
    steps = await store.fetch("SELECT step, target, manual_by FROM escalations ORDER BY id")
    assert [tuple(r) for r in steps] == [(0, paged, None), (2, "U04", paged)]
