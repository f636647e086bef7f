"""Double and late clicks on Keep open and Escalate now, as signed block_actions.

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock (starts
2026-01-01 00:00 UTC). A second click, or a click on a message that is out of date,
changes nothing and tells only the clicker what happened.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from bot.alerts.operations import REPEAT_CLICK_SECONDS
from guards.clock import ManualClock
from guards.events import BreakerOpened
from tests.scenario.test_alerts import ALERTS, BOT, POLICY, alerts_of, dms, emit, overspend

ADMIN, ADMIN2 = "U0ADMIN", "U0ADMIN2"
REQUEST = "waits for a trial approval"  # the title of a half-open request
STALE_POLICY: dict[str, Any] = {
    **POLICY,
    "admins": [ADMIN, ADMIN2],
    "breakers": {"spend_rate": {"max": "2.00", "per_seconds": "10m"}, "cooldown_seconds": "1m"},
}


# -- helpers ------------------------------------------------------------------------------


def message(slack: Any, channel: str, ts: str) -> dict[str, Any]:
    return dict(slack.fake.messages[(channel, ts)])


def buttons(msg: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{action_id: (value, block_id)}`` of the buttons a message shows now."""
    return {
        e["action_id"]: (e["value"], b.get("block_id"))
        for b in msg["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }


async def click(
    slack: Any,
    action_id: str,
    channel: str,
    ts: str,
    *,
    user: str = ADMIN,
    value: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
) -> None:
    """Click ``action_id`` on the message as Slack shows it (or as ``blocks`` showed it).

    The answer only the clicker sees goes to the response_url named after them.
    """
    shown = message(slack, channel, ts)
    blocks = blocks if blocks is not None else shown["blocks"]
    held = buttons({"blocks": blocks})[action_id]
    r = await slack.click(
        action_id=action_id,
        value=value if value is not None else held[0],
        user_id=user,
        channel=channel,
        ts=ts,
        blocks=blocks,
        block_id=held[1],
        text=shown["text"],
        response_url=slack.fake.response_url(user),
    )
    assert r.status_code == 200 and r.text == "", r.text


async def answer(slack: Any, user: str, n: int = 1) -> str:
    """The n-th ephemeral answer ``user`` got (waits for it)."""
    fake = slack.fake
    await fake.wait_for(lambda: len(fake.responses[user]) >= n)
    reply = fake.responses[user][n - 1]
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    return str(reply["text"])


async def settled(slack: Any) -> None:
    """Wait until the outbox has delivered everything queued so far."""
    for _ in range(500):
        rows = await slack.app.store.fetch("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
        if rows[0][0] == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the outbox did not drain")


async def audit(app: Any, action: str) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch(
        "SELECT actor, before, after, detail FROM audit WHERE action = ? ORDER BY id", (action,)
    )
    return [tuple(r) for r in rows]


async def breaker(app: Any) -> Any:
    return await app.store.write(lambda tx: app.ns.breakers.get(tx, BOT))


def nudges(slack: Any) -> list[Any]:
    """The broadcast thread replies that @channel the alerts channel."""
    return [c for c in slack.fake.posts(ALERTS) if c.args.get("thread_ts")]


# -- Keep open ----------------------------------------------------------------------------


async def half_open_request(slack: Any) -> str:
    """BOT's spend breaker trips, its cool-down ends: the request is posted; returns its ts."""
    app, fake = slack.app, slack.fake
    await overspend(app)
    app.clock.advance(61)
    await app.ns.breakers.sweep(app.store)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: any(REQUEST in c.args["text"] for c in fake.posts(ALERTS)))
    post = next(c for c in fake.posts(ALERTS) if REQUEST in c.args["text"])
    assert (await breaker(app)).state == "half_open_pending"
    return str(post.response["ts"])


async def test_a_double_keep_open_applies_once_and_tells_the_second_clicker(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    ts = await half_open_request(slack)
    blocks = message(slack, ALERTS, ts)["blocks"]
    await asyncio.gather(
        click(slack, "breaker_keep_open", ALERTS, ts, user=ADMIN, blocks=blocks),
        click(slack, "breaker_keep_open", ALERTS, ts, user=ADMIN2, blocks=blocks),
    )
    fake = slack.fake
    await fake.wait_for(lambda: fake.responses[ADMIN] or fake.responses[ADMIN2])
    await settled(slack)
    [(kept_by, before, after, detail)] = await audit(slack.app, "breaker.keep_open")
    late = ADMIN2 if kept_by == ADMIN else ADMIN
    assert (before, after) == ("half_open_pending", "open")
    assert fake.responses[kept_by] == []  # the first clicker's answer is the message itself
    assert await answer(slack, late) == (
        f"🔒 `{BOT}` was already kept open by <@{kept_by}> at 00:01;"
        " its cool-down ends in 2m. Nothing changed."
    )
    row = await breaker(slack.app)
    assert (row.state, row.cooldown_seconds, row.reopens) == ("open", 120, 1)  # doubled once
    assert (
        row.reason
        == detail
        == (f"kept open by {kept_by} for 2m (spent $2.50 in the last 10m (limit $2.00))")
    )
    # the request message shows who kept it open (the click's line, then the resolution)
    await fake.wait_for(lambda: len(fake.calls_of("chat.update", ok=True)) >= 2)
    await settled(slack)
    shown = json.dumps(message(slack, ALERTS, ts), ensure_ascii=False)
    assert "kept open" in shown and f"<@{kept_by}>" in shown and f"<@{late}>" not in shown
    assert "breaker_keep_open" not in shown  # answered: no buttons left


async def test_keep_open_again_on_the_next_request_does_not_nest_the_reason(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    ts = await half_open_request(slack)
    await click(slack, "breaker_keep_open", ALERTS, ts)
    await slack.fake.wait_for(lambda: "kept open" in json.dumps(message(slack, ALERTS, ts)))
    app.clock.advance(120)  # the doubled cool-down is over: a second request
    await app.ns.breakers.sweep(app.store)
    await alerts_of(slack).process()
    await slack.fake.wait_for(
        lambda: sum(REQUEST in c.args["text"] for c in slack.fake.posts(ALERTS)) == 2
    )
    second = [c for c in slack.fake.posts(ALERTS) if REQUEST in c.args["text"]][1]
    await click(slack, "breaker_keep_open", ALERTS, second.response["ts"], user=ADMIN2)
    await slack.fake.wait_for(lambda: len(slack.fake.calls_of("chat.update", ok=True)) >= 2)
    await settled(slack)
    row = await breaker(app)
    assert (row.state, row.cooldown_seconds, row.reopens) == ("open", 240, 2)
    assert row.reason == f"kept open by {ADMIN2} for 4m (spent $2.50 in the last 10m (limit $2.00))"
    assert len(await audit(app, "breaker.keep_open")) == 2


async def test_keep_open_after_the_trial_was_approved_leaves_the_trial_running(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    ts = await half_open_request(slack)
    blocks = message(slack, ALERTS, ts)["blocks"]
    await click(slack, "breaker_approve", ALERTS, ts, user=ADMIN, blocks=blocks)
    await slack.fake.wait_for(lambda: "approved by" in json.dumps(message(slack, ALERTS, ts)))
    slack.app.clock.advance(60)
    await click(slack, "breaker_keep_open", ALERTS, ts, user=ADMIN2, blocks=blocks)  # stale
    assert await answer(slack, ADMIN2) == (
        f"🟠 The trial of `{BOT}` was approved by <@{ADMIN}> at 00:01;"
        f" `/agent breaker {BOT} open` stops it. Nothing changed."
    )
    await settled(slack)
    row = await breaker(slack.app)
    assert row.state == "half_open" and row.trial is not None and row.reopens == 0
    assert await audit(slack.app, "breaker.keep_open") == []
    # the kill switch stops the trial, as before
    reply = await slack.command(f"breaker {BOT} open runaway", user=ADMIN2)
    assert reply["response_type"] == "in_channel" and "forced open" in reply["text"]
    assert (await breaker(slack.app)).state == "forced_open"
    await click(slack, "breaker_keep_open", ALERTS, ts, user=ADMIN2, blocks=blocks)
    assert await answer(slack, ADMIN2, 2) == (
        f"⛔ `{BOT}` was forced open by <@{ADMIN2}> at 00:02; it stays open until someone"
        " approves a trial or closes it. Nothing changed."
    )
    await slack.command(f"breaker {BOT} close", user=ADMIN)
    await click(slack, "breaker_keep_open", ALERTS, ts, user=ADMIN2, blocks=blocks)
    assert await answer(slack, ADMIN2, 3) == (
        f"🟢 `{BOT}` was closed by <@{ADMIN}> at 00:02; there is nothing to keep open."
    )
    assert (await breaker(slack.app)).state == "closed"
    assert await audit(slack.app, "breaker.keep_open") == []


async def test_an_old_approve_trial_click_does_not_lift_the_kill_switch(slack_http):
    """audit13 Slack H1: the button answers its request, not whatever came after it."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    ts = await half_open_request(slack)
    blocks = message(slack, ALERTS, ts)["blocks"]
    reply = await slack.command(f"breaker {BOT} open runaway", user=ADMIN2)
    assert "forced open" in reply["text"]
    await click(slack, "breaker_approve", ALERTS, ts, user=ADMIN, blocks=blocks)
    assert await answer(slack, ADMIN) == (
        f"⛔ `{BOT}` was forced open by <@{ADMIN2}> at 00:01, so this request no longer"
        f" stands; `/agent breaker {BOT} approve` starts a trial if that is what you mean."
        " Nothing changed."
    )
    row = await breaker(slack.app)
    assert row.state == "forced_open" and row.trial is None
    assert await audit(slack.app, "breaker.approve") == []
    await slack.command(f"breaker {BOT} approve", user=ADMIN)  # on purpose, it still may
    assert (await breaker(slack.app)).state == "half_open"


async def test_an_old_request_s_buttons_do_not_answer_a_newer_request(slack_http):
    """review13 L2: request 1 kept open, request 2 waits; request 1's Approve trial (left on
    its message, or a stale client) changes nothing, and request 2's own buttons work."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app, fake = slack.app, slack.fake
    first = await half_open_request(slack)
    old_blocks = message(slack, ALERTS, first)["blocks"]
    await click(slack, "breaker_keep_open", ALERTS, first)
    await fake.wait_for(lambda: "kept open" in json.dumps(message(slack, ALERTS, first)))
    app.clock.advance(120)  # the doubled cool-down is over: request 2, at 00:03
    await app.ns.breakers.sweep(app.store)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: sum(REQUEST in c.args["text"] for c in fake.posts(ALERTS)) == 2)
    second = [c for c in fake.posts(ALERTS) if REQUEST in c.args["text"]][1].response["ts"]
    for n, action_id in enumerate(("breaker_approve", "breaker_keep_open"), start=1):
        await click(slack, action_id, ALERTS, first, user=ADMIN2, blocks=old_blocks)
        assert await answer(slack, ADMIN2, n) == (
            f"🟡 This request of `{BOT}` (from 00:01) was answered; the breaker waits on a"
            f" newer one since 00:03. Answer that one with its own buttons, or"
            f" `/agent breaker {BOT} approve`. Nothing changed."
        )
    row = await breaker(app)
    assert row.state == "half_open_pending" and row.reopens == 1
    assert await audit(app, "breaker.approve") == []
    assert len(await audit(app, "breaker.keep_open")) == 1
    # /agent breakers shows request 2's buttons, and they name it
    listed = await slack.command("breakers", user=ADMIN2)
    values = buttons(listed)
    assert (
        values["breaker_approve"][0]
        == buttons(message(slack, ALERTS, second))["breaker_approve"][0]
    )
    await click(slack, "breaker_approve", ALERTS, second, user=ADMIN2)
    await fake.wait_for(lambda: "approved by" in json.dumps(message(slack, ALERTS, second)))
    assert (await breaker(app)).state == "half_open"
    assert len(await audit(app, "breaker.approve")) == 1


async def test_a_trial_button_from_before_requests_were_named_still_answers(slack_http):
    """Messages posted by an older version carry the bare scope: they answer the request
    that waits (the only one they can mean)."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    ts = await half_open_request(slack)
    await click(slack, "breaker_approve", ALERTS, ts, value=BOT)
    await slack.fake.wait_for(lambda: "approved by" in json.dumps(message(slack, ALERTS, ts)))
    assert (await breaker(slack.app)).state == "half_open"


# -- Escalate now -------------------------------------------------------------------------


async def p1_posted(slack: Any) -> str:
    """A fresh P1 #1 (BOT's breaker opened on failures) is posted; returns its ts."""
    app = slack.app
    await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="failures", reason="r"))
    await alerts_of(slack).process()
    await slack.fake.wait_for(lambda: slack.fake.posts(ALERTS))
    return str(slack.fake.posts(ALERTS)[0].response["ts"])


async def p0_paged(slack: Any) -> tuple[str, str]:
    """P0 #1 posted and U01 paged (step 1 of 3); returns (channel ts, DM ts)."""
    app, fake = slack.app, slack.fake
    await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"))
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))
    return str(fake.posts(ALERTS)[0].response["ts"]), str(dms(fake, "U01")[0].response["ts"])


