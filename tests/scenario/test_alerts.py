"""Alerts end to end: the real app in Slack HTTP mode against the fake Slack Web API.

Time is a ManualClock; the alert timers run when the test calls ``tick()`` (the
scheduler's own tick on the wall clock is harmless: it reads the same manual time).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from guards.clock import ManualClock
from guards.events import BreakerClosed, BreakerOpened, Event, RunawayDetected
from guards.store import Tx
from tests.fakes.slack_api import Call, FakeSlack
from tests.fakes.slack_signing import block_actions_body

BOT = "acme/alice/rss-bot"
ALERTS = "C0ALERTS"
ADMIN = "U0ADMIN"
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "channels": {"alerts": ALERTS},
    "budgets": {"defaults": {"agent": {"day": "100.00"}}},
    "breakers": {"spend_rate": {"max": "2.00", "per_seconds": "10m"}},
    "alerts": {"update_interval_seconds": "30s", "repeat_escalation": 0},
    "oncall": {
        "rotations": [
            {"name": "primary", "users": ["U01", "U02"], "start": "2025-12-29"},
            {"name": "secondary", "users": ["U04"], "start": "2025-12-29"},
        ],
        "escalation": [
            {"notify": "rotation:primary", "after": "0m"},
            {"notify": "rotation:secondary", "after": "5m"},
            {"notify": "channel", "after": "15m"},
        ],
    },
}


def alerts_of(slack: Any) -> Any:
    return slack.app.ns.extras["alerts"]


async def emit(app: Any, *events: Event) -> None:
    def write(tx: Tx) -> None:
        for e in events:
            tx.emit(e)

    await app.store.write(write)


async def overspend(app: Any, key: str = "k1") -> None:
    """An agent spends $2.50 in one call: its spend-rate breaker trips (a P0)."""
    tok = await app.token(BOT)
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={"scope": BOT, "idempotency_key": key, "max_cost_micros": 3_000_000},
    )
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    s = await app.request(
        "POST",
        f"/v1/reservations/{rid}/settle",
        token=tok,
        json={"actual_cost_micros": 2_500_000, "outcome": "success"},
    )
    assert s.status_code == 200, s.text


async def waiting_for_a_trial(app: Any) -> None:
    """BOT's spend breaker trips ($2.50 in one call: the policy's spend rate must allow
    less; the app on a ManualClock) and its cool-down ends: a trial waits for a human."""
    await overspend(app, key="trip")
    app.clock.advance(app.ns.policy.breakers.cooldown_seconds + 1)
    await app.ns.breakers.sweep(app.store)
    row = await app.store.write(lambda tx: app.ns.breakers.get(tx, BOT))
    assert row.state == "half_open_pending", row.state


async def used(app: Any, scope: str = BOT) -> None:
    """An agent reserves and releases under ``scope``: Nightshift has seen it there (a
    silence on a scope nothing has used is refused)."""
    tok = await app.token(scope)
    body = {"scope": scope, "idempotency_key": f"seen:{scope}", "max_cost_micros": 1}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    released = await app.request("POST", f"/v1/reservations/{rid}/release", token=tok)
    assert released.status_code == 200, released.text


def dms(fake: FakeSlack, user: str) -> list[Call]:
    return fake.posts(user)


def channel_message(fake: FakeSlack, ts_index: int = 0) -> dict[str, Any]:
    """The current content of the n-th message posted in the alerts channel."""
    posts = [c for c in fake.posts(ALERTS) if not c.args.get("thread_ts")]
    key = (ALERTS, posts[ts_index].response["ts"])
    return fake.messages[key]


async def test_p0_dms_the_primary_escalates_to_the_secondary_then_the_channel(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await overspend(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))
    post = fake.posts(ALERTS)[0]
    assert post.args["text"].startswith("<@U01> 🔴 P0 · Breaker opened on spend rate")
    assert BOT in post.args["text"]
    assert "You are paged (primary" in dms(fake, "U01")[0].args["text"]
    assert dms(fake, "U04") == []

    app.clock.advance(5 * 60)
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))
    assert "secondary, step 2 of 3" in dms(fake, "U04")[0].args["text"]

    app.clock.advance(10 * 60)
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: any(c.args.get("thread_ts") for c in fake.posts(ALERTS)))
    nudge = next(c for c in fake.posts(ALERTS) if c.args.get("thread_ts"))
    assert nudge.args["thread_ts"] == post.response["ts"] and "<!channel>" in nudge.args["text"]
    # the message shows whom it paged
    await fake.wait_for(lambda: "paged:" in json.dumps(channel_message(fake)["blocks"]))


async def test_a_person_on_call_at_two_steps_in_a_row_is_not_paged_twice(slack_http):
    """audit21 oncall 2: U01 on call for primary and secondary (a cover) was paged at step
    1 and again at step 2; nobody else was tried before the channel."""
    policy = {**POLICY, "oncall": {**POLICY["oncall"]}}
    policy["oncall"]["rotations"] = [
        POLICY["oncall"]["rotations"][0],
        {"name": "secondary", "users": ["U01"], "start": "2025-12-29"},
    ]
    slack = await slack_http(policy, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await overspend(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))
    app.clock.advance(5 * 60)
    await alerts_of(slack).tick()  # step 2 passes over U01, and the channel is told at once

    def replies() -> list[str]:
        return [str(c.args["text"]) for c in fake.posts(ALERTS) if c.args.get("thread_ts")]

    await fake.wait_for(lambda: len(replies()) == 2)
    assert replies()[0] == (
        "⚠️ Step 2 of 3 pages nobody: <@U01> was paged at the step before and is not paged"
        " twice in a row (`/agent oncall` shows who is on call)."
    )
    assert "<!channel>" in replies()[1]
    assert len(dms(fake, "U01")) == 1
    rows = await app.store.fetch("SELECT step, target FROM escalations ORDER BY id")
    assert [tuple(r) for r in rows] == [(0, "U01"), (1, None), (2, None)]
    # the message says whom each step paged: the step that passed over U01 paged nobody
    app.clock.advance(31)  # past update_interval: the message is drawn again
    await alerts_of(slack).tick()

    def shown() -> str:
        return json.dumps(channel_message(fake)["blocks"], ensure_ascii=False)

    await fake.wait_for(lambda: "the channel 00:05" in shown())
    assert "paged: <@U01> 00:00 · nobody 00:05 · the channel 00:05" in shown(), shown()
    # and that nobody will be paged again (audit21 oncall 4: it looked like U01 owned it)
    assert (
        "⚠️ unacknowledged; its escalation chain ran out at 00:05: nobody is paged again"
        " (`/agent ack 1` takes it)"
    ) in shown()
    assert "<@U01> *acme" not in shown()  # nor does it look owned by the last one paged
    listed = (await slack.command("alerts"))["text"]
    assert "`#1` Breaker opened on spend rate" in listed, listed
    assert "⚠️ chain ran out: nobody is paged again" in listed, listed


async def test_a_person_on_call_at_three_steps_is_paged_once_in_the_round(slack_http):
    """review22 L3: a step that paged nobody between two that name the same person let
    the third page them again."""
    policy = {**POLICY, "oncall": {**POLICY["oncall"]}}
    policy["oncall"]["rotations"] = [
        POLICY["oncall"]["rotations"][0],
        {"name": "secondary", "users": ["U01"], "start": "2025-12-29"},
    ]
    policy["oncall"]["escalation"] = [
        {"notify": "rotation:primary", "after": "0m"},
        {"notify": "rotation:secondary", "after": "5m"},
        {"notify": "user:U01", "after": "10m"},
        {"notify": "channel", "after": "15m"},
    ]
    slack = await slack_http(policy, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await overspend(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: dms(fake, "U01"))
    app.clock.advance(5 * 60)
    await alerts_of(slack).tick()
    await alerts_of(slack).tick()
    rows = await app.store.fetch("SELECT step, target FROM escalations ORDER BY id")
    assert [tuple(r) for r in rows] == [(0, "U01"), (1, None), (2, None), (3, None)]
    await slack.outbox.drain(1.0)
    assert len(dms(fake, "U01")) == 1


async def test_acknowledge_button_stops_the_chain_and_records_mtta(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await overspend(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))
    post = fake.posts(ALERTS)[0]
    app.clock.advance(170)
    r = await slack.post(
        block_actions_body(
            action_id="alert_ack",
            value="1",
            user_id="U01",  # on call, not an admin
            channel=ALERTS,
            ts=post.response["ts"],
            blocks=post.args["blocks"],
            block_id="alert:1",
        )
    )
    assert r.status_code == 200
    await fake.wait_for(
        lambda: "acknowledged by <@U01>" in json.dumps(channel_message(fake)["blocks"])
    )
    row = (await app.store.fetch("SELECT acked_by, acked_at - first_at FROM alerts"))[0]
    assert tuple(row) == ("U01", 170)
    app.clock.advance(3600)
    await alerts_of(slack).tick()
    assert dms(fake, "U04") == []
    assert not any(c.args.get("thread_ts") for c in fake.posts(ALERTS))


async def test_a_stranger_cannot_acknowledge_and_is_audited(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    await emit(
        slack.app,
        RunawayDetected(
            at=slack.app.clock.now(), scope=BOT, stream="rss", count=47, expected_count=1
        ),
    )
    await alerts_of(slack).process()
    reply = await slack.command("ack 1", user="U0STRANGER")
    assert "Only admins" in reply["text"]
    row = (await slack.app.store.fetch("SELECT acked_at FROM alerts"))[0]
    assert row[0] is None
    audit = await slack.app.store.fetch("SELECT actor, action FROM audit")
    assert ("U0STRANGER", "refused") in [tuple(a) for a in audit]


async def p0_paged(slack_http: Any, db: Any, clock: ManualClock) -> Any:
    """An app on ``db`` whose P0 is posted and has paged U01 (step 1 of 3)."""
    first = await slack_http(POLICY, clock=clock, db=db)
    await overspend(first.app)
    await alerts_of(first).process()
    await first.fake.wait_for(lambda: dms(first.fake, "U01"))
    return first


async def test_a_restart_in_the_middle_of_a_chain_continues_it(slack_http, tmp_path):
    db = tmp_path / "restart.db"
    clock = ManualClock()
    first = await p0_paged(slack_http, db, clock)
    fake = first.fake
    clock.advance(4 * 60)
    await alerts_of(first).tick()
    await first.app.ns.stop()

    clock.advance(60)  # step 2 falls due while nothing runs
    second = await slack_http(POLICY, clock=clock, db=db)
    await alerts_of(second).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))
    assert len(fake.posts(ALERTS)) == 1 and len(dms(fake, "U01")) == 1
    clock.advance(10 * 60)
    await alerts_of(second).tick()
    await fake.wait_for(lambda: any(c.args.get("thread_ts") for c in fake.posts(ALERTS)))


class CreepingClock(ManualClock):
    """A manual clock that also moves 1 ms at each reading, as a real one does between
    two readings of one tick (review27 R2 L1: the ManualClock gave a step and the note
    written after it the same instant, which a real clock never does)."""

    def now(self) -> float:
        read = super().now()
        self.advance(0.001)
        return read


WHILE_DOWN = "while Nightshift was down (stopped, or its database refusing writes)"
WHILE_NO_CHAIN = (
    "while no step could be taken (Nightshift ran without an escalation chain, or taking a"
    " step failed)"
)


async def test_steps_skipped_while_down_are_said_in_the_thread_and_the_story(slack_http, tmp_path):
    """audit27 B2 L1: down across two steps, only the latest is taken (the channel); the
    secondary's step, passed over, was in an INFO log only: the thread and `/agent alert`
    did not say the secondary was never paged, nor why. R2 L1: the story tells the skipped
    steps before the step taken with a clock that moves too."""
    db = tmp_path / "skipped.db"
    clock = ManualClock()
    first = await p0_paged(slack_http, db, clock)
    fake = first.fake
    await first.app.ns.stop()

    clock.advance(16 * 60)  # the secondary (5m) and the channel (15m) fell due while down
    clock = CreepingClock(clock.now())
    second = await slack_http(POLICY, clock=clock, db=db)
    await alerts_of(second).tick()
    said = (
        f"⏭️ Step 2 of 3 (secondary, due 00:05) fell due {WHILE_DOWN}: skipped, and the"
        " latest step due (step 3 of 3) is taken now; paging every step due in the same"
        " second would give nobody time to acknowledge."
    )

    def thread() -> list[str]:
        return [c.args["text"] for c in fake.posts(ALERTS) if c.args.get("thread_ts")]

    await fake.wait_for(lambda: len(thread()) == 2)
    assert thread()[0] == said, thread()  # before the channel's own nudge
    assert dms(fake, "U04") == [] and len(dms(fake, "U01")) == 1
    story = (await second.command("alert 1"))["text"]
    assert (
        f"`00:16` ⏭️ step 2 of 3 (secondary, due 00:05) fell due {WHILE_DOWN}: skipped"
        " (took step 3 of 3)\n`00:16` 📣 told the channel (step 3 of 3)"
    ) in story, story
    clock.advance(60)  # said once: the next tick has nothing to catch up
    await alerts_of(second).tick()
    rows = await second.app.store.fetch(
        "SELECT actor, after FROM audit WHERE action = 'alert.steps_skipped'"
    )
    assert [tuple(r) for r in rows] == [("nightshift", "took step 3 of 3")]


async def test_a_restart_without_a_chain_starts_and_the_chain_goes_on_when_it_is_back(
    slack_http, tmp_path
):
    """audit14 crash 1: an alert mid-chain, then a restart on a policy with no oncall (taken
    out, or the file missing after a reboot): start-up died on a division by zero, every
    time, and took the agent API with it."""
    db = tmp_path / "no-chain.db"
    clock = ManualClock()
    first = await p0_paged(slack_http, db, clock)
    fake = first.fake
    await first.app.ns.stop()

    clock.advance(10 * 60)  # the secondary's step fell due while nothing ran
    no_oncall = {k: v for k, v in POLICY.items() if k != "oncall"}
    second = await slack_http(no_oncall, clock=clock, db=db)  # starts
    assert (await second.app.client.get("/healthz")).status_code == 200
    await alerts_of(second).tick()  # and ticks: nobody to page, nothing fails
    clock.advance(60)
    await alerts_of(second).tick()
    assert not dms(fake, "U04")
    row = (await second.app.store.fetch("SELECT esc_step, esc_at FROM alerts"))[0]
    assert row["esc_step"] == 1  # the step waits
    await second.app.ns.stop()

    third = await slack_http(POLICY, clock=clock, db=db)  # the chain is back: it goes on
    await alerts_of(third).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))
    assert len(dms(fake, "U01")) == 1


async def test_steps_skipped_while_running_without_a_chain_are_not_said_to_be_a_downtime(
    slack_http, tmp_path
):
    """review27 R2 L2: the `oncall` section taken out at a reload and put back later (the
    process ran throughout, its ticks marking it alive): the steps that fell due meanwhile
    were said to have fallen due "while Nightshift was not running". L5: a `user:` step
    was named by its raw id ("user U0ABC"): the thread mentions them as its other lines do."""
    db = tmp_path / "no-chain-for-a-while.db"
    clock = ManualClock()
    first = await p0_paged(slack_http, db, clock)
    fake = first.fake
    await first.app.ns.stop()  # a reload is a restart in place, on the new policy
    no_oncall = {k: v for k, v in POLICY.items() if k != "oncall"}
    second = await slack_http(no_oncall, clock=clock, db=db)
    for _ in range(16):  # running, without a chain: the secondary (5m), the channel (15m)
        clock.advance(60)
        await alerts_of(second).tick()
    await second.app.ns.stop()
    oncall = POLICY["oncall"]  # the chain is back, its second step a person's
    chain = [oncall["escalation"][0], {"notify": "user:U0SEC", "after": "5m"}]
    back = {**POLICY, "oncall": {**oncall, "escalation": [*chain, oncall["escalation"][2]]}}
    third = await slack_http(back, clock=clock, db=db)
    await alerts_of(third).tick()

    def thread() -> list[str]:
        return [c.args["text"] for c in fake.posts(ALERTS) if c.args.get("thread_ts")]

    await fake.wait_for(lambda: len(thread()) == 2)
    assert thread()[0].startswith(
        f"⏭️ Step 2 of 3 (<@U0SEC>, due 00:05) fell due {WHILE_NO_CHAIN}: skipped, and the"
        " latest step due (step 3 of 3) is taken now"
    ), thread()
    rows = await third.app.store.fetch(
        "SELECT detail FROM audit WHERE action = 'alert.steps_skipped'"
    )
    assert [r[0] for r in rows] == [  # the audit names people by id, as its other rows
        f"step 2 of 3 (user U0SEC, due 00:05) fell due {WHILE_NO_CHAIN}: skipped"
    ]
    story = (await third.command("alert 1"))["text"]
    assert "⏭️ step 2 of 3 (<@U0SEC>, due 00:05) fell due while no step" in story, story


async def test_hundred_firings_make_one_post_and_a_bounded_number_of_updates(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    for i in range(100):
        await emit(
            app,
            RunawayDetected(
                at=app.clock.now(), scope=BOT, stream="rss", count=40 + i, expected_count=1
            ),
        )
        app.clock.advance(0.6)  # 100 firings in a minute
        if i % 10 == 0:
            await alerts_of(slack).tick()
    await alerts_of(slack).process()
    app.clock.advance(30)
    await alerts_of(slack).tick()
    await fake.wait_for(
        lambda: "fired 100×" in json.dumps(channel_message(fake)["blocks"], ensure_ascii=False)
    )
    assert len([c for c in fake.posts(ALERTS) if not c.args.get("thread_ts")]) == 1
    updates = fake.calls_of("chat.update", ok=True)
    assert 1 <= len(updates) <= 60 // 30 + 2
    assert "139 items" in channel_message(fake)["text"]  # the latest firing's figures


async def test_a_silence_survives_five_resolve_refire_cycles(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await used(app)
    reply = await slack.command(f"silence {BOT} 1h", user="U01")
    assert f"silenced {BOT} and below for 1h" in reply["text"]
    for _ in range(5):
        await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"))
        await alerts_of(slack).process()
        app.clock.advance(300)
        await emit(app, BreakerClosed(at=app.clock.now(), scope=BOT, reason="trial ok"))
        await alerts_of(slack).process()
        app.clock.advance(300)
        await alerts_of(slack).tick()
    assert fake.posts(ALERTS) == [] and dms(fake, "U01") == []
    rows = await app.store.fetch("SELECT was_silenced, resolved_at FROM alerts")
    assert len(rows) == 5 and all(r[0] == 1 and r[1] is not None for r in rows)
    digest = await slack.command("alerts")
    assert f"{BOT} and below" in digest["text"]  # the silence is listed
    app.clock.advance(1200)  # an hour after the silence was made: it expired
    await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"))
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))


async def test_alerts_lists_open_groups_by_tier_with_counts(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    for _ in range(3):
        await emit(
            app,
            RunawayDetected(at=app.clock.now(), scope=BOT, stream="rss", count=9, expected_count=1),
        )
    await emit(
        app,
        BreakerOpened(
            at=app.clock.now(), scope="acme/bob/x", trip="failures", reason="5 failures in a row"
        ),
    )
    await alerts_of(slack).process()
    app.clock.advance(600)
    reply = await slack.command("alerts")
    text = reply["text"]
    assert text.index("P0:") < text.index("P1:")
    assert f"`#1` Runaway output · `runaway:{BOT}` ×3 · 10m old" in text
    kind = "breaker_opened_failures"
    assert f"`#2` Breaker opened on failures · `{kind}:acme/bob/x` · 10m old" in text
    # what the listing shows is what silence takes; a kind that does not exist is refused
    typo = await slack.command("silence breaker_opend_failures:acme/bob/x 5m")
    assert "unknown alert kind 'breaker_opend_failures'" in typo["text"]
    assert "did you mean 'breaker_opened_failures'" in typo["text"]
    assert await app.store.fetch("SELECT * FROM silences") == []
    no_kind = await slack.command("silence :acme/bob/x 5m")
    assert "an alert kind goes before the colon" in no_kind["text"]
    done = await slack.command(f"silence {kind}:acme/bob/x 5m")
    assert "silenced" in done["text"], done["text"]


async def test_oncall_hands_off_at_nine_local_across_the_dst_change(slack_http):
    berlin = {
        **POLICY,
        "timezone": "Europe/Berlin",
        "oncall": {
            "rotations": [
                {"name": "primary", "users": ["U01", "U02"], "handoff": "mon 09:00"},
            ],
            "escalation": [{"notify": "rotation:primary", "after": "0m"}],
        },
    }
    # Mon 30 Mar 2026, the day after Berlin moved to summer time: 08:59 CEST = 06:59 UTC
    clock = ManualClock(datetime(2026, 3, 30, 6, 59, tzinfo=UTC).timestamp())
    slack = await slack_http(berlin, clock=clock)
    before = (await slack.command("oncall"))["text"]
    assert "*primary* (weekly, hand-off mon 09:00): <@U02>" in before  # week 13 of the cycle
    assert "next hand-off Mon 30 Mar 09:00 CEST → <@U01>" in before
    clock.advance(60)
    after = (await slack.command("oncall"))["text"]
    assert "<@U01>" in after.split("\n")[1]
    await emit(slack.app, BreakerOpened(at=clock.now(), scope=BOT, trip="spend", reason="r"))
    await alerts_of(slack).process()
    await slack.fake.wait_for(lambda: dms(slack.fake, "U01"))
    assert dms(slack.fake, "U02") == []


async def test_override_puts_someone_else_on_call_and_they_are_paged(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    reply = await slack.command("oncall override <@U09|dana> 4h", user="U01")
    assert "<@U09> is on call for primary until 04:00" in reply["text"]
    text = (await slack.command("oncall"))["text"]
    assert "<@U09> (override until 04:00)" in text
    await emit(
        slack.app, BreakerOpened(at=slack.app.clock.now(), scope=BOT, trip="spend", reason="r")
    )
    await alerts_of(slack).process()
    await slack.fake.wait_for(lambda: dms(slack.fake, "U09"))
    assert slack.fake.posts(ALERTS)[0].args["text"].startswith("<@U09>")
    # no member id is 5,000 characters long, nor a channel (audit13 Slack L4)
    for who in ("<@U" + "0" * 5000 + ">", "<!channel>", "dana"):
        refused = await slack.command(f"oncall override {who} 1h", user="U01")
        assert (
            "is not a user: pick them from the list Slack shows as you type @" in (refused["text"])
        ), who
        assert "<!channel>" not in refused["text"]
    assert "override until 04:00" in (await slack.command("oncall"))["text"]


async def test_clearing_overrides_says_what_it_ended(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    nothing = await slack.command("oncall override clear", user="U01")
    assert nothing["text"] == "No override of primary to end; the schedule applies."
    typo = await slack.command("oncall override <@U09|dana> 30s", user="U01")  # meant 30m
    assert "an override lasts at least a minute" in typo["text"]
    assert await slack.app.store.fetch("SELECT * FROM oncall_overrides") == []
    assert nothing.get("response_type", "ephemeral") == "ephemeral"
    await slack.command("oncall override <@U09|dana> 4h", user="U01")
    ended = await slack.command("oncall override clear", user="U01")
    assert ended["text"] == "Ended 1 override of primary; the schedule applies again."
    assert ended["response_type"] == "in_channel"
    rows = await slack.app.store.fetch(
        "SELECT actor, target, before FROM audit WHERE action = 'oncall.override.end'"
    )
    assert [tuple(r) for r in rows] == [("U01", "primary", "U09")]  # whose shift ended
    rows = await slack.app.store.fetch(
        "SELECT before, after FROM audit WHERE action = 'oncall.override'"
    )
    # whom it put off call, and until when (audit23 forensics M5: it read "— → U09")
    assert [tuple(r) for r in rows] == [("U01", "U09 for 4h, until 2026-01-01T04:00:00+00:00")]


async def test_someone_on_call_by_override_may_acknowledge_while_it_lasts(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    clock = slack.app.clock
    await slack.command("oncall override <@U09|dana> 4h", user="U01")
    await emit(slack.app, BreakerOpened(at=clock.now(), scope=BOT, trip="spend", reason="r"))
    await alerts_of(slack).process()
    await slack.fake.wait_for(lambda: dms(slack.fake, "U09"))
    reply = await slack.command("ack 1", user="U09")
    assert "acknowledged" in reply["text"].lower() and "only admins" not in reply["text"].lower()
    clock.advance(5 * 3600)  # the override is over: dana is nobody's responder any more
    await emit(
        slack.app, BreakerOpened(at=clock.now(), scope="acme/bob/x", trip="spend", reason="r")
    )
    await alerts_of(slack).process()
    refused = await slack.command("ack 2", user="U09")
    assert "only admins" in refused["text"].lower()


async def test_resolve_and_escalate_buttons(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"))
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    post = fake.posts(ALERTS)[0]
    common = {
        "channel": ALERTS,
        "ts": post.response["ts"],
        "blocks": post.args["blocks"],
        "block_id": "alert:1",
        "user_id": ADMIN,
    }
    await slack.post(block_actions_body(action_id="alert_escalate", value="1", **common))
    await fake.wait_for(lambda: dms(fake, "U04"))
    await slack.post(block_actions_body(action_id="alert_resolve", value="1", **common))
    await fake.wait_for(lambda: "resolved by <@U0ADMIN>" in json.dumps(channel_message(fake)))
    app.clock.advance(3600)
    await alerts_of(slack).tick()
    assert not any(c.args.get("thread_ts") for c in fake.posts(ALERTS))


async def test_status_shows_heartbeat_breaker_and_spend_today(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await overspend(app)
    tok = await app.token("acme/bob")
    r = await app.request(
        "POST", "/v1/heartbeats", token=tok, json={"scope": "acme/bob/helper", "status": "ok"}
    )
    assert r.status_code == 204
    await alerts_of(slack).process()
    app.clock.advance(30)
    text = (await slack.command("status"))["text"]
    lines = text.split("\n")
    assert lines[0].startswith("Fleet: 2 agents, 1 needs a look · open alerts: P0 1")
    assert lines[1].startswith(f"🔴 `{BOT}` · no heartbeats · ⛔ breaker open")
    assert "$2.50 today · 1 open alert" in lines[1]
    assert lines[2] == "🟢 `acme/bob/helper` · ♥ 30s ago (ok) · breaker closed · $0.00 today"
    assert lines[3].startswith("Slack delivery: ")
    # a spend under a cent is shown, not rounded to $0.00 (audit16 observability L4)
    body = {"scope": "acme/bob/helper", "idempotency_key": "tiny", "max_cost_micros": 100}
    rid = (await app.request("POST", "/v1/reservations", token=tok, json=body)).json()[
        "reservation_id"
    ]
    settle = {"actual_cost_micros": 30}
    await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=settle)
    text = (await slack.command("status"))["text"]
    assert "breaker closed · $0.00003 today" in text


async def test_status_says_when_nothing_is_limited_and_nobody_is_paged(slack_http):
    """audit13 incidents H1(b): the start-up WARNINGs scroll away; /agent status is where
    the operator looks."""
    bare = {"admins": [ADMIN], "channels": {"alerts": ALERTS}}
    slack = await slack_http(bare, clock=ManualClock())
    no_budget = (
        "⚠️ No budgets: nothing refuses a call before it starts (the spend-rate breaker acts"
        " only after money is charged). `/agent budget set <scope> <amount> day` or"
        " `budgets.defaults` in the policy"
    )
    nobody = (
        "⚠️ Nobody is paged: there is no on-call rotation nor escalation chain (`oncall` in"
        " the policy); alerts are only posted"
    )
    lines = (await slack.command("status"))["text"].split("\n")
    assert lines[0].startswith("No agents yet") and lines[-2:] == [no_budget, nobody]
    await overspend(slack.app)
    reply = await slack.command("status")
    assert reply["text"].split("\n")[1:3] == [no_budget, nobody]
    shown = [b["elements"][0]["text"] for b in reply["blocks"] if b["type"] == "context"]
    assert shown[1:3] == [no_budget, nobody]  # right after the delivery line
    # a budget set from Slack is a budget: the first line goes
    await slack.command(f"budget set {BOT} $5 day")
    lines = (await slack.command("status"))["text"].split("\n")
    assert no_budget not in lines and nobody in lines


async def test_status_with_budgets_and_a_chain_warns_of_nothing(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    await overspend(slack.app)
    assert "⚠️" not in (await slack.command("status"))["text"]


async def test_rotations_without_steps_page_the_first_rotation_and_status_does_not_warn(
    slack_http,
):
    """audit14 docs 1: with rotations and no escalation list the first rotation is paged
    (a one-step chain); saying "nobody is paged" then was false."""
    rotations = {"rotations": POLICY["oncall"]["rotations"]}
    slack = await slack_http({**POLICY, "oncall": rotations}, clock=ManualClock())
    await overspend(slack.app)
    await alerts_of(slack).process()
    await slack.fake.wait_for(lambda: dms(slack.fake, "U01"))
    assert "Nobody is paged" not in (await slack.command("status"))["text"]


async def test_a_silence_in_the_audit_ends_on_the_policy_clock(slack_http):
    policy = {**POLICY, "timezone": "Europe/Berlin"}
    clock = ManualClock(datetime(2026, 1, 5, 3, 37, tzinfo=UTC).timestamp())  # 04:37 in Berlin
    slack = await slack_http(policy, clock=clock)
    await used(slack.app)
    done = await slack.command(f"silence {BOT} 1h")
    assert "until 05:37" in done["text"], done["text"]
    audit = await slack.command("audit 1")
    assert "*alert.silence*" in audit["text"]
    assert "— → 05:37" in audit["text"], audit["text"]  # not 04:37 in UTC beside a Berlin time
    row = await slack.app.store.fetch("SELECT after FROM audit WHERE action = 'alert.silence'")
    assert row[0][0] == "2026-01-05T05:37:00+01:00"


async def trip_team(app: Any, agents: int, trip: str) -> None:
    """``agents`` breakers of acme/team open at the same instant (P0 on spend, P1 on
    failures)."""
    now = app.clock.now()
    await emit(
        app,
        *(
            BreakerOpened(at=now, scope=f"acme/team/bot-{i:02d}", trip=trip, reason="r")
            for i in range(agents)
        ),
    )


async def test_a_storm_reaches_slack_as_a_few_posts_and_one_summary_per_lane(slack_http):
    """40 agents trip at once: Slack gets the first posts and pages on their own, then one
    "Alert storm" summary per lane with the rest (audit6_scale F2)."""
    policy: dict[str, Any] = {
        **POLICY,
        "alerts": {
            "update_interval_seconds": "30s",
            "repeat_escalation": 0,
            "fold_after": 3,
            "fold_pages_after": 0,  # pages follow fold_after too
        },
    }
    slack = await slack_http(policy, clock=ManualClock())
    fake, app = slack.fake, slack.app
    outbox = app.ns.extras["outbox"]
    outbox.pace_seconds = 0.3  # Slack's pace, shortened: the summary waits its turn
    await trip_team(app, 40, "spend")
    await alerts_of(slack).process()
    await fake.wait_for(
        lambda: (
            any("Alert storm" in c.args["text"] for c in dms(fake, "U01"))
            and any("Alert storm" in c.args["text"] for c in fake.posts(ALERTS))
        ),
        within=15,
    )
    posts = [c.args["text"] for c in fake.posts(ALERTS)]
    pages = [c.args["text"] for c in dms(fake, "U01")]
    # one transaction took all 40: three went out on their own per lane, 37 in one summary
    assert len(posts) == 4 and len(pages) == 4  # not 40 of each
    assert posts[3].startswith("<@U01> 🔴 Alert storm · 37 alerts")
    assert pages[3].startswith("🔴 Alert storm · 37 alerts: 🔴 P0 · *Breaker opened on spend")
    stored = await app.store.fetch(
        "SELECT COUNT(*) FROM alerts WHERE resolved_at IS NULL AND esc_at IS NOT NULL"
    )
    assert stored[0][0] == 40  # every alert is still its own, on its chain


async def test_pages_due_at_once_buzz_twice_the_first_then_one_summary(slack_http):
    """audit13 incidents L2: six P1s falling due in the same second paged the secondary six
    times (pages folded only past fold_after, 10, waiting in the lane)."""
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await trip_team(app, 6, "failures")
    await alerts_of(slack).process()
    await fake.wait_for(lambda: len(fake.posts(ALERTS)) == 6)  # posts: under fold_after
    app.clock.advance(31 * 60)  # all six P1s enter the chain in the same tick
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: any("Alert storm" in c.args["text"] for c in dms(fake, "U04")))
    pages = [c.args["text"] for c in dms(fake, "U04")]
    assert len(pages) == 2, pages
    assert pages[0].startswith("You are paged (secondary, step 2 of 3): 🟠 P1")
    assert pages[1].startswith("🟠 Alert storm · 5 alerts")
    steps = await app.store.fetch("SELECT COUNT(*) FROM escalations WHERE target = 'U04'")
    assert steps[0][0] == 6  # every alert took its step: folded, not dropped


async def test_without_an_alerts_channel_the_start_says_where_alerts_go(slack_http, caplog):
    """audit12 L3: alerts went to a channel named #alerts without a word."""
    import logging

    with caplog.at_level(logging.WARNING):
        await slack_http({})
    assert "no alerts channel (channels.alerts): alerts go to a channel named #alerts" in (
        caplog.text
    )
    nobody = "no on-call rotation nor escalation chain (oncall): alerts are posted"
    assert nobody in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        await slack_http({"channels": {"alerts": "C0ALERTS"}})
    assert "no alerts channel" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        await slack_http(POLICY)  # a chain: pages go out
    assert nobody not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # rotations alone page the first (audit14 docs 1)
        await slack_http({"oncall": {"rotations": [{"name": "ops", "users": ["U01"]}]}})
    assert nobody not in caplog.text


