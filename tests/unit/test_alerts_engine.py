"""The alert engine on a real SQLite store: events in, alert rows and outbox rows out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.alerts import operations as ops
from bot.alerts.engine import AlertEngine
from bot.alerts.summary import alert_summary
from guards.config import Policy
from guards.errors import InvalidInput, NotFound
from guards.events import (
    BreakerClosed,
    BreakerOpened,
    BudgetExhausted,
    Event,
    HalfOpenRequested,
    HoldExpired,
    Overrun,
    RunawayDetected,
    ScopeViolation,
)
from guards.ledger import Ledger
from guards.scopes import Scope
from guards.store import Store, Tx

AGENT = "acme/alice/rss-bot"
POLICY = {
    "timezone": "Europe/Berlin",
    "channels": {"alerts": "C0ALERTS"},
    "budgets": {"defaults": {"agent": {"day": "5.00"}, "namespace": {"day": "0.000001"}}},
    "alerts": {"update_interval_seconds": "30s", "p1_escalate_after": "30m"},
    "oncall": {
        "rotations": [
            {"name": "primary", "users": ["U01", "U02"], "start": "2025-12-29"},
            {"name": "secondary", "users": ["U04"]},
        ],
        "escalation": [
            {"notify": "rotation:primary", "after": "0m"},
            {"notify": "rotation:secondary", "after": "5m"},
            {"notify": "channel", "after": "15m"},
        ],
    },
}


def make(extra: dict[str, Any] | None = None) -> AlertEngine:
    policy = Policy.model_validate({**POLICY, **(extra or {})})
    return AlertEngine(policy=policy, ledger=Ledger(policy=policy))


def opened(store: Store, scope: str = AGENT, trip: str = "spend") -> BreakerOpened:
    return BreakerOpened(
        at=store.clock.now(), scope=scope, trip=trip, reason="spend rate $2.40 in 10m"
    )


async def emit(store: Store, *events: Event) -> None:
    def write(tx: Tx) -> None:
        for e in events:
            tx.emit(e)

    await store.write(write)


async def seen(store: Store, *paths: str) -> None:
    """Scopes an agent has used: the rows its first reservation writes (a silence there
    is allowed; one on a scope nothing uses is refused)."""

    def write(tx: Tx) -> None:
        for path in paths:
            up = Scope.parse(path).ancestors()
            tx.executemany(
                "INSERT OR IGNORE INTO scopes (path, parent, depth, created_at)"
                " VALUES (?, ?, ?, 0)",
                [(p, up[i - 1] if i else None, i + 1) for i, p in enumerate(up)],
            )

    await store.write(write)


async def run(store: Store, engine: AlertEngine) -> int:
    return await store.write(engine.process_pending)


async def outbox(store: Store) -> list[tuple[str, str, dict[str, Any], str | None]]:
    rows = await store.fetch("SELECT method, channel, args, ref FROM outbox ORDER BY id")
    return [(r["method"], r["channel"], json.loads(r["args"]), r["ref"]) for r in rows]


async def deliver_all(store: Store) -> None:
    """What the outbox worker does: every waiting row is sent (Slack answers a ts)."""
    await store.write(
        lambda tx: tx.execute(
            "UPDATE outbox SET state = 'delivered', result_channel = channel,"
            " result_ts = '1.' || id WHERE state = 'pending'"
        )
    )


async def alerts(store: Store) -> list[Any]:
    return await store.fetch("SELECT * FROM alerts ORDER BY id")


async def test_p0_posts_with_a_mention_dms_the_primary_and_arms_the_chain(store):
    engine = make()
    await emit(store, opened(store))
    assert await run(store, engine) == 1
    out = await outbox(store)
    assert [(m, c) for m, c, _, _ in out] == [
        ("chat.postMessage", "C0ALERTS"),
        ("chat.postMessage", "U01"),
    ]
    post = out[0][2]
    assert post["text"].startswith(
        "<@U01> 🔴 P0 · Breaker opened on spend rate — acme/alice/rss-bot"
    )
    assert "spend rate $2.40 in 10m" in post["text"]
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        "alert_ack",
        "alert_silence_1h",
        "alert_escalate",
        "alert_resolve",
    ]
    assert {e["value"] for e in actions["elements"]} == {
        "1~1767225600000"
    }  # the number, tagged with its first firing (ms)
    assert out[0][3] == "alert:1:post"
    assert out[1][2]["text"].startswith("You are paged (primary, step 1 of 3)")
    [row] = await alerts(store)
    assert (row["tier"], row["esc_step"], row["esc_at"]) == ("P0", 1, store.clock.now() + 300)
    events = await store.fetch("SELECT dispatched_at FROM events")
    assert all(e[0] is not None for e in events)
    assert await run(store, engine) == 0  # idempotent: nothing left


async def test_unacknowledged_p0_escalates_to_secondary_then_channel_then_the_chain_ends(store):
    engine = make({"alerts": {"repeat_escalation": 0}})
    await emit(store, opened(store))
    await run(store, engine)
    store.clock.advance(299)
    await store.write(engine.tick)
    assert len(await outbox(store)) == 2
    store.clock.advance(1)
    await store.write(engine.tick)
    out = await outbox(store)
    assert out[2][:2] == ("chat.postMessage", "U04")
    store.clock.advance(600)
    await store.write(engine.tick)
    out = await outbox(store)
    nudge = [o for o in out if o[2].get("thread_ts")]
    assert len(nudge) == 1
    assert nudge[0][2]["thread_ts"] == "$ref:alert:1:post.ts"
    assert "<!channel>" in nudge[0][2]["text"]
    # the chain ran out (no repeat): nobody else is notified however long we wait
    store.clock.advance(7200)
    await store.write(engine.tick)
    posts = [o for o in await outbox(store) if o[0] == "chat.postMessage"]
    assert len(posts) == 4
    assert (await alerts(store))[0]["esc_at"] is None


async def test_the_chain_repeats_after_its_last_step(store):
    engine = make({"alerts": {"repeat_escalation": 1, "repeat_escalation_after": "10m"}})
    await emit(store, opened(store))
    await run(store, engine)
    for _ in range(5):  # 5m: secondary, 15m: channel, 25m: the primary again (10m later)
        store.clock.advance(300)
        await store.write(engine.tick)
    targets = await store.fetch("SELECT target, step FROM escalations ORDER BY id")
    assert [tuple(t) for t in targets] == [("U01", 0), ("U04", 1), (None, 2), ("U01", 3)]


async def test_late_steps_do_not_push_the_chain_back(store):
    """Each step keeps the chain's time: a tick (or a restart) that comes late for one step
    does not delay the next; steps that both fell due meanwhile are both taken."""
    engine = make()
    await emit(store, opened(store))
    await run(store, engine)
    start = store.clock.now()
    store.clock.advance(7 * 60)  # the secondary was due at 5m; this tick is 2m late
    await store.write(engine.tick)
    assert (await alerts(store))[0]["esc_at"] == start + 15 * 60  # the channel: still 15m
    store.clock.advance(8 * 60)
    await store.write(engine.tick)
    rows = await store.fetch("SELECT step, at FROM escalations ORDER BY id")
    assert [(r["step"], r["at"] - start) for r in rows] == [(0, 0), (1, 420), (2, 900)]


async def test_after_downtime_only_the_latest_due_step_is_taken(store):
    """audit9 M2: steps that fell due while Nightshift was down are not replayed in one
    second (every round's pages and nudges at once, then a chain used up): the latest
    due is taken, and the next keeps its own time."""
    engine = make({"alerts": {"repeat_escalation": 1, "repeat_escalation_after": "15m"}})
    await emit(store, opened(store))
    await run(store, engine)  # 0m: the primary
    start = store.clock.now()
    store.clock.advance(40 * 60)  # down from 0m to 40m: 5m, 15m, 30m and 35m fell due
    await store.write(engine.tick)
    rows = await store.fetch("SELECT target, step, at FROM escalations ORDER BY id")
    assert [(r["target"], r["step"], r["at"] - start) for r in rows] == [
        ("U01", 0, 0),
        ("U04", 4, 2400),  # round 2's secondary (due at 35m), not four steps at once
    ]
    assert (await alerts(store))[0]["esc_at"] == start + 45 * 60  # round 2's channel
    store.clock.advance(5 * 60)
    await store.write(engine.tick)
    steps = [r["step"] for r in await store.fetch("SELECT step FROM escalations ORDER BY id")]
    assert steps == [0, 4, 5]


async def test_a_downtime_past_500_steps_of_a_long_chain_takes_one_step_once(store):
    """review27 R2 L3: the catch-up walked at most 500 positions; 6 steps repeated 100
    times are 606, so after 70 h it took the 500th as "the latest step due", armed the
    next in the past, and the same tick caught up again: a second note, a second page."""
    six = [
        {"notify": notify, "after": f"{minutes}m"}
        for notify, minutes in zip(
            ["rotation:primary", "rotation:secondary", "channel"] * 2,
            [0, 5, 10, 15, 20, 30],
            strict=True,
        )
    ]
    oncall = {"rotations": POLICY["oncall"]["rotations"], "escalation": six}  # type: ignore[index]
    alerting = {"repeat_escalation": 100, "repeat_escalation_after": "15m"}
    engine = make({"alerts": alerting, "oncall": oncall})
    await emit(store, opened(store))
    await run(store, engine)  # 0m: step 1
    start = store.clock.now()
    store.clock.advance(70 * 3600 + 60)  # rounds start every 45m: round 94 began at 69h45
    await store.write(engine.tick)
    rows = await store.fetch("SELECT step, at FROM escalations ORDER BY id")
    assert [(r["step"], r["at"] - start) for r in rows] == [(0, 0), (93 * 6 + 3, 70 * 3600 + 60)]
    skipped = await store.fetch("SELECT after FROM audit WHERE action = 'alert.steps_skipped'")
    assert [r[0] for r in skipped] == ["took step 4 of 6, round 94"]
    assert (await alerts(store))[0]["esc_at"] == start + (93 * 45 + 20) * 60  # its next


async def test_steps_due_at_one_instant_are_all_taken_after_downtime(store):
    chain = [
        {"notify": "rotation:primary", "after": "0m"},
        {"notify": "rotation:secondary", "after": "5m"},
        {"notify": "channel", "after": "5m"},  # the same instant as the secondary
    ]
    oncall = {"rotations": POLICY["oncall"]["rotations"], "escalation": chain}  # type: ignore[index]
    engine = make({"alerts": {"repeat_escalation": 0}, "oncall": oncall})
    await emit(store, opened(store))
    await run(store, engine)
    store.clock.advance(30 * 60)
    await store.write(engine.tick)
    rows = await store.fetch("SELECT target, step FROM escalations ORDER BY id")
    assert [tuple(r) for r in rows] == [("U01", 0), ("U04", 1), (None, 2)]


async def test_a_short_downtime_over_two_steps_takes_only_the_latest(store):
    """audit14 crash 3: the first due step less than LATE late was taken, and the next,
    due as well, right after it: two pages in one second."""
    chain = [
        {"notify": "rotation:primary", "after": "0s"},
        {"notify": "rotation:secondary", "after": "20s"},
        {"notify": "channel", "after": "40s"},
    ]
    oncall = {"rotations": POLICY["oncall"]["rotations"], "escalation": chain}  # type: ignore[index]
    engine = make({"alerts": {"repeat_escalation": 0}, "oncall": oncall})
    await emit(store, opened(store))
    await run(store, engine)
    store.clock.advance(50)  # down from 5 s to 50 s: 20 s and 40 s fell due
    await store.write(engine.tick)
    rows = await store.fetch("SELECT target, step FROM escalations ORDER BY id")
    assert [tuple(r) for r in rows] == [("U01", 0), (None, 2)]


async def test_one_alert_whose_step_fails_does_not_stop_the_others(store, caplog):
    """audit14 crash 1 (c): the tick was one transaction, so one failing step rolled back
    the watchdog, silences and every other alert's step, every 2 s."""
    engine = make()
    await emit(store, opened(store, scope="acme/alice/a"), opened(store, scope="acme/bob/b"))
    await run(store, engine)
    broken = engine.escalate

    def escalate(tx: Tx, alert: Any, now: float, **kw: Any) -> str:
        if alert.scope == "acme/alice/a":
            raise RuntimeError("a row nobody foresaw")
        return broken(tx, alert, now, **kw)

    engine.escalate = escalate  # type: ignore[method-assign]
    store.clock.advance(5 * 60)
    await store.write(engine.tick)
    rows = await store.fetch(
        "SELECT a.scope, e.step FROM escalations e JOIN alerts a ON a.id = e.alert_id ORDER BY e.id"
    )
    assert [tuple(r) for r in rows] == [("acme/alice/a", 0), ("acme/bob/b", 0), ("acme/bob/b", 1)]
    assert "its escalation step failed; tried again in 60s" in caplog.text
    due = await store.fetch("SELECT esc_at FROM alerts WHERE scope = 'acme/alice/a'")
    assert due[0][0] == store.clock.now() + 60
    engine.escalate = broken  # type: ignore[method-assign]
    store.clock.advance(60)
    await store.write(engine.tick)
    steps = await store.fetch(
        "SELECT e.step FROM escalations e JOIN alerts a ON a.id = e.alert_id"
        " WHERE a.scope = 'acme/alice/a' ORDER BY e.id"
    )
    assert [r[0] for r in steps] == [0, 1]


async def test_a_p1_page_is_not_part_of_a_p0_that_never_paged(store):
    """review14 L1: a P0 raised while there was no chain paged nobody; a later P1 of the
    agent said it was part of that P0 "whose pages went unanswered"."""
    await emit(store, opened(store))
    await run(store, make({"oncall": {}}))  # no chain then: posted, nobody paged
    engine = make()  # the chain is back (a restart on the fuller policy)
    await emit(store, opened(store, trip="failures"))  # a P1 on the same agent
    await run(store, engine)
    store.clock.advance(31 * 60)
    await store.write(engine.tick)
    pages = [o for o in await outbox(store) if o[1] == "U04"]
    assert len(pages) == 1 and "part of P0" not in pages[0][2]["text"]


async def test_one_token_probing_many_scopes_is_one_alert_on_its_node(store):
    """audit10 L1: 200 random scopes from one token made 208 alerts."""
    engine = make()
    probes = [
        ScopeViolation(
            at=store.clock.now(),
            scope=f"acme/zz{i}/x",
            token_id="tok1",
            token_scope="acme/alice",
            path="/v1/heartbeats",
        )
        for i in range(20)
    ]
    await emit(store, *probes)
    await run(store, engine)
    (alert,) = await alerts(store)
    assert (alert["kind"], alert["scope"], alert["count"]) == ("scope_violation", "acme/alice", 20)
    assert json.loads(alert["facts"])["tried"] == "acme/zz19/x"
    posts = [o for o in await outbox(store) if o[0] == "chat.postMessage"]
    assert len(posts) == 1
    assert "token tok1 of acme/alice called /v1/heartbeats for acme/zz" in posts[0][2][
        "text"
    ] + str(posts[0][2]["blocks"])


async def test_ack_stops_the_chain_records_mtta_and_updates_post_and_dms(store):
    engine = make()
    await emit(store, opened(store))
    await run(store, engine)
    await deliver_all(store)  # the post and the page reached Slack
    store.clock.advance(120)
    alert, new = await store.write(lambda tx: ops.ack(engine, tx, alert_id=1, actor="U01"))
    assert new and alert.mtta == 120 and alert.esc_at is None
    out = await outbox(store)
    updates = [o for o in out if o[0] == "chat.update"]
    assert {u[2]["ts"] for u in updates} == {"$ref:alert:1:post.ts", "$ref:alert:1:dm:1.ts"}
    assert all("acknowledged by <@U01>" in u[2]["text"] for u in updates)
    assert all(
        "alert_ack" not in json.dumps(u[2]["blocks"]) for u in updates
    )  # no Acknowledge button any more
    store.clock.advance(3600)
    await store.write(engine.tick)
    assert len([o for o in await outbox(store) if o[0] == "chat.postMessage"]) == 2
    _, again = await store.write(lambda tx: ops.ack(engine, tx, alert_id=1, actor="U02"))
    assert not again
    audit = await store.fetch("SELECT actor, action FROM audit")
    assert [tuple(a) for a in audit] == [("U01", "alert.ack")]


async def test_hundred_firings_make_one_post_and_bounded_updates(store):
    engine = make()
    for _ in range(100):
        await emit(store, opened(store))
        await run(store, engine)
        store.clock.advance(0.5)  # 100 firings in 50 s
        await store.write(engine.tick)
    store.clock.advance(30)
    await store.write(engine.tick)
    out = await outbox(store)
    channel = [o for o in out if o[1] == "C0ALERTS"]
    posts = [o for o in channel if o[0] == "chat.postMessage" and not o[2].get("thread_ts")]
    updates = [o for o in channel if o[0] == "chat.update"]
    assert len(posts) == 1
    assert 1 <= len(updates) <= 50 // 30 + 2
    assert "fired 100×" in json.dumps(updates[-1][2]["blocks"], ensure_ascii=False)
    [row] = await alerts(store)
    assert row["count"] == 100


async def test_p2_is_recorded_not_posted(store):
    engine = make()
    await emit(
        store,
        HoldExpired(at=store.clock.now(), scope=AGENT, reservation_id="res_1", held_micros=10),
    )
    await run(store, engine)
    assert await outbox(store) == []
    [row] = await alerts(store)
    assert (row["kind"], row["tier"], row["posted_at"]) == ("hold_expired", "P2", None)


async def test_p1_posts_and_enters_the_chain_at_its_second_step(store):
    engine = make()
    await emit(store, opened(store, trip="failures"))
    await run(store, engine)
    out = await outbox(store)
    assert [(m, c) for m, c, _, _ in out] == [("chat.postMessage", "C0ALERTS")]
    assert "<@" not in out[0][2]["text"]
    store.clock.advance(1799)
    await store.write(engine.tick)
    assert len(await outbox(store)) == 1
    store.clock.advance(1)
    await store.write(engine.tick)
    dms = [o for o in await outbox(store) if o[1] == "U04"]
    assert len(dms) == 1 and "secondary, step 2 of 3" in dms[0][2]["text"]


async def test_breaker_closed_resolves_and_the_message_turns_resolved(store):
    engine = make()
    await emit(store, opened(store))
    await run(store, engine)
    await deliver_all(store)  # posted: the resolution is an edit of it
    store.clock.advance(60)
    await emit(store, BreakerClosed(at=store.clock.now(), scope=AGENT, reason="clean trial"))
    await run(store, engine)
    [row] = await alerts(store)
    assert row["resolved_at"] == store.clock.now() and row["esc_at"] is None
    update = next(o for o in await outbox(store) if o[:2] == ("chat.update", "C0ALERTS"))
    assert update[2]["text"].startswith("✅")
    assert "resolved" in update[2]["text"] and "clean trial" in update[2]["text"]
    assert not [b for b in update[2]["blocks"] if b["type"] == "actions"]
    # a new opening is a new alert with a new post
    await emit(store, opened(store))
    await run(store, engine)
    assert [r["id"] for r in await alerts(store)] == [1, 2]


async def test_a_silence_by_scope_holds_across_five_resolve_refire_cycles(store):
    engine = make()
    await seen(store, AGENT)
    made = await store.write(
        lambda tx: ops.silence(engine, tx, target="acme/alice", seconds=3600, actor="U01")
    )
    assert made.matches == "acme/alice and below"
    for _ in range(5):
        await emit(store, opened(store))
        await run(store, engine)
        store.clock.advance(60)
        await emit(store, BreakerClosed(at=store.clock.now(), scope=AGENT, reason="ok"))
        await run(store, engine)
        store.clock.advance(60)
    assert await outbox(store) == []
    rows = await alerts(store)
    assert len(rows) == 5 and all(r["was_silenced"] and r["resolved_at"] for r in rows)
    figures = await alert_summary(store, since=0, until=store.clock.now() + 1)
    assert figures["silenced"] == 5 and figures["tiers"]["P0"]["alerts"] == 5
    assert figures["tiers"]["P0"]["silenced_unacked"] == 5  # nobody was asked: none answered
    # after the silence expires, the next opening pages again
    store.clock.advance(3600)
    await emit(store, opened(store))
    await run(store, engine)
    assert [o[1] for o in await outbox(store)] == ["C0ALERTS", "U01"]


async def test_silence_button_on_an_open_alert_stops_its_chain_and_expiry_posts_again(store):
    engine = make()
    await emit(
        store,
        RunawayDetected(
            at=store.clock.now(), scope=AGENT, stream="rss", count=47, expected_count=1
        ),
    )
    await run(store, engine)
    await deliver_all(store)  # posted (one not posted yet would go out showing the silence)
    made = await store.write(
        lambda tx: ops.silence(engine, tx, target="#1", seconds=3600, actor="U0DANA")
    )
    assert made.silenced == [1] and made.matches == f"runaway:{AGENT}"
    before = await outbox(store)
    # (a Slack member id: since operator tokens, an actor that is none shows as @name)
    assert "🔕 silenced by <@U0DANA> at 01:00 until 02:00" in before[-1][2]["text"]
    store.clock.advance(1800)
    await store.write(engine.tick)
    assert len(await outbox(store)) == len(before)  # no escalation while silenced
    # it keeps firing; when the silence ends it is shown and paged again
    await emit(
        store,
        RunawayDetected(
            at=store.clock.now(), scope=AGENT, stream="rss", count=50, expected_count=1
        ),
    )
    await run(store, engine)
    store.clock.advance(1801)
    await store.write(engine.tick)
    rows = await outbox(store)
    # the channel message's edit still waiting shows it as it is now, silence over (an
    # edit not yet sent takes the new text in its place: one waiting edit a message)
    edits = [args for m, c, args, _ in rows if (m, c) == ("chat.update", "C0ALERTS")]
    assert "silenced by" not in edits[-1]["text"]
    assert ("chat.postMessage", "U01") in [(m, c) for m, c, _, _ in rows[len(before) :]]


def day_budget_spent(store: Store) -> BudgetExhausted:
    """The agent's $5.00 day budget refused a $0.10 call."""
    return BudgetExhausted(
        at=store.clock.now(),
        scope=AGENT,
        level="agent",
        window="day",
        limit_micros=5_000_000,
        spent_micros=5_000_000,
        held_micros=0,
        requested_micros=100_000,
    )


async def test_budget_alert_resolves_when_the_limit_is_raised(store):
    engine = make()
    await emit(store, day_budget_spent(store))
    await run(store, engine)
    post = (await outbox(store))[0][2]
    assert "budget_raise" in json.dumps(post["blocks"])
    await store.write(engine.tick)
    assert (await alerts(store))[0]["resolved_at"] is None
    ledger = engine.ledger
    assert ledger is not None
    await store.write(
        lambda tx: ledger.set_limit(
            tx, scope=AGENT, window="day", limit_micros=8_000_000, actor="U1"
        )
    )
    await store.write(engine.tick)
    row = (await alerts(store))[0]
    assert row["resolved_at"] is not None and "raised to $8.00" in row["resolve_reason"]
    assert row["resolved_by"] == "U1"  # the message keeps who raised it
    updated = json.dumps((await outbox(store))[-1][2])
    assert "resolved by <@U1>" in updated, updated


async def test_a_budget_change_that_does_not_clear_the_alert_is_shown_on_it(store):
    """audit9 M2: the alert stays open with its buttons, and every redraw shows the change."""
    engine = make()
    await emit(store, day_budget_spent(store))
    await run(store, engine)
    await deliver_all(store)  # posted (one not posted yet would go out showing it)
    ledger = engine.ledger
    assert ledger is not None
    store.clock.advance(600)

    def change(tx: Tx) -> list[Any]:
        ledger.set_limit(tx, scope=AGENT, window="week", limit_micros=20_000_500, actor="U1")
        return engine.budget_changed(tx, scope=AGENT)

    [alert] = await store.write(change)
    assert alert.resolved_at is None
    line = f"💰 week budget of `{AGENT}` set to $20.0005 by <@U1> at 01:10"
    redrawn = (await outbox(store))[-1]
    assert redrawn[0] == "chat.update" and line in json.dumps(redrawn[2], ensure_ascii=False)
    assert "budget_raise" in json.dumps(redrawn[2]["blocks"]) and "alert_ack" in json.dumps(
        redrawn[2]["blocks"]
    )
    store.clock.advance(60)
    await emit(store, day_budget_spent(store))  # refused again: the redraw still says it
    await run(store, engine)
    store.clock.advance(60)
    await store.write(engine.tick)
    again = (await outbox(store))[-1]
    assert again[0] == "chat.update" and line in json.dumps(again[2], ensure_ascii=False)
    assert "fired 2×" in json.dumps(again[2], ensure_ascii=False)

    def clear(tx: Tx) -> list[Any]:  # a raise of the window that refused: resolved at once
        ledger.set_limit(tx, scope=AGENT, window="day", limit_micros=5_000_500, actor="U2")
        return engine.budget_changed(tx, scope=AGENT)

    [alert] = await store.write(clear)
    assert alert.resolved_by == "U2"
    assert alert.resolve_reason == "the day budget was raised to $5.0005"  # as set (audit9 L1)


@pytest.mark.parametrize(
    ("asked", "spent", "says"),
    [
        (
            11_000_000,
            0,
            "a call asking $11.00 was refused: more than the agent day budget of $10.00",
        ),
        (4_950_000, 5_100_000, "$4.95 was refused: the agent day budget has $4.90 left"),
        (1_000, 10_000_000, "the agent day budget is spent ($10.00 of $10.00)"),
        (999_899, 9_000_102, "$0.999899 was refused: the agent day budget has $0.999898 left"),
    ],
)
def test_a_budget_alert_says_why_the_call_did_not_fit(asked, spent, says):
    from bot.alerts.render_summary import _budget_exhausted

    facts = {
        "level": "agent",
        "window": "day",
        "limit_micros": 10_000_000,
        "spent_micros": spent,
        "held_micros": 0,
        "requested_micros": asked,
    }
    assert says in _budget_exhausted(facts)


def test_a_budget_alert_lists_the_other_levels_in_the_way():
    """audit16 money M4: one look shows every limit to raise."""
    from bot.alerts.render_summary import _budget_exhausted

    facts = {
        "level": "user",
        "window": "day",
        "limit_micros": 500_000,
        "spent_micros": 3_000_000,
        "held_micros": 0,
        "requested_micros": 100_000,
        "also": [
            {"level": "agent", "scope": "acme/alice/bot", "window": "day"},
            {"level": "namespace", "scope": "acme", "window": "month"},
        ],
    }
    assert _budget_exhausted(facts).endswith(
        "; also over: acme/alice/bot (agent day), acme (namespace month)"
    )


def test_a_budget_warning_names_the_period_it_is_about():
    """audit16 money M5: a late charge warned on Monday of Sunday's window, unsaid."""
    from bot.alerts.render_summary import _budget_threshold

    facts = {
        "level": "namespace",
        "window": "day",
        "fraction": 0.8,
        "limit_micros": 10_000_000,
        "spent_micros": 9_800_000,
        "period": "2026-05-31",
    }
    assert _budget_threshold(facts) == (
        "namespace day budget (2026-05-31) passed 80%: $9.80 spent of $10.00"
    )
    older = {k: v for k, v in facts.items() if k != "period"}  # an event from before
    assert _budget_threshold(older).startswith("namespace day budget passed 80%")


async def test_budget_alert_resolves_when_its_window_turns(store):
    engine = make()
    await emit(
        store,
        BudgetExhausted(
            at=store.clock.now(),
            scope="acme",
            level="namespace",
            window="day",
            limit_micros=1,
            spent_micros=1,
            held_micros=0,
            requested_micros=1,
        ),
    )
    await run(store, engine)
    store.clock.advance(22 * 3600)  # 2026-01-01 22:00 UTC is 23:00 in Berlin
    await store.write(engine.tick)
    assert (await alerts(store))[0]["resolved_at"] is None
    store.clock.advance(3600)
    await store.write(engine.tick)
    assert (await alerts(store))[0]["resolve_reason"] == "a new day began"


async def test_event_without_a_condition_resolves_after_a_quiet_hour_unless_unacked_p0(store):
    engine = make()
    await emit(
        store,
        Overrun(
            at=store.clock.now(),
            scope=AGENT,
            reservation_id="res_1",
            held_micros=1,
            charged_micros=3,
            overrun_micros=2,
            late=False,
        ),
    )
    await emit(
        store,
        RunawayDetected(at=store.clock.now(), scope=AGENT, stream="s", count=9, expected_count=1),
    )
    await run(store, engine)
    store.clock.advance(3600)
    await store.write(engine.tick)
    rows = {r["kind"]: r for r in await alerts(store)}
    assert rows["overrun"]["resolved_at"] is not None
    assert rows["runaway"]["resolved_at"] is None


async def test_half_open_request_offers_trial_buttons_and_a_reopening_resolves_it(store):
    engine = make()
    await emit(
        store,
        HalfOpenRequested(
            at=store.clock.now(),
            scope=AGENT,
            reason="cool-down",
            trial_calls=3,
            trial_budget_micros=500_000,
        ),
    )
    await run(store, engine)
    post = (await outbox(store))[0][2]
    buttons = {
        e["action_id"]: e["value"]
        for b in post["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }
    # the buttons name the agent and the request they answer: the instant it began
    request = f"{AGENT} {store.clock.now()!r}"
    assert buttons["breaker_approve"] == request and buttons["breaker_keep_open"] == request
    await emit(store, opened(store, trip="trial"))
    await run(store, engine)
    rows = await alerts(store)
    assert rows[0]["resolved_at"] is not None and rows[1]["kind"] == "breaker_opened_failures"


async def test_a_broken_event_does_not_block_the_queue(store):
    engine = make()

    def bad(tx):
        tx.execute(
            "INSERT INTO events (at, kind, scope, payload) VALUES (0, 'runaway', ?, '[]')", (AGENT,)
        )

    await store.write(bad)
    await emit(store, opened(store))
    assert await run(store, engine) == 2
    assert len(await alerts(store)) == 1


async def test_escalate_now_jumps_to_the_next_step_and_keeps_the_gaps(store):
    engine = make()
    await emit(store, opened(store))
    await run(store, engine)
    store.clock.advance(10)
    who = await store.write(lambda tx: ops.escalate_now(engine, tx, alert_id=1, actor="U01"))
    assert who == "U04"
    row = (await alerts(store))[0]
    assert row["esc_step"] == 2 and row["esc_at"] == store.clock.now() + 600
    esc = await store.fetch("SELECT target, manual_by FROM escalations ORDER BY id")
    assert [tuple(e) for e in esc] == [("U01", None), ("U04", "U01")]


async def test_summary_counts_tiers_and_mtta(store):
    engine = make()
    await emit(store, opened(store), opened(store, scope="acme/bob/x"))
    await run(store, engine)
    store.clock.advance(60)
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=1, actor="U01"))
    store.clock.advance(60)
    await store.write(lambda tx: ops.ack(engine, tx, alert_id=2, actor="U01"))
    figures = await alert_summary(store, since=0, until=store.clock.now())
    p0 = figures["tiers"]["P0"]
    assert (p0["alerts"], p0["acked"], p0["mtta_seconds"]) == (2, 2, 90.0)
    assert figures["tiers"]["P1"]["mtta_seconds"] is None


async def test_summary_of_one_namespace(store):
    engine = make()
    await emit(
        store, opened(store), opened(store, scope="acme2/bob/x"), opened(store, scope="acme")
    )
    await run(store, engine)
    figures = await alert_summary(store, since=0, until=store.clock.now() + 1, scope="acme")
    assert figures["total"] == 2
    assert {t["scope"] for t in figures["top"]} == {AGENT, "acme"}


async def test_a_failed_trial_bumps_the_breaker_alert_it_belongs_to(store):
    engine = make()
    await emit(store, opened(store, trip="spend"))
    await emit(store, opened(store, trip="trial"))
    await run(store, engine)
    [row] = await alerts(store)
    assert (row["kind"], row["count"]) == ("breaker_opened_spend", 2)


async def test_silence_targets_are_validated(store):
    engine = make()
    made = await store.write(
        lambda tx: ops.silence(engine, tx, target="model:claude-haiku-4-5", seconds=60, actor="U1")
    )
    assert made.matches == "model:claude-haiku-4-5 and below"
    for target, seconds in (("not a scope!", 60), (AGENT, 0), ("runaway:bad path", 60)):
        with pytest.raises(InvalidInput):
            await store.write(
                lambda tx, t=target, s=seconds: ops.silence(
                    engine, tx, target=t, seconds=s, actor="U1"
                )
            )
    with pytest.raises(NotFound):
        await store.write(lambda tx: ops.silence(engine, tx, target="#99", seconds=60, actor="U1"))


async def test_the_channel_copy_names_the_person_paged_last(store):
    """audit18 fleet: after the chain paged the secondary, the channel message still
    began with the primary's mention, while its context said both were paged."""
    engine = make({"alerts": {"repeat_escalation": 0}})
    await emit(store, opened(store))
    await run(store, engine)
    first = (await outbox(store))[0][2]["text"]
    assert first.startswith("<@U01> ")
    store.clock.advance(300)
    await store.write(engine.tick)  # the secondary is paged: the channel copy is edited
    edits = [a for m, c, a, _ in await outbox(store) if (m, c) == ("chat.update", "C0ALERTS")]
    assert edits[-1]["text"].startswith("<@U04> ")
