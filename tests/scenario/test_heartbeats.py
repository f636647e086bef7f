"""Heartbeats through HTTP: recorded, watched, alerted when missed, resolved when back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from bot.alerts import operations as ops
from bot.alerts.heartbeats import heartbeat_uptime
from guards.clock import ManualClock
from guards.errors import StorageUnavailable
from guards.migrations import begin_immediate, connect

BOT = "acme/alice/rss-bot"
ALERTS = "C0ALERTS"
POLICY = {
    "channels": {"alerts": ALERTS},
    "heartbeats": {"timeout_seconds": "60s", "misses_before_alert": 2},
    "oncall": {"rotations": [{"name": "ops", "users": ["U01"]}]},
}


async def beat(app: Any, scope: str = BOT, token: str | None = None, **body: Any) -> httpx.Response:
    tok = token or await app.token("acme/alice")
    r: httpx.Response = await app.request(
        "POST", "/v1/heartbeats", token=tok, json={"scope": scope, **body}
    )
    return r


async def test_heartbeat_is_recorded_and_answers_204(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    r = await beat(app, status="ok", detail="polling 3 feeds")
    assert r.status_code == 204 and r.content == b""
    app.clock.advance(10)
    assert (await beat(app, scope=f"{BOT}/c42")).status_code == 204  # counts for the agent
    row = (await app.store.fetch("SELECT scope, last_seen, status, beats FROM heartbeats"))[0]
    assert tuple(row) == (BOT, app.clock.now(), None, 2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "scope"),
        ({"scope": "acme"}, "scope"),
        ({"scope": "acme/alice/bot/c1/x"}, "scope"),
        ({"scope": BOT, "status": "not a word!"}, "status"),
        ({"scope": BOT, "detail": "x" * 2001}, "detail"),
        ({"scope": BOT, "extra": 1}, "extra"),
    ],
)
async def test_bad_heartbeats_are_400_naming_the_field(app_factory, body, field):
    app = await app_factory(POLICY, clock=ManualClock())
    tok = await app.token("acme")
    r = await app.request("POST", "/v1/heartbeats", token=tok, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert await app.store.fetch("SELECT * FROM heartbeats") == []


async def test_heartbeats_need_a_token_for_the_scope(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    r = await app.request("POST", "/v1/heartbeats", json={"scope": BOT})
    assert r.status_code == 401
    other = await app.token("acme/bob")
    r = await beat(app, token=other)
    assert r.status_code == 403
    assert await app.store.fetch("SELECT * FROM heartbeats") == []


async def test_missed_heartbeat_alerts_and_resolves_when_it_is_back(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    alerts = app.ns.extras["alerts"]
    start = app.clock.now()
    assert (await beat(app)).status_code == 204
    app.clock.advance(119)  # 2 × 60 s not yet passed
    await alerts.tick()
    assert await app.store.fetch("SELECT * FROM alerts") == []
    status = (await slack.command("status"))["text"]
    assert BOT in status and "♥ 1m 59s ago" in status and "⚠️ late" in status

    app.clock.advance(1)
    await alerts.tick()
    await fake.wait_for(lambda: fake.posts(ALERTS) and fake.posts("U01"))
    post = fake.posts(ALERTS)[0]
    assert "Heartbeat missed" in post.args["text"] and "(2 missed)" in post.args["text"]
    app.clock.advance(60)
    await alerts.tick()  # still missing: no second alert
    assert len(fake.posts(ALERTS)) == 1
    assert "💔 heartbeat missed" in (await slack.command("status"))["text"]

    assert (await beat(app, status="ok")).status_code == 204
    await alerts.process()
    key = (ALERTS, post.response["ts"])
    await fake.wait_for(lambda: "resolved" in json.dumps(fake.messages[key]))
    assert "heartbeat is back" in fake.messages[key]["text"]
    assert len(fake.posts(ALERTS)) == 1

    # down from when the first beat was overdue (60 s) until it came back (180 s)
    uptime = await heartbeat_uptime(app.store, since=start, until=start + 240)
    assert uptime == {BOT: pytest.approx(1 - 120 / 240)}


async def test_a_stopped_agent_is_not_watched(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    await beat(app, status="stopped")
    for status in ("Stopped", "SHUTDOWN", "shutting_down", "Shutting-Down", "paused", "stopping"):
        assert (await beat(app, scope=f"acme/alice/{status}", status=status)).status_code == 204
    await beat(app, scope="acme/alice/busy", status="Working")
    app.clock.advance(3600)
    await app.ns.extras["alerts"].tick()
    rows = await app.store.fetch("SELECT scope FROM alerts")
    assert [r[0] for r in rows] == ["acme/alice/busy"]  # only the one that did not say goodbye


async def test_a_status_sentence_is_refused_with_what_to_send_instead(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    r = await beat(app, status="shutting down")
    assert r.status_code == 400
    assert r.json()["field"] == "status"
    assert "put sentences in detail" in r.json()["message"]
    assert "pattern" not in r.json()["message"]


async def test_beats_lost_while_nightshift_was_down_are_not_missed(app_factory, tmp_path):
    db = tmp_path / "hb.db"
    first = await app_factory(POLICY, clock=ManualClock(), db=db)
    assert (await beat(first)).status_code == 204
    start = first.clock.now()
    await first.ns.stop()
    # down for 10 minutes: the agent kept beating into a closed port
    second = await app_factory(POLICY, clock=ManualClock(start + 600), db=db)
    alerts = second.ns.extras["alerts"]
    await alerts.tick()
    assert await second.store.fetch("SELECT * FROM alerts") == []  # no page for our downtime
    second.clock.advance(119)
    await alerts.tick()
    assert await second.store.fetch("SELECT * FROM alerts") == []
    second.clock.advance(1)  # a whole window (2 × 60s) since the restart, still silent
    await alerts.tick()
    rows = await second.store.fetch("SELECT kind, scope FROM alerts")
    assert [tuple(r) for r in rows] == [("heartbeat_missed", BOT)]


async def test_a_crash_loop_does_not_hide_a_dead_agent(app_factory, tmp_path):
    """audit14 crash 2: each start forgave a whole detection window, so a process that
    restarted more often than that never paged for an agent that had died. Now only the
    downtime itself is forgiven."""
    db = tmp_path / "loop.db"
    clock = ManualClock()
    app = await app_factory(POLICY, clock=clock, db=db)
    assert (await beat(app)).status_code == 204
    start = clock.now()
    for _ in range(5):  # up 29 s, down 1 s, five times: 5 s of downtime in 150 s
        clock.advance(29)
        await app.ns.extras["alerts"].tick()
        await app.ns.stop()
        clock.advance(1)
        app = await app_factory(POLICY, clock=clock, db=db)
        await app.ns.extras["alerts"].tick()
    assert clock.now() - start == 150  # 145 s of it up: more than the 2 × 60 s window
    rows = await app.store.fetch("SELECT kind, scope, facts FROM alerts")
    assert [(r["kind"], r["scope"]) for r in rows] == [("heartbeat_missed", BOT)]
    assert json.loads(rows[0]["facts"])["misses"] == 2
    downtimes = await app.store.fetch("SELECT down_until - down_from FROM watchdog_downtime")
    assert [round(r[0]) for r in downtimes] == [1, 1, 1, 1, 1]


async def test_silence_before_a_restart_counts_and_the_downtime_does_not(app_factory, tmp_path):
    db = tmp_path / "gap.db"
    clock = ManualClock()
    first = await app_factory(POLICY, clock=clock, db=db)
    assert (await beat(first)).status_code == 204
    clock.advance(100)  # silent for 100 s while Nightshift was up
    await first.ns.extras["alerts"].tick()
    await first.ns.stop()
    clock.advance(300)  # down for 5 minutes
    second = await app_factory(POLICY, clock=clock, db=db)
    alerts = second.ns.extras["alerts"]
    await alerts.tick()
    assert await second.store.fetch("SELECT * FROM alerts") == []  # 100 s up: not yet
    clock.advance(19)
    await alerts.tick()
    assert await second.store.fetch("SELECT * FROM alerts") == []  # 119 s
    clock.advance(1)
    await alerts.tick()  # 120 s of silence while up: missed, 20 s after the restart
    rows = await second.store.fetch("SELECT kind FROM alerts")
    assert [r[0] for r in rows] == ["heartbeat_missed"]


async def test_a_step_forward_of_the_wall_clock_is_nobodys_silence(app_factory):
    """audit17 time H3: NTP putting a slow clock right (or a VM resumed) by an hour paged
    every agent that had beaten seconds before: "Heartbeat missed (12 missed)"."""
    app = await app_factory(POLICY, clock=ManualClock())
    alerts = app.ns.extras["alerts"]
    watch = app.ns.clock_watch  # read from the test's clocks instead of the machine's
    mono = [1000.0]
    watch.read_from(app.clock.now, lambda: mono[0])
    assert (await beat(app)).status_code == 204
    app.clock.advance(3600)  # the step: an hour on the wall, two seconds lived
    mono[0] += 2
    await alerts.tick()
    assert await app.store.fetch("SELECT * FROM alerts") == []
    app.clock.advance(117)  # then the agent really goes quiet: 2 + 117 s, not yet 2 × 60
    mono[0] += 117
    await alerts.tick()
    assert await app.store.fetch("SELECT * FROM alerts") == []
    app.clock.advance(3)
    mono[0] += 3
    await alerts.tick()
    [row] = await app.store.fetch("SELECT kind, scope, facts FROM alerts")
    assert tuple(row)[:2] == ("heartbeat_missed", BOT)
    # and the page says when it last beat in the clock it reads now: 122 s ago, not the
    # hour of the step too (recheck18 N1)
    assert json.loads(row[2])["last_seen"] == app.clock.now() - 122


async def test_a_missed_heartbeat_resolved_while_still_silent_alerts_again(slack_http):
    """audit21 oncall 1 (H): Resolve on a dead agent's alert ("I restarted it", but the
    restart failed) closed it for good: the watchdog never alerted again, nobody was paged,
    until the agent beat and stopped once more."""
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    alerts = app.ns.extras["alerts"]
    start = app.clock.now()
    await beat(app)
    app.clock.advance(120)
    await alerts.tick()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    post = fake.posts(ALERTS)[0]
    r = await slack.click(
        action_id="alert_resolve",
        value="1",
        user_id="U01",
        channel=ALERTS,
        ts=post.response["ts"],
        blocks=post.args["blocks"],
        response_url=fake.response_url("U01"),
    )
    assert r.status_code == 200
    await fake.wait_for(lambda: fake.responses["U01"])
    said = fake.responses["U01"][0]["text"]
    assert said.startswith("✅ #1 resolved by <@U01> at ")
    assert said.endswith(
        f"⚠️ `{BOT}` is still silent: it alerts again if no heartbeat comes within 2m"
        " (retired? its last heartbeat should say `status: stopped`; or `/agent silence"
        f" heartbeat_missed:{BOT} 30d`)."
    ), said
    app.clock.advance(119)  # a whole window after the resolve, not after its last beat
    await alerts.tick()
    assert [tuple(r) for r in await app.store.fetch("SELECT id, resolved_at FROM alerts")] == [
        (1, start + 120)
    ]
    app.clock.advance(1)
    await alerts.tick()
    rows = await app.store.fetch("SELECT id, kind, resolved_at FROM alerts ORDER BY id")
    assert [tuple(r) for r in rows] == [
        (1, "heartbeat_missed", start + 120),
        (2, "heartbeat_missed", None),
    ]
    await fake.wait_for(lambda: len(fake.posts("U01")) == 2 and len(fake.posts(ALERTS)) == 2)
    assert "(4 missed)" in fake.posts(ALERTS)[-1].args["text"]  # since its last beat
    # it comes back: the new alert resolves, and its downtime is one gap, not two
    await beat(app)
    await alerts.process()
    rows = await app.store.fetch("SELECT resolved_at FROM alerts WHERE id = 2")
    assert rows[0][0] == start + 240
    uptime = await heartbeat_uptime(app.store, since=start, until=start + 240)
    assert uptime == {BOT: pytest.approx(60 / 240)}


async def test_a_beat_between_a_resolve_and_the_next_window_ends_the_downtime(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    alerts, start = app.ns.extras["alerts"], app.clock.now()
    await beat(app)
    app.clock.advance(120)
    await alerts.tick()
    engine = alerts.engine
    await app.store.write(lambda tx: ops.resolve(engine, tx, alert_id=1, actor="U01"))
    app.clock.advance(30)
    await beat(app)  # back before the window ran out: nothing more to say
    await alerts.process()
    app.clock.advance(90)
    await alerts.tick()
    assert len(await app.store.fetch("SELECT * FROM alerts")) == 1
    uptime = await heartbeat_uptime(app.store, since=start, until=start + 240)
    assert uptime == {BOT: pytest.approx(1 - 90 / 240)}  # down 60 s .. 150 s


async def test_an_agent_resolved_by_hand_before_the_upgrade_is_watched_again(app_factory, tmp_path):
    """review22 M4: the agents already in the state audit21 oncall 1 found (missed, their
    alert resolved by hand, so never watched again) stayed so after the upgrade."""
    db, clock = tmp_path / "hb.db", ManualClock()
    first = await app_factory(POLICY, clock=clock, db=db)
    await beat(first)
    clock.advance(120)
    await first.ns.extras["alerts"].tick()
    engine = first.ns.extras["alerts"].engine
    await first.store.write(lambda tx: ops.resolve(engine, tx, alert_id=1, actor="U01"))
    await first.store.write(  # as the code before re-arming left it
        lambda tx: tx.execute("UPDATE heartbeats SET rearmed_at = NULL, missed_at = ?", (1.0,))
    )
    await first.ns.stop()
    second = await app_factory(POLICY, clock=clock, db=db)
    clock.advance(120)
    await second.ns.extras["alerts"].tick()
    rows = await second.store.fetch("SELECT id, resolved_at FROM alerts ORDER BY id")
    assert [r[1] is None for r in rows] == [False, True]  # alerted again


async def test_beats_refused_by_a_full_disk_or_a_lock_are_not_an_agents_silence(
    app_factory, monkeypatch
):
    """audit24 resources H1: when writes came back after a full disk, every agent whose
    last accepted beat was older than the detection window was paged as silent, though
    each kept beating (its beats answered 503). The time the database refused writes is a
    downtime, as a stopped process's is; an agent silent after it is still missed, once
    its silence outside that time makes a whole window (2 x 60 s here)."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    app = await app_factory(POLICY, clock=ManualClock())
    alerts = app.ns.extras["alerts"]
    assert (await beat(app)).status_code == 204
    app.clock.advance(30)
    assert (await beat(app)).status_code == 204  # the last beat written
    other = connect(app.ns.settings.db)
    begin_immediate(other)  # writes refused: a sqlite3 shell in a transaction, a full disk
    try:
        for _ in range(6):  # 3 minutes of refused writes, a beat every 30 s all along
            app.clock.advance(30)
            assert (await beat(app)).status_code == 503
            with pytest.raises(StorageUnavailable):
                await alerts.tick()
    finally:
        other.execute("ROLLBACK")
        other.close()
    app.clock.advance(2)
    await alerts.tick()  # the batch that ends the outage: its watchdog pages nobody
    assert await app.store.fetch("SELECT kind FROM alerts") == []

    # The agent stops for real now. It was silent 30 s before the first refusal (the test's
    # beats are 30 s apart); the refusals end with the tick above: 90 s more make 120 s.
    app.clock.advance(89)
    await alerts.tick()
    assert await app.store.fetch("SELECT kind FROM alerts") == []
    app.clock.advance(1)  # 30 + 90 = 120
    await alerts.tick()
    await alerts.process()
    kinds = [r[0] for r in await app.store.fetch("SELECT kind FROM alerts")]
    assert kinds == ["heartbeat_missed"]
    spans = await app.store.fetch("SELECT down_from, down_until FROM watchdog_downtime")
    assert len(spans) == 1  # told once, however many ticks saw it


