"""A request Slack sends again after a restart is not run twice (audit28 M1).

Slack re-sends a Socket Mode envelope (same ``envelope_id``, ``retry_attempt`` 1) when
its acknowledgement did not reach it (over HTTP it re-sends only Events API deliveries,
which run nothing: HTTP mode records nothing, so a command there costs no write); the
likeliest cause is the process ending between the command and its ack. The memory of
envelopes was the process's: after a restart ``/agent credit`` ran again and took the
money back twice. Two apps started one after the other on one database file.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.slack.received import MAY_HAVE_RUN, Received
from guards.clock import ManualClock
from tests.fakes.fixtures import slack_env
from tests.fakes.slack_signing import command_payload
from tests.scenario.test_credit import POLICY, T0, charged

BOT = "acme/alice/rss-bot"


async def credits(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch("SELECT action, after FROM audit WHERE action = 'ledger.credit'")
    return [tuple(r) for r in rows]


async def socket_app(app_factory: Any, fake_slack: Any, db: Path, clock: ManualClock) -> Any:
    fake_slack.socket_connected.clear()
    app = await app_factory(POLICY, env=slack_env(fake_slack, mode="socket"), clock=clock, db=db)
    await asyncio.wait_for(fake_slack.socket_connected.wait(), 10)
    return app


async def test_an_envelope_sent_again_after_a_restart_is_answered_not_run(
    app_factory, fake_slack, migrated, tmp_path
):
    db = tmp_path / "ns.db"
    shutil.copy2(migrated, db)
    clock = ManualClock(T0)
    first = await socket_app(app_factory, fake_slack, db, clock)
    rid = await charged(first, await first.token("acme"), "bug", 400_000)
    command = command_payload(f"credit {rid} 0.10 unit bug")
    envelope = await fake_slack.send_envelope("slash_commands", command)
    reply = await fake_slack.envelope_reply(envelope)
    assert "$0.10" in reply["payload"]["text"], reply
    await first.ns.stop()  # its acknowledgement lost on the way: Slack sends it again

    clock.advance(60)
    second = await socket_app(app_factory, fake_slack, db, clock)
    again = await fake_slack.send_envelope("slash_commands", command, again=envelope)
    ack = await fake_slack.envelope_reply(again)
    assert ack["payload"] == reply["payload"]  # the first answer, so its announcement shows
    assert await credits(second) == [("ledger.credit", "300000")]  # credited once

    fresh = await fake_slack.send_envelope("slash_commands", command_payload("help"))
    assert (await fake_slack.envelope_reply(fresh))["payload"]["text"]  # others still run
    assert await credits(second) == [("ledger.credit", "300000")]


async def test_an_envelope_whose_answer_a_crash_cut_off_is_not_run_again(
    app_factory, fake_slack, migrated, tmp_path, caplog
):
    """Recorded before it ran, never answered: it may have moved the money; at most once."""
    db = tmp_path / "ns.db"
    shutil.copy2(migrated, db)
    clock = ManualClock(T0)
    first = await socket_app(app_factory, fake_slack, db, clock)
    rid = await charged(first, await first.token("acme"), "bug", 400_000)
    # what a process killed between recording the envelope and its answer leaves
    assert await Received(first.store, clock=clock).first("envelope:E-cut-off") is None
    await first.ns.stop()

    second = await socket_app(app_factory, fake_slack, db, clock)
    command = command_payload(f"credit {rid} 0.10 unit bug")
    again = await fake_slack.send_envelope("slash_commands", command, again="E-cut-off")
    ack = await fake_slack.envelope_reply(again)
    assert ack["payload"] == {"response_type": "ephemeral", "text": MAY_HAVE_RUN}
    assert "`/agent audit`" in MAY_HAVE_RUN
    assert await credits(second) == []  # not run
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("E-cut-off again" in m and "may have run; not run again" in m for m in warned)
    # a click re-sent so is acknowledged empty (Slack shows no text for a click)
    await Received(second.store, clock=clock).first("envelope:E-click")
    click = {"type": "block_actions", "actions": [{"action_id": "alert_ack", "value": "1"}]}
    again = await fake_slack.send_envelope("interactive", click, again="E-click")
    assert await fake_slack.envelope_reply(again) == {"envelope_id": "E-click"}


async def test_received_rows_are_pruned_after_an_hour(app_factory, fake_slack, migrated, tmp_path):
    db = tmp_path / "ns.db"
    shutil.copy2(migrated, db)
    clock = ManualClock(T0)
    app = await socket_app(app_factory, fake_slack, db, clock)
    envelope = await fake_slack.send_envelope("slash_commands", command_payload("help"))
    assert (await fake_slack.envelope_reply(envelope))["payload"]["text"]
    for _ in range(100):  # (its answer is recorded after it went out)
        rows = await app.store.fetch("SELECT answered_at IS NOT NULL FROM slack_received")
        if [tuple(r) for r in rows] == [(1,)]:
            break
        await asyncio.sleep(0.02)
    assert [tuple(r) for r in rows] == [(1,)]
    retention = app.ns.extras["retention"]
    clock.advance(3000)
    assert (await retention.run()).get("slack_received") == 0
    clock.advance(700)
    assert (await retention.run())["slack_received"] == 1
    assert await app.store.fetch("SELECT * FROM slack_received") == []


async def test_a_command_under_a_held_write_lock_is_not_held_up_by_its_record(
    app_factory, fake_slack, migrated, tmp_path
):
    """The record waits 1 s at most (a write waits 8 s for a held lock; Slack 3 s)."""
    from guards.migrations import begin_immediate, connect

    db = tmp_path / "ns.db"
    shutil.copy2(migrated, db)
    app = await socket_app(app_factory, fake_slack, db, ManualClock(T0))
    other = connect(app.ns.settings.db)
    try:
        begin_immediate(other)  # an operator's sqlite3 shell inside a transaction
        began = asyncio.get_running_loop().time()
        envelope = await fake_slack.send_envelope("slash_commands", command_payload("help"))
        assert (await fake_slack.envelope_reply(envelope))["payload"]["text"]
        assert asyncio.get_running_loop().time() - began < 2.0
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_a_writing_command_under_a_held_write_lock_is_acked_within_2s_of_arriving(
    app_factory, fake_slack, migrated, tmp_path
):
    """review28 R5 M2: the record's 1 s wait came on top of the command's own 2 s ack
    budget, so ``credit`` was acknowledged after 3.0 s (past Slack's 3 s with the round
    trip); and L2: the record that landed late never got its answer saved."""
    from guards.migrations import begin_immediate, connect

    db = tmp_path / "ns.db"
    shutil.copy2(migrated, db)
    app = await socket_app(app_factory, fake_slack, db, ManualClock(T0))
    rid = await charged(app, await app.token("acme"), "bug", 400_000)
    loop = asyncio.get_running_loop()
    other = connect(app.ns.settings.db)
    try:
        begin_immediate(other)  # an operator's sqlite3 shell inside a transaction
        began = loop.time()
        command = command_payload(f"credit {rid} 0.10 unit bug")
        envelope = await fake_slack.send_envelope("slash_commands", command)
        ack = await fake_slack.envelope_reply(envelope)
        took = loop.time() - began
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert ack["payload"]["text"] == "⏳ Working on it…", ack
    assert took < 2.3, took  # ACK_BUDGET from the envelope's arrival, the record's wait in it
    # the lock gone, the record lands, the credit runs once, and the record gets its answer
    for _ in range(250):
        rows = await app.store.fetch(
            "SELECT answer FROM slack_received WHERE key = ?", (f"envelope:{envelope}",)
        )
        if rows and rows[0][0] is not None:
            break
        await asyncio.sleep(0.02)
    assert [tuple(r) for r in rows] == [(json.dumps(ack["payload"], separators=(",", ":")),)]
    assert await credits(app) == [("ledger.credit", "300000")]


async def test_a_record_the_database_finally_refuses_is_one_line_not_a_traceback(
    store, monkeypatch, caplog
):
    """review28 R5 L1: nobody awaited the late record's write, so its refusal was logged
    by asyncio as 'Task exception was never retrieved' with a traceback."""
    import gc
    import logging

    import guards.store
    from guards.migrations import begin_immediate, connect

    monkeypatch.setattr(guards.store, "LOCK_WAIT_SECONDS", 1.3)  # the store's 8 s, shorter
    caplog.set_level(logging.INFO)
    received = Received(store, clock=ManualClock(T0))
    other = connect(store.path)
    try:
        begin_immediate(other)
        with pytest.raises(TimeoutError):  # RECORD_SECONDS: it runs unrecorded
            await received.first("envelope:E-late")
        await received.answered("envelope:E-late", {"text": "done"})  # waits; refused
    finally:
        other.execute("ROLLBACK")
        other.close()
    del received
    gc.collect()
    await asyncio.sleep(0)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert not [m for m in said if "never retrieved" in m[1]], said
    [line] = [m for m in said if "E-late was not written" in m[1]]
    assert line[0] == "INFO" and "it ran unrecorded" in line[1]
    assert await store.fetch("SELECT * FROM slack_received") == []


async def test_a_late_record_whose_command_raises_is_answered_and_let_go(
    app_factory, fake_slack, migrated, tmp_path, monkeypatch
):
    """review28 R8 L1: a record that missed its 1 s wait was kept in ``Received._late``
    for the process's life when its command then raised (``answered`` ran only on the
    normal path), and its row was never answered."""
    import bot.slack.socket_envelopes
    from bot.slack.socket_mode import SocketModeTransport
    from guards.migrations import begin_immediate, connect

    async def raising(app: Any, req: Any) -> Any:
        raise ValueError("a command handler that raises")

    monkeypatch.setattr(bot.slack.socket_envelopes, "run_async_bolt_app", raising)
    db = tmp_path / "ns.db"
    shutil.copy2(migrated, db)
    app = await socket_app(app_factory, fake_slack, db, ManualClock(T0))
    [transport] = [c for c in app.ns.components if isinstance(c, SocketModeTransport)]
    received = transport._received
    assert received is not None
    other = connect(app.ns.settings.db)
    try:
        begin_immediate(other)  # the record misses its 1 s wait
        envelope = await fake_slack.send_envelope("slash_commands", command_payload("help"))
        assert await fake_slack.envelope_reply(envelope) == {"envelope_id": envelope}
    finally:
        other.execute("ROLLBACK")
        other.close()
    key = f"envelope:{envelope}"
    for _ in range(250):  # the lock gone, the record lands and gets its (empty) answer
        rows = await app.store.fetch("SELECT answer FROM slack_received WHERE key = ?", (key,))
        if rows and rows[0][0] is not None:
            break
        await asyncio.sleep(0.02)
    assert [tuple(r) for r in rows] == [("null",)]
    assert key not in received._late  # let go of, not kept for the process's life
    # a command that raises with its record on time is answered (empty) too
    envelope = await fake_slack.send_envelope("slash_commands", command_payload("help"))
    assert await fake_slack.envelope_reply(envelope) == {"envelope_id": envelope}
    key = f"envelope:{envelope}"
    for _ in range(250):
        rows = await app.store.fetch("SELECT answer FROM slack_received WHERE key = ?", (key,))
        if rows and rows[0][0] is not None:
            break
        await asyncio.sleep(0.02)
    assert [tuple(r) for r in rows] == [("null",)]
    assert received._late == {}
