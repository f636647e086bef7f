"""A failed storm page is said where each alert of the storm is seen (closing25, review25
M2): in the thread of each alert posted on its own, and once in the thread of each Slack
storm summary that carried the others' posts. It was said only in the thread of the
alert that began the storm. The whole app in Slack HTTP mode, a real receiver on
127.0.0.1, a real SQLite file, time on a ManualClock."""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Any

from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_stale_clicks import click
from tests.scenario.test_webhook_storms import _secret, agents, storm_events, storm_policy, trip
from tests.scenario.test_webhooks import ALERTS, deliveries, send
from tests.scenario.test_webhooks_failures import until

__all__ = ["_secret", "webhook_receiver"]


async def drained(slack: Any) -> bool:
    [(waiting,)] = await slack.app.store.fetch(
        "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
    )
    return int(waiting) == 0


async def where_seen(slack: Any, storm: int) -> set[str]:
    """The post each alert of ``storm`` is seen in: its own, or its storm summary's."""
    rows = await slack.app.store.fetch(
        "SELECT DISTINCT a.id, a.posted_at, a.folded_into FROM escalations e"
        " JOIN alerts a ON a.id = e.alert_id WHERE e.folded_into = ?",
        (f"hook:{storm}",),
    )
    return {f"alert:{r[0]}:post" if r[1] is not None else str(r[2]) for r in rows}


async def test_a_failed_storm_page_is_said_in_each_of_its_alerts_threads(
    slack_http, webhook_receiver: WebhookReceiver
):
    clock = ManualClock()
    slack = await slack_http(storm_policy(webhook_receiver), clock=clock)
    await trip(slack, agents(0, 3))  # three pages of their own: the webhook's limit
    await send(slack)
    assert await until(lambda: drained(slack), within=10)  # the channel's lane is empty
    webhook_receiver.script = [400]  # the storm's trigger is refused
    await trip(slack, agents(3, 30))  # the rest fold, at the webhook and in the channel
    await send(slack)
    rows = await deliveries(slack)
    [failed] = [r for r in rows if r["storm_id"] is not None]
    assert failed["state"] == "failed"
    seen = await where_seen(slack, 1)
    summaries = {s for s in seen if s.startswith("fold:posts:")}
    assert summaries and len(seen - summaries) >= 2, seen  # (both kinds are checked)
    said = f"⚠️ The page to webhook pager (delivery {failed['id']}) failed: HTTP 400"
    notes = await slack.app.store.fetch(
        "SELECT ref, args FROM outbox WHERE ref LIKE 'webhook:storm:1:failed:%'"
    )
    assert all(said in json.loads(args)["text"] for _, args in notes)
    parents = [json.loads(args)["thread_ts"].removeprefix("$ref:")[:-3] for _, args in notes]
    assert sorted(parents) == sorted(seen)  # each once
    await slack.fake.wait_for(
        lambda: len([t for t in slack.fake.texts() if said in t]) == len(seen)
    )


async def storm_failure_notes(slack: Any, storm: int) -> list[tuple[str, str]]:
    """(thread, ref) of each note queued saying a trigger of ``storm`` failed."""
    ids = await slack.app.store.fetch(
        "SELECT id FROM webhook_deliveries WHERE storm_id = ? AND event = 'trigger'", (storm,)
    )
    said = [f"⚠️ The page to webhook pager (delivery {i}) failed" for (i,) in ids]
    notes = await slack.app.store.fetch("SELECT ref, args FROM outbox WHERE ref IS NOT NULL")
    return [
        (json.loads(args)["thread_ts"].removeprefix("$ref:")[:-3], str(ref))
        for ref, args in notes
        if any(s in json.loads(args).get("text", "") for s in said)
    ]


async def test_a_storm_failing_again_and_again_says_it_once_in_each_thread(
    slack_http, webhook_receiver: WebhookReceiver, tmp_path: Any
):
    """review26 R1 M1: a storm sends one more trigger a minute while pages join it; over a
    dead receiver each failed, and each said so again in every thread the storm had
    reached (78 notes for 12 failed triggers). Now once per storm and thread, a thread
    joining later told once, at the first failure after it joined; a restart between
    repeats nothing (the notes' refs name the storm and the thread)."""
    clock = ManualClock()
    db = tmp_path / "storm.db"
    webhook_receiver.script = [404] * 1000  # the receiver refuses everything
    slack = await slack_http(storm_policy(webhook_receiver), clock=clock, db=db)
    first = 0
    for round_ in range(3):
        if round_ == 2:  # a restart on the same database
            await until(partial(drained, slack), within=20)
            await slack.app.ns.stop()
            slack = await slack_http(storm_policy(webhook_receiver), clock=clock, db=db)
        # 3 pages of their own (the webhook's limit in a minute), then 5 join the storm
        await trip(slack, [f"acme/team/bot-{i:02d}" for i in range(first, first + 8)])
        first += 8
        await send(slack)
        assert await until(partial(drained, slack), within=20)
        clock.advance(61)  # the storm's next trigger (what joined since) is due
        await send(slack)
        assert await until(partial(drained, slack), within=20)
    storm_rows = [r for r in await deliveries(slack) if r["storm_id"] is not None]
    assert {r["storm_id"] for r in storm_rows} == {1}
    assert len(storm_rows) >= 3 and {r["state"] for r in storm_rows} == {"failed"}
    notes = await storm_failure_notes(slack, 1)
    threads = [thread for thread, _ in notes]
    seen = await where_seen(slack, 1)
    assert sorted(threads) == sorted(seen)  # each thread once, however many failed
    assert {ref for _, ref in notes} == {f"webhook:storm:1:failed:{t}" for t in seen}
    ids = {r["id"] for r in storm_rows}
    posted = [
        t
        for t in slack.fake.texts()
        if any(f"webhook pager (delivery {i}) failed" in t for i in ids)
    ]
    assert len(posted) == len(seen), posted  # what Slack got: once per thread