async def test_a_start_without_any_budget_says_that_nothing_is_limited(
    app_factory, caplog, tmp_path
):
    """audit13 incidents H1: on the defaults nothing refused a $500 call, and nothing said so."""
    import logging

    with caplog.at_level(logging.WARNING):
        app = await app_factory({}, db=tmp_path / "limits.db")
    assert (
        "no budgets: nothing refuses a call before it starts, at any level; the spend-rate"
        " breaker ($2.00 per 10m) stops an agent only after its money is charged"
    ) in caplog.text
    await app.store.write(
        lambda tx: app.ns.ledger.set_limit(
            tx, scope="acme", window="day", limit_micros=5_000_000, actor="U0ADMIN"
        )
    )
    await app.ns.stop()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        await app_factory({}, db=tmp_path / "limits.db")  # a limit set in Slack counts
        await app_factory(POLICY)
    assert "no budgets" not in caplog.text


async def test_a_post_refused_for_a_wrong_channel_is_posted_again_once_it_is_fixed(
    slack_http, tmp_path
):
    """audit17 policy H1: the README's fix for channel_not_found (correct `channels.alerts`,
    reload) left the open P0 unposted for good, and the chain's channel step (a reply in
    its thread) failed with it: nobody was told."""
    db = tmp_path / "channel.db"
    clock = ManualClock()
    wrong = {**POLICY, "channels": {"alerts": "C0WRONG"}}
    first = await slack_http(wrong, clock=clock, db=db)
    fake = first.fake
    fake.fail("chat.postMessage", status=200, error="channel_not_found", times=1)
    await overspend(first.app)
    await alerts_of(first).process()
    await fake.wait_for(lambda: dms(fake, "U01"))  # the page went out; the post did not

    async def post_state() -> str:
        rows = await first.app.store.fetch("SELECT state FROM outbox WHERE ref = 'alert:1:post'")
        return str(rows[0][0])

    for _ in range(100):
        if await post_state() == "failed":
            break
        await asyncio.sleep(0.05)
    assert await post_state() == "failed"
    await first.app.ns.stop()

    second = await slack_http(POLICY, clock=clock, db=db)  # the channel put right: a reload
    await fake.wait_for(lambda: fake.posts(ALERTS))
    [post] = fake.posts(ALERTS)
    assert "Breaker opened" in post.args["text"]
    clock.advance(15 * 60)  # the chain's channel step: a reply in the new post's thread
    await alerts_of(second).tick()
    await fake.wait_for(lambda: any(c.args.get("thread_ts") for c in fake.posts(ALERTS)))


async def test_a_one_person_rotation_has_no_hand_off_to_show(slack_http):
    """audit18 fleet: `secondary` (one user) said "next hand-off … → <@U04>", to the
    person already on call."""
    policy = {
        **POLICY,
        "oncall": {
            "rotations": [
                {"name": "primary", "users": ["U01", "U02"]},
                {"name": "secondary", "users": ["U04"]},
            ]
        },
    }
    slack = await slack_http(policy, clock=ManualClock())
    lines = (await slack.command("oncall"))["text"].split("\n")
    secondary = lines.index(next(line for line in lines if line.startswith("*secondary*")))
    assert lines[secondary].endswith("<@U04>")
    assert secondary + 1 == len(lines) or "next hand-off" not in lines[secondary + 1]
    assert any("next hand-off" in line for line in lines[:secondary])  # primary still has one