async def test_an_outage_ended_by_the_write_just_before_the_tick_is_still_a_downtime(
    app_factory, monkeypatch
):
    """review25 H1: the ended outages were read when the tick was queued; a write ahead of
    it in the queue ended the outage, the tick saw neither it ended nor going on, and its
    watchdog paged the whole outage as the agent's silence."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    app = await app_factory(POLICY, clock=ManualClock())
    alerts = app.ns.extras["alerts"]
    assert (await beat(app)).status_code == 204
    other = connect(app.ns.settings.db)
    begin_immediate(other)
    try:
        for _ in range(6):
            app.clock.advance(30)
            assert (await beat(app)).status_code == 503
    finally:
        other.execute("ROLLBACK")
        other.close()
    app.clock.advance(2)

    def write(tx: Any) -> None:  # any write, queued just before the tick: it ends the outage
        tx.execute("UPDATE watchdog_alive SET alive_at = alive_at")

    ahead = asyncio.ensure_future(app.store.write(write))
    await asyncio.sleep(0)
    tick = asyncio.ensure_future(alerts.tick())
    await ahead
    await tick
    await alerts.process()
    assert await app.store.fetch("SELECT kind FROM alerts") == []


async def _outage(app: Any, alerts: Any, *, steps: list[tuple[float, float]]) -> None:
    """Writes refused while the clocks move by each (wall, lived) step, a beat each time."""
    other = connect(app.ns.settings.db)
    begin_immediate(other)
    try:
        for wall, lived in steps:
            app.clock.advance(wall)
            app.mono[0] += lived
            assert (await beat(app)).status_code == 503
            with pytest.raises(StorageUnavailable):
                await alerts.tick()
    finally:
        other.execute("ROLLBACK")
        other.close()


async def _watched(app_factory: Any, monkeypatch: Any) -> tuple[Any, Any]:
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    app = await app_factory(POLICY, clock=ManualClock())
    app.mono = [1000.0]
    app.ns.clock_watch.read_from(app.clock.now, lambda: app.mono[0])
    return app, app.ns.extras["alerts"]


async def _lives(app: Any, seconds: float) -> None:
    app.clock.advance(seconds)
    app.mono[0] += seconds


async def test_an_outage_the_clock_stepped_back_in_is_still_a_downtime(app_factory, monkeypatch):
    """review25 M2: the outage's times stayed in the old frame after a step back: the span
    ended "before" the last one told, or began after it ended, and was never forgiven."""
    app, alerts = await _watched(app_factory, monkeypatch)
    assert (await beat(app)).status_code == 204
    # 3 minutes of refused writes, the wall clock put back an hour in the middle
    await _outage(app, alerts, steps=[(30, 30), (30, 30), (-3600 + 30, 30), (30, 30), (30, 30)])
    await _lives(app, 2)
    await alerts.tick()  # the batch that ends it: nobody was silent
    await alerts.tick()
    await alerts.process()
    assert await app.store.fetch("SELECT kind FROM alerts") == []
    # the agent stops for real now: silent 30 s before the first refusal, 90 s more make
    # its two windows (120 s), not sooner
    await _lives(app, 89)
    await alerts.tick()
    assert await app.store.fetch("SELECT kind FROM alerts") == []
    await _lives(app, 1)
    await alerts.tick()
    await alerts.process()
    assert [r[0] for r in await app.store.fetch("SELECT kind FROM alerts")] == ["heartbeat_missed"]


async def test_a_step_forward_in_an_outage_forgives_no_silence_before_it(app_factory, monkeypatch):
    """review25 M2: a step forward during an outage stretched its span back by the step,
    over the agent's real silence before it: that silence was never paged."""
    app, alerts = await _watched(app_factory, monkeypatch)
    assert (await beat(app)).status_code == 204
    await _lives(app, 100)  # silent 100 s of its 120 s window, then the writes are refused
    await alerts.tick()
    await _outage(app, alerts, steps=[(1, 1), (3600 + 30, 30), (30, 30)])
    await _lives(app, 2)
    await alerts.tick()  # the outage ends here: 100 s of silence before it, 2 s after
    await alerts.process()
    assert await app.store.fetch("SELECT kind FROM alerts") == []
    await _lives(app, 19)  # 100 + 21 > 120: missed
    await alerts.tick()
    await alerts.process()
    assert [r[0] for r in await app.store.fetch("SELECT kind FROM alerts")] == ["heartbeat_missed"]


async def test_a_write_probe_before_the_start_has_served_writes_nothing(app_factory):
    """review27 M2: a SIGHUP's probe during a start wrote the process's alive mark before
    the watchdog had read the last run's, and the downtime since then was lost."""
    app = await app_factory(POLICY, clock=ManualClock())
    before = await app.store.fetch("SELECT * FROM watchdog_alive")
    app.ns.store.serving = False  # as between the store's opening and the end of the start
    app.clock.advance(600)
    assert await app.ns.write_probe(1.0) is None
    assert [tuple(r) for r in await app.store.fetch("SELECT * FROM watchdog_alive")] == [
        tuple(r) for r in before
    ]
    app.ns.store.serving = True
    assert await app.ns.write_probe(1.0) is None  # a running server's probe writes it
    after = await app.store.fetch("SELECT * FROM watchdog_alive")
    assert [tuple(r) for r in after] != [tuple(r) for r in before]