async def test_a_storm_s_triggers_tried_again_say_so_once(
    slack_http, webhook_receiver: WebhookReceiver
):
    """A receiver refusing each trigger of a storm once (one a minute while pages join):
    each said "did not take the page" and "took the page at try 2" again in the thread;
    they are said once per storm (review26 R1 M1, as its failure)."""
    clock = ManualClock()
    slack = await slack_http(storm_policy(webhook_receiver), clock=clock)
    for round_ in range(2):
        first = 8 * round_
        await trip(slack, [f"acme/team/bot-{i:02d}" for i in range(first, first + 3)])
        await send(slack)  # their own pages, taken (the webhook's limit in a minute)
        webhook_receiver.script = [503]  # the storm's next trigger: refused once
        await trip(slack, [f"acme/team/bot-{i:02d}" for i in range(first + 3, first + 8)])
        await send(slack)
        clock.advance(10)
        await send(slack)  # taken at its second try
        clock.advance(61)
    assert await until(lambda: drained(slack), within=20)
    rows = await deliveries(slack)
    storm_rows = [r for r in rows if r["storm_id"] is not None]
    assert [(r["state"], r["attempts"]) for r in storm_rows] == [("delivered", 2)] * 2, rows
    for said in ("did not take the page (delivery {}:", "took the page at try 2 (delivery {})"):
        notes = [
            t for t in slack.fake.texts() if any(said.format(r["id"]) in t for r in storm_rows)
        ]
        assert len(notes) == 1, notes


async def test_an_alert_folded_into_a_failed_storm_page_says_the_page_failed(
    slack_http, webhook_receiver: WebhookReceiver
):
    """recheck26 Kb M1: once the storm's trigger failed for good, the alerts posted on
    their own whose pages it carried still began "📟 Paging via webhook pager…" (their
    own line below said it failed): they say it failed and who is next, as an alert's
    own failed page does; the person is told in the storm's note, not once per alert."""
    clock = ManualClock()
    p = storm_policy(webhook_receiver)  # the webhook first: no person is paged at once
    p["oncall"]["escalation"] = [
        {"notify": "webhook:pager", "after": "0m"},
        {"notify": "rotation:primary", "after": "10m"},
    ]
    slack = await slack_http(p, clock=clock)
    await trip(slack, agents(0, 3))  # three pages of their own: the webhook's limit
    await send(slack)
    assert await until(lambda: drained(slack), within=10)
    webhook_receiver.script = [400]  # the storm's trigger is refused
    await trip(slack, agents(3, 30))
    await send(slack)
    own = [
        int(r[0])
        for r in await slack.app.store.fetch(
            "SELECT DISTINCT a.id FROM escalations e JOIN alerts a ON a.id = e.alert_id"
            " WHERE e.folded_into = 'hook:1' AND a.posted_at IS NOT NULL"
        )
    ]
    assert own, "no alert of the storm is posted on its own"
    clock.advance(30)  # the trailing update
    await slack.app.ns.extras["alerts"].tick()
    failed = "⚠️ The page via webhook pager failed (HTTP 400); "

    def redrawn() -> set[str]:
        # (redrawn at once when the failure is recorded: a post still queued goes out
        # showing it, recheck28 Ka L3)
        calls = slack.fake.calls_of("chat.update", ok=True)
        calls += slack.fake.calls_of("chat.postMessage", ok=True)
        texts = [str(c.args.get("text", "")) for c in calls]
        return {t for t in texts if t.startswith(failed)}

    await slack.fake.wait_for(lambda: len(redrawn()) >= len(own))
    assert not any("Paging via" in t for t in redrawn())
    assert all(" is next: " in t for t in redrawn()), redrawn()
    told = [t for t in slack.fake.texts() if "you are next in its chain" in t]
    assert told == [], told  # (the storm's note in each thread says it failed)