async def test_a_double_escalate_on_a_fresh_alert_pages_the_next_step_once(slack_http):
    """The auditor's repro: two clicks on a just-posted P1 (its button names no step)."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    fake = slack.fake
    ts = await p1_posted(slack)
    assert (
        buttons(message(slack, ALERTS, ts))["alert_escalate"][0] == "1~1767225600000"
    )  # its number, and its first firing in ms
    blocks = message(slack, ALERTS, ts)["blocks"]
    await asyncio.gather(
        click(slack, "alert_escalate", ALERTS, ts, user=ADMIN, blocks=blocks),
        click(slack, "alert_escalate", ALERTS, ts, user="U01", blocks=blocks),
    )
    await fake.wait_for(lambda: fake.responses[ADMIN] and fake.responses["U01"])
    await settled(slack)
    [(by, *_)] = await audit(slack.app, "alert.escalate")
    late = "U01" if by == ADMIN else ADMIN
    assert await answer(slack, by) == "Escalated #1: notified <@U04>."
    assert await answer(slack, late) == (
        f"#1 was already escalated to step 2 of 3 by <@{by}> at 00:00; nobody else was paged."
    )
    assert len(dms(fake, "U04")) == 1 and nudges(slack) == []
    # the message now carries the step after it: one more click takes exactly that one
    await fake.wait_for(
        lambda: buttons(message(slack, ALERTS, ts))["alert_escalate"][0] == "1:2~1767225600000"
    )
    await click(slack, "alert_escalate", ALERTS, ts, user="U04")
    assert await answer(slack, "U04") == "Escalated #1: notified the channel."
    await fake.wait_for(lambda: nudges(slack))
    assert len(nudges(slack)) == 1
    # each row says who was notified (audit15 L5: the reply said it, the log did not)
    rows = await audit(slack.app, "alert.escalate")
    assert [row[2] for row in rows] == ["U04", "channel"]


async def test_a_double_escalate_on_a_page_with_its_step_pages_once(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    fake = slack.fake
    _, dm_ts = await p0_paged(slack)
    assert buttons(message(slack, "U01", dm_ts))["alert_escalate"][0] == "1:1~1767225600000"
    blocks = message(slack, "U01", dm_ts)["blocks"]
    await asyncio.gather(
        click(slack, "alert_escalate", "U01", dm_ts, user="U01", blocks=blocks),
        click(slack, "alert_escalate", "U01", dm_ts, user="U02", blocks=blocks),
    )
    await fake.wait_for(lambda: fake.responses["U01"] and fake.responses["U02"])
    await settled(slack)
    [(by, *_)] = await audit(slack.app, "alert.escalate")
    late = "U02" if by == "U01" else "U01"
    assert await answer(slack, late) == (
        f"#1 was already escalated to step 2 of 3 by <@{by}> at 00:00; nobody else was paged."
    )
    assert len(dms(fake, "U04")) == 1 and nudges(slack) == []


async def test_escalate_on_a_page_the_timer_overtook_pages_nobody(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    _, dm_ts = await p0_paged(slack)
    app.clock.advance(5 * 60)
    await alerts_of(slack).tick()  # the timer takes step 2: U04 is paged
    await fake.wait_for(lambda: dms(fake, "U04"))
    await click(slack, "alert_escalate", "U01", dm_ts, user="U01")  # still "1:1~…"
    assert await answer(slack, "U01") == (
        "#1 was already escalated to step 2 of 3 on its timer at 00:05; nobody else was paged."
    )
    await settled(slack)
    assert len(dms(fake, "U04")) == 1 and nudges(slack) == []
    assert await audit(app, "alert.escalate") == []


async def test_escalate_after_an_acknowledgement_pages_nobody(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    ts, dm_ts = await p0_paged(slack)
    channel_blocks = message(slack, ALERTS, ts)["blocks"]
    page_blocks = message(slack, "U01", dm_ts)["blocks"]
    app.clock.advance(120)
    await click(slack, "alert_ack", ALERTS, ts, user="U02")
    assert (await answer(slack, "U02")).startswith("👀 you acknowledged #1 at 00:02")
    # tapped twice on the message as it showed (its edit may have landed meanwhile, without
    # the button: a race of the outbox, not of what the second tap sees; audit17 phone L10)
    await click(slack, "alert_ack", ALERTS, ts, user="U02", blocks=channel_blocks)
    assert await answer(slack, "U02", 2) == "#1 was already acknowledged by you."
    acked = "#1 was acknowledged by <@U02> at 00:02, so its escalation stopped; nobody was paged."
    # stale copies: the channel post (plain id) and the page (with its step)
    await click(slack, "alert_escalate", ALERTS, ts, user=ADMIN, blocks=channel_blocks)
    assert await answer(slack, ADMIN) == acked
    await click(slack, "alert_escalate", "U01", dm_ts, user="U01", blocks=page_blocks)
    assert await answer(slack, "U01") == acked
    await settled(slack)
    assert dms(fake, "U04") == [] and nudges(slack) == []
    assert await audit(app, "alert.escalate") == []


async def test_an_old_button_with_the_plain_id_takes_the_current_step(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    ts, _ = await p0_paged(slack)
    await click(slack, "alert_escalate", ALERTS, ts, user=ADMIN, value="1")
    assert await answer(slack, ADMIN) == "Escalated #1: notified <@U04>."
    await fake.wait_for(lambda: dms(fake, "U04"))
    app.clock.advance(REPEAT_CLICK_SECONDS)  # not a double click any more: the current step
    await click(slack, "alert_escalate", ALERTS, ts, user=ADMIN, value="1")
    assert await answer(slack, ADMIN, 2) == "Escalated #1: notified the channel."
    await fake.wait_for(lambda: nudges(slack))
    assert "<!channel>" in nudges(slack)[0].args["text"]
    escalated = await audit(app, "alert.escalate")
    assert [a[0] for a in escalated] == [ADMIN, ADMIN]


async def test_a_bad_escalate_value_is_refused(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    ts = await p1_posted(slack)
    await click(slack, "alert_escalate", ALERTS, ts, value="1:two")
    assert await answer(slack, ADMIN) == "this button does not name an escalation step"
    await click(slack, "alert_escalate", ALERTS, ts, value="1:7")
    assert await answer(slack, ADMIN, 2) == (
        "This button of #1 is out of date: the alert is at step 2 of 3 now. Nobody was paged."
    )
    await settled(slack)
    assert dms(slack.fake, "U04") == [] and await audit(slack.app, "alert.escalate") == []


def restore(db: Path, copy: Path) -> None:
    """The README's Restore: the database's files out, the backup in its place."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(copy, db)


