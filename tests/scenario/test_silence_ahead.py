"""Silences booked ahead, with a reason: ``silence acme 1h from 22:00 -- deploy``
(audit27 parity #11).

The real app in Slack HTTP mode against the fake Slack Web API, signed slash commands,
a ManualClock (starts Thu 01 Jan 2026, 00:00 UTC: 01:00 in Berlin); alert timers run
when the test ticks.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from guards.events import BreakerOpened
from tests.scenario.test_alerts import ALERTS, BOT, POLICY, alerts_of, dms, emit, used

BERLIN = {**POLICY, "timezone": "Europe/Berlin"}
T0 = 1_767_225_600.0  # Thu 01 Jan 2026 01:00 in Berlin
HOUR = 3600
AT_22 = T0 + 21 * HOUR  # 22:00 in Berlin
OTHER = "acme/alice/other-bot"


async def trip(app: Any, scope: str = BOT) -> None:
    await emit(app, BreakerOpened(at=app.clock.now(), scope=scope, trip="spend", reason="r"))


async def silences(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch(
        "SELECT scope, starts_at, expires_at, reason, ended_at, started_at FROM silences"
        " ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def held(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch("SELECT id, silence_id, was_silenced FROM alerts ORDER BY id")
    return [tuple(r) for r in rows]


async def book(slack: Any) -> None:
    await used(slack.app)
    reply = await slack.command("silence acme 1h from 22:00 -- deploy 4.2", user="U01")
    assert reply["response_type"] == "in_channel"
    assert reply["text"] == (
        "🔕 <@U01> booked a silence of acme and below from 22:00 today until 23:00"
        " (Europe/Berlin) — deploy 4.2."
    )


async def test_a_booked_silence_holds_from_its_start_to_its_end(slack_http):
    slack = await slack_http(BERLIN, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await book(slack)
    assert await silences(app) == [("acme", AT_22, AT_22 + HOUR, "deploy 4.2", None, None)]

    listing = (await slack.command("alerts"))["text"]
    assert "Booked: 🔕 acme and below from 22:00 today until 23:00 (by <@U01>) — deploy 4.2" in (
        listing
    )
    [(actor, target, after, detail)] = [
        tuple(r)
        for r in await app.store.fetch(
            "SELECT actor, target, after, detail FROM audit WHERE action = 'alert.silence'"
        )
    ]
    assert (actor, target, after) == ("U01", "acme and below", "2026-01-01T23:00:00+01:00")
    assert detail == "from 2026-01-01T22:00:00+01:00 — deploy 4.2"

    app.clock.set(AT_22 - 60)  # 21:59: nothing held yet, it pages
    await trip(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))
    assert await held(app) == [(1, None, 0)]

    app.clock.set(AT_22 + 30)  # 22:00:30, after a tick: the open alert is silenced
    await alerts_of(slack).tick()
    [(_, silence_id, was)] = await held(app)
    assert silence_id == 1 and was == 1

    def updates() -> list[str]:
        return [
            str(c.args) for c in fake.calls_of("chat.update") if "🔕 silenced by" in str(c.args)
        ]

    await fake.wait_for(updates)
    assert "🔕 silenced by <@U01> at 22:00 until 23:00" in updates()[-1]  # not at 01:00
    assert "Booked:" not in (await slack.command("alerts"))["text"]
    assert (
        "🔕 acme and below until 23:00 (by <@U01>) — deploy 4.2"
        in (await slack.command("alerts"))["text"]
    )
    await trip(app)  # firings now: recorded, not paged
    await trip(app, OTHER)
    await alerts_of(slack).process()
    await alerts_of(slack).tick()
    app.clock.advance(10 * 60)
    await alerts_of(slack).tick()
    assert len(dms(fake, "U01")) == 1 and dms(fake, "U04") == []
    assert [(a, s) for a, s, _ in await held(app)] == [(1, 1), (2, 1)]

    story = (await slack.command("alert 1"))["text"]
    assert "🔕 silenced by <@U01> until 23:00 (on `acme`; booked at 01:00) — deploy 4.2" in story

    app.clock.set(AT_22 + HOUR)  # 23:00: it ran out, both page
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: len(dms(fake, "U01")) == 3)


async def test_a_booked_silence_starts_after_a_restart(slack_http, tmp_path):
    db = tmp_path / "ahead.db"
    clock = ManualClock()
    first = await slack_http(BERLIN, clock=clock, db=db)
    fake = first.fake
    await book(first)
    clock.set(AT_22 - 60)
    await trip(first.app)
    await alerts_of(first).process()
    await fake.wait_for(lambda: dms(fake, "U01"))
    await first.app.ns.stop()

    clock.set(AT_22 + 30)  # it starts while nothing runs
    second = await slack_http(BERLIN, clock=clock, db=db)
    await alerts_of(second).tick()
    assert [(a, s) for a, s, _ in await held(second.app)] == [(1, 1)]
    [(*_, started_at)] = await silences(second.app)
    assert started_at is not None
    clock.advance(10 * 60)
    await alerts_of(second).tick()
    [(*_, again)] = await silences(second.app)
    assert again == started_at  # started once
    assert len(dms(fake, "U01")) == 1 and dms(fake, "U04") == []


async def test_off_cancels_a_booked_silence_before_its_start(slack_http):
    slack = await slack_http(BERLIN, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await book(slack)
    app.clock.advance(HOUR)  # 02:00
    reply = await slack.command("silence acme off", user="U02")
    assert reply["response_type"] == "in_channel"
    assert reply["text"] == (
        "🔔 <@U02> cancelled the silence on acme booked from 22:00 today until 23:00"
        " (by <@U01>) before its start."
    )
    [(_, _, _, _, ended_at, _)] = await silences(app)
    assert ended_at == app.clock.now()
    audit = await app.store.fetch("SELECT actor, detail FROM audit WHERE action = 'silence.lift'")
    assert [tuple(r) for r in audit] == [("U02", "booked silence 1 set by U01, cancelled")]
    assert "Booked" not in (await slack.command("alerts"))["text"]

    app.clock.set(AT_22 + 30)
    await alerts_of(slack).tick()
    await trip(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: dms(fake, "U01"))
    assert await held(app) == [(1, None, 0)]


async def test_a_start_within_the_last_minute_silences_now(slack_http):
    slack = await slack_http(BERLIN, clock=ManualClock())
    await used(slack.app)
    slack.app.clock.set(AT_22 + 30)
    reply = await slack.command("silence acme 1h from 22:00 — deploy", user="U01")
    assert reply["text"] == (  # and says so (review25 L5)
        "`from 22:00` is now (it was 30 s ago).\n"
        "🔕 <@U01> silenced acme and below for 1h (until 23:00) — deploy."
        " Firings are still recorded."
    )
    [(_, starts_at, *_)] = await silences(slack.app)
    assert starts_at is None


async def test_refusals_write_nothing(slack_http):
    slack = await slack_http(BERLIN, clock=ManualClock())
    await used(slack.app)
    said = {
        "silence acme 1h from 2025-12-31 09:00": "`2025-12-31 09:00` is past: a silence starts"
        " later than now; write `from 09:00`",
        "silence acme 1h from 2026-02-15 09:00": "a silence starts at most 30 days ahead",
        "silence acme 1h from 25:00": "`25:00` is not a time",
        "silence acme 1h from": "`from` needs a start",
        "silence acme 1h -- " + "x" * 201: "a reason is at most 200 characters (201 given)",
        "silence acme 1h --": "`--` needs a reason after it",
        "silence acme off -- done": "`off` takes no start nor reason",
    }
    for command, words in said.items():
        text = (await slack.command(command, user="U01"))["text"]
        assert words in text, (command, text)
        if command != "silence acme 1h from":
            assert "Nothing was booked" in text or "Nothing changed" in text, text
    assert await silences(slack.app) == []
    assert (await slack.app.store.fetch("SELECT 1 FROM audit WHERE action = 'alert.silence'")) == []


async def test_a_hostile_reason_is_shown_escaped(slack_http):
    slack = await slack_http(BERLIN, clock=ManualClock())
    await used(slack.app)
    reply = await slack.command("silence acme 1h -- <!channel> *now*", user="U01")
    assert reply["text"].endswith("— &lt;!channel&gt; *now*. Firings are still recorded.")
    assert "&lt;!channel&gt;" in (await slack.command("alerts"))["text"]


async def test_a_booked_silence_keeps_its_hour_when_the_clock_steps(slack_http):
    slack = await slack_http(BERLIN, clock=ManualClock())
    app = slack.app
    mono = [1000.0]
    app.ns.clock_watch.read_from(app.clock.now, lambda: mono[0])
    await book(slack)
    app.clock.advance(-HOUR)  # the wall clock alone steps back an hour (NTP, a VM resumed)
    await alerts_of(slack).tick()  # a write batch: the stored times move with the step
    [(_, starts_at, expires_at, _, _, _)] = await silences(app)
    assert (starts_at, expires_at) == (AT_22 - HOUR, AT_22)  # still an hour long, in real time