def webhook_first(receiver: WebhookReceiver) -> dict[str, Any]:
    """The storm policy with the webhook first: no person is paged at once."""
    p = storm_policy(receiver)
    p["oncall"]["escalation"] = [
        {"notify": "webhook:pager", "after": "0m"},
        {"notify": "rotation:primary", "after": "10m"},
    ]
    p["webhooks"]["pager"]["timeout"] = "30s"  # (a held trigger waits for the channel)
    return p


async def sent_summary_then_paged(slack: Any, receiver: WebhookReceiver) -> str:
    """30 P0s: 3 page the webhook on their own, the rest in storm 1, whose trigger the
    receiver holds until the channel's summary carrying most of their posts went out.
    Then the receiver answers it. The summary's ts."""
    await trip(slack, agents(0, 3))
    await send(slack)
    assert await until(lambda: drained(slack), within=10)
    receiver.hold = asyncio.Event()
    await trip(slack, agents(3, 30))
    assert await until(lambda: drained(slack), within=20)  # the summary is out, as sent
    [ts] = [
        str(c.response["ts"]) for c in slack.fake.posts(ALERTS) if "Alert storm" in c.args["text"]
    ]
    assert shown(slack, ts)["text"].startswith("📟 Paging via webhook pager… "), shown(slack, ts)
    assert len(storm_events(receiver)) == 1  # (its trigger is held)
    receiver.hold.set()
    return ts


def shown(slack: Any, ts: str) -> dict[str, Any]:
    message: dict[str, Any] = slack.fake.messages[(ALERTS, ts)]
    return message


def page_line(message: dict[str, Any]) -> str:
    [line] = [b["text"]["text"] for b in message["blocks"] if b.get("block_id") == "page"]
    return str(line)


async def test_a_sent_storm_summary_says_its_storm_page_failed_and_who_is_next(
    slack_http, webhook_receiver: WebhookReceiver
):
    """recheck26 Kc M1: a channel's storm summary kept "📟 Paging via webhook pager…" after
    the storm's trigger failed for good, naming nobody next (the alerts' own posts said it
    failed). It is redrawn at once in the own posts' words; Acknowledge all then drops the
    line, as an acknowledged P0's own post drops its own."""
    clock = ManualClock()
    webhook_receiver.script = [200, 200, 200, 400]  # the storm's trigger is refused
    slack = await slack_http(webhook_first(webhook_receiver), clock=clock)
    ts = await sent_summary_then_paged(slack, webhook_receiver)
    failed = "⚠️ The page via webhook pager failed (HTTP 400); <@U0ONCALL> is next: "
    await slack.fake.wait_for(lambda: shown(slack, ts)["text"].startswith(failed), within=10)
    assert page_line(shown(slack, ts)) == failed.removesuffix(" ")
    assert "Paging via" not in json.dumps(shown(slack, ts)), shown(slack, ts)
    await click(slack, "storm_ack", ALERTS, ts, user="U0ONCALL")
    await slack.fake.wait_for(lambda: "acknowledged by <@U0ONCALL>" in shown(slack, ts)["text"])
    after = json.dumps(shown(slack, ts))
    assert "webhook pager" not in after and '"page"' not in after, after


async def test_a_sent_storm_summary_says_its_storm_page_got_through_once(
    slack_http, webhook_receiver: WebhookReceiver
):
    """The same when the storm's trigger got through: "📟 Paged via webhook pager:", one
    edit; the storm's next trigger getting through too edits nothing more. Alerts joining
    the summary (audit27 B2 L5: within a minute, an edit) keep that line."""
    clock = ManualClock()
    slack = await slack_http(webhook_first(webhook_receiver), clock=clock)
    ts = await sent_summary_then_paged(slack, webhook_receiver)
    paged = "📟 Paged via webhook pager: "
    await slack.fake.wait_for(lambda: shown(slack, ts)["text"].startswith(paged), within=10)
    assert page_line(shown(slack, ts)) == paged.removesuffix(" ")
    edits = [c for c in slack.fake.calls_of("chat.update", ok=True) if c.args["ts"] == ts]
    await trip(slack, agents(30, 32))  # join the storm: its next trigger, a minute on
    assert await until(lambda: drained(slack), within=20)
    joined = [c for c in slack.fake.calls_of("chat.update", ok=True) if c.args["ts"] == ts]
    assert [c.args["text"] for c in joined[len(edits) :]] == [  # their posts joined it
        f"{paged}🔴 Alert storm · 26 alerts: 🔴 P0 · *Breaker opened on spend rate* × 26"
    ]
    assert page_line(shown(slack, ts)) == paged.removesuffix(" ")
    clock.advance(61)
    await send(slack)
    assert await until(lambda: drained(slack), within=20)
    assert len(storm_events(webhook_receiver)) == 2
    again = [c for c in slack.fake.calls_of("chat.update", ok=True) if c.args["ts"] == ts]
    assert again == joined, [c.args["text"] for c in again]