async def test_an_old_message_s_button_after_a_restore_acts_on_no_other_alert(slack_http, tmp_path):
    """audit23 backup 1: a database restored from a backup gives the numbers of the alerts
    made since to new alerts; Acknowledge on an old message stopped a new P0's pages."""
    db, copy = tmp_path / "ns.db", tmp_path / "backup.db"
    clock = ManualClock()
    first = await slack_http(STALE_POLICY, clock=clock, db=db)
    fake = first.fake
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)  # the backup: before alert #1
    await overspend(first.app)
    await alerts_of(first).process()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    old_ts = fake.posts(ALERTS)[0].response["ts"]
    await first.app.ns.stop()

    restore(db, copy)
    clock.advance(600)
    second = await slack_http(STALE_POLICY, clock=clock, db=db)
    await overspend(second.app, key="k2")  # another #1
    await alerts_of(second).process()
    await fake.wait_for(lambda: len(fake.posts(ALERTS)) == 2)
    new_ts = fake.posts(ALERTS)[1].response["ts"]

    await click(second, "alert_ack", ALERTS, old_ts, user=ADMIN)
    assert await answer(second, ADMIN) == (
        "This message is about an alert #1 (it fired 00:00) that this database does not have:"
        " #1 is another alert now (was Nightshift restored from an older copy?). Nothing"
        " changed; `/agent alerts` lists the open alerts, with their own buttons."
    )
    [(acked,)] = await second.app.store.fetch("SELECT acked_at FROM alerts WHERE id = 1")
    assert acked is None and await audit(second.app, "alert.ack") == []
    for action_id in ("alert_resolve", "alert_escalate", "alert_silence_1h"):
        await click(second, action_id, ALERTS, old_ts, user=ADMIN)
    await fake.wait_for(lambda: len(fake.responses[ADMIN]) == 4)
    assert all(r["text"].startswith("This message is about") for r in fake.responses[ADMIN])
    [(resolved, silenced)] = await second.app.store.fetch(
        "SELECT resolved_at, silence_id FROM alerts WHERE id = 1"
    )
    assert (resolved, silenced) == (None, None)
    await click(second, "alert_ack", ALERTS, new_ts, user=ADMIN)  # its own message: taken
    assert (await answer(second, ADMIN, 5)).startswith("👀 you acknowledged #1 at 00:10")


async def test_a_button_whose_tag_is_not_a_time_is_refused_and_changes_nothing(slack_http):
    """A button value is ours, signed by Slack; still, a tag of 20 digits (no instant
    Python can read) is said to name no alert, and nothing is acknowledged."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    ts = await p1_posted(slack)
    for n, value in enumerate(("1~" + "9" * 20, "1~", "1~12a", "1~" + "9" * 13), start=1):
        await click(slack, "alert_ack", ALERTS, ts, user=ADMIN, value=value)
        said = await answer(slack, ADMIN, n)
        assert said == "this button does not name an alert" or said.startswith(
            "This message is about an alert #1"
        ), (value, said)
    [(acked,)] = await slack.app.store.fetch("SELECT acked_at FROM alerts WHERE id = 1")
    assert acked is None
