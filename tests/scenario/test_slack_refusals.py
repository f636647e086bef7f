"""When Slack refuses a delivery for good (audit20 slack 1-3): the chain moves on, a
deleted alert message is posted again, refused blocks fall back to text, an alerts
channel that refuses every post is reported to a person.

The real app in HTTP mode against the fake Slack (tests.fakes.slack_api), on a
ManualClock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.alerts.refused import Memory, channel_refused
from guards.clock import ManualClock
from tests.scenario.test_alerts import ALERTS, POLICY, alerts_of, dms, overspend

GONE = "U0GONE"
CHAIN: dict[str, Any] = {
    **POLICY,
    "oncall": {
        "rotations": [
            {"name": "primary", "users": [GONE], "start": "2025-12-29"},
            {"name": "secondary", "users": ["U04"], "start": "2025-12-29"},
        ],
        "escalation": [
            {"notify": "rotation:primary", "after": "0m"},
            {"notify": "rotation:secondary", "after": "5m"},
        ],
    },
}


def thread_replies(fake: Any) -> list[str]:
    return [str(c.args.get("text")) for c in fake.posts(ALERTS) if c.args.get("thread_ts")]


async def outbox_failed(app: Any) -> int:
    rows = await app.store.fetch("SELECT COUNT(*) FROM outbox WHERE state = 'failed'")
    return int(rows[0][0])


async def test_a_page_refused_for_good_takes_the_next_step_at_once_and_says_so(slack_http):
    """audit20 slack 1: the primary's DM refused (user_not_found): the secondary was paged
    only 5 minutes later, and nobody in Slack was told the page failed."""
    slack = await slack_http(CHAIN, clock=ManualClock())
    fake, app = slack.fake, slack.app
    fake.refuse[GONE] = "user_not_found"
    await overspend(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: dms(fake, "U04"), within=3)  # no time passed: at once
    assert "secondary, step 2 of 2" in dms(fake, "U04")[0].args["text"]
    await fake.wait_for(lambda: thread_replies(fake), within=3)
    [note] = thread_replies(fake)
    assert f"<@{GONE}>" in note and "user_not_found" in note and "<@U04>" in note


async def test_a_refused_page_whose_next_step_pages_nobody_does_not_say_the_channel(
    slack_http, fake_slack
):
    """review21 L2: the refused page's note said "the channel is told" of a next step
    that paged nobody (everyone in its rotation left the workspace)."""
    policy = {**CHAIN, "oncall": {**CHAIN["oncall"]}}
    policy["oncall"]["escalation"] = [
        *CHAIN["oncall"]["escalation"],
        {"notify": "channel", "after": "10m"},
    ]
    fake_slack.users["U04"] = {"deleted": True}
    slack = await slack_http(policy, clock=ManualClock())
    fake, app = slack.fake, slack.app
    fake.refuse[GONE] = "user_not_found"
    await overspend(app)
    await alerts_of(slack).process()
    # the refused page's note, the nobody step's note, the channel's step (at once too)
    await fake.wait_for(lambda: len(thread_replies(fake)) == 3, within=3)
    [refused] = [t for t in thread_replies(fake) if t.startswith("⚠️ The page to")]
    assert refused.endswith("The next step is taken now: it pages nobody."), refused
    [nobody] = [t for t in thread_replies(fake) if "pages nobody:" in t]
    assert nobody.startswith("⚠️ Step 2 of 3 pages nobody: everyone in rotation secondary left")
    assert [t for t in thread_replies(fake) if t.startswith("<!channel> P0 #1")]


async def both_pages_refused(slack_http: Any, policy: dict[str, Any]) -> Any:
    """A P0 whose two pages Slack refuses, both thread notes said; the app under test."""
    slack = await slack_http(policy, clock=ManualClock())
    slack.fake.refuse[GONE] = "user_not_found"
    slack.fake.refuse["U04"] = "user_disabled"
    await overspend(slack.app)
    await alerts_of(slack).process()
    await slack.fake.wait_for(lambda: len(thread_replies(slack.fake)) == 2, within=3)
    return slack


async def test_when_the_last_step_is_refused_too_the_thread_says_nobody_could_be_paged(slack_http):
    slack = await both_pages_refused(slack_http, CHAIN)
    first, last = thread_replies(slack.fake)
    assert f"<@{GONE}>" in first and "<@U04>" in first
    assert "<@U04>" in last and "user_disabled" in last and "nobody could be paged" in last


async def test_a_refused_last_step_does_not_start_the_next_round_early(slack_http):
    """review20 M2: a refused page on a round's last step started the next round at once:
    with every DM refused, all the rounds (up to 100) burst out in seconds."""
    repeating = {**CHAIN, "alerts": {"repeat_escalation": 3, "repeat_escalation_after": "15m"}}
    slack = await both_pages_refused(slack_http, repeating)
    await alerts_of(slack).process()  # whatever is due now is taken: no second round
    rows = await slack.app.store.fetch("SELECT step, target FROM escalations ORDER BY id")
    assert [(r["step"], r["target"]) for r in rows] == [(0, GONE), (1, "U04")]
    last = thread_replies(slack.fake)[1]
    assert "That was this round's last step; the chain starts again at 00:15" in last, last


def alert_posts(fake: Any) -> list[Any]:
    return [c for c in fake.posts(ALERTS) if not c.args.get("thread_ts")]


async def failed_total(app: Any, method: str = "chat.update") -> float:
    text = (await app.request("GET", "/metrics")).text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith(f'nightshift_outbox_failed_total{{method="{method}"}}')
    )
    return float(line.split()[-1])


async def test_a_deleted_alert_message_is_posted_again_and_not_counted_as_failed(slack_http):
    """audit20 slack 3: after someone deleted the alert's message, every update failed for
    good (`message_not_found`), the alert was never shown again, and the failures filled
    `/agent status` and `nightshift_outbox_failed_total`."""
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await overspend(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: alert_posts(fake))
    old_ts = alert_posts(fake)[0].response["ts"]
    fake.forget(ALERTS, old_ts)

    reply = await slack.command("ack 1")
    assert "cknowledged" in str(reply), reply
    await fake.wait_for(lambda: len(alert_posts(fake)) == 2, within=3)
    new = alert_posts(fake)[1]
    assert "Breaker opened" in new.args["text"]
    new_ts = new.response["ts"]
    assert new_ts != old_ts

    await slack.command("silence 1 1h")  # a later update goes to the new message
    await fake.wait_for(
        lambda: any(c.args.get("ts") == new_ts for c in fake.calls_of("chat.update", ok=True)),
        within=3,
    )
    assert await outbox_failed(app) == 0

    assert await failed_total(app) == 0
    status = (await slack.command("status"))["text"]
    assert "failed for good" not in str(status)

    # deleted again within the hour (something deletes the bot's posts): not a post per
    # update for ever; the edit fails as any other (review20 L4)
    fake.forget(ALERTS, new_ts)
    await slack.command("silence 1 off")
    for _ in range(300):
        if await outbox_failed(app) == 1:
            break
        await asyncio.sleep(0.01)
    assert await outbox_failed(app) == 1
    assert len(alert_posts(fake)) == 2


async def test_refused_blocks_are_sent_again_as_text_alone(slack_http, caplog):
    """audit20 slack 2: one `invalid_blocks` lost the alert's post for good, though its
    `text` alone would have been taken."""
    slack = await slack_http({**POLICY, "oncall": {}}, clock=ManualClock())
    fake, app = slack.fake, slack.app
    fake.fail("chat.postMessage", status=200, retry_after=None, error="invalid_blocks")
    with caplog.at_level(logging.WARNING):
        await overspend(app)
        await alerts_of(slack).process()
        await fake.wait_for(lambda: alert_posts(fake), within=3)
    [post] = alert_posts(fake)
    assert "Breaker opened" in post.args["text"] and not post.args.get("blocks")
    assert await outbox_failed(app) == 0
    assert any(
        r.levelno == logging.WARNING and "invalid_blocks" in r.getMessage() for r in caplog.records
    )


async def test_a_message_slack_finds_too_long_is_sent_again_as_its_text_cut(fake_slack):
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.deliver import TEXT_ALONE, SlackDeliverer
    from tests.fakes.slack_api import BOT_TOKEN

    deliver = SlackDeliverer(AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.url)).deliver
    posted = await deliver("chat.postMessage", {"channel": "C1", "text": "x"})
    fake_slack.fail("chat.update", status=200, retry_after=None, error="msg_too_long")
    args: dict[str, Any] = {"channel": "C1", "ts": posted.ts, "text": "y" * 5000, "blocks": []}
    await deliver("chat.update", args)
    sent = fake_slack.calls_of("chat.update", ok=True)[0].args
    assert sent["blocks"] == [] and len(sent["text"]) == TEXT_ALONE
    assert sent["text"].endswith("…")


async def test_a_teams_own_channel_refused_names_the_key_that_sends_alerts_there(
    slack_http, tmp_path
):
    """audit23 tenants F2: a team's channel (`channels.alerts_by_scope`) archived, the DM
    said to change `channels.alerts`, which does not move that team's alerts."""
    team = "C0TEAM"
    policy = {**POLICY, "channels": {"alerts": ALERTS, "alerts_by_scope": {"acme": team}}}
    slack = await slack_http(policy, clock=ManualClock(), db=tmp_path / "team.db")
    slack.fake.refuse[team] = "is_archived"
    await overspend(slack.app)
    await alerts_of(slack).process()

    def reports() -> list[str]:
        return [t for t in slack.fake.texts("U01") if "are refused by Slack" in t]

    await slack.fake.wait_for(lambda: reports(), within=3)
    [report] = reports()
    assert report.startswith(f"⚠️ Alerts to <#{team}> are refused by Slack (is_archived):")
    assert "name another channel in the policy (channels.alerts_by_scope.acme)" in report


async def test_an_alerts_channel_that_refuses_posts_is_reported_once_an_hour(slack_http, tmp_path):
    """audit20 slack 2: with the alerts channel archived, nobody in Slack was told; a P1
    stayed unseen for 30 minutes, a P2 until the digest."""
    db = tmp_path / "archived.db"
    clock = ManualClock()
    first = await slack_http(POLICY, clock=clock, db=db)
    fake = first.fake
    fake.refuse[ALERTS] = "is_archived"

    def reports() -> list[str]:
        return [t for t in fake.texts("U01") if "are refused by Slack" in t]

    await overspend(first.app)
    await alerts_of(first).process()
    await fake.wait_for(lambda: reports(), within=3)
    [report] = reports()
    assert report.startswith(f"⚠️ Alerts to <#{ALERTS}> are refused by Slack (is_archived):")
    assert "unarchive it or name another channel in the policy (channels.alerts)" in report
    await first.app.ns.stop()

    clock.advance(10 * 60)  # a restart posts it again, refused again: not said again
    second = await slack_http(POLICY, clock=clock, db=db)
    await fake.wait_for(
        lambda: (
            len([c for c in fake.calls_of("chat.postMessage") if c.args["channel"] == ALERTS]) >= 2
        ),
        within=3,
    )
    await second.app.ns.extras["outbox"].drain(0.2)
    assert len(reports()) == 1

    clock.advance(3600)  # an hour later it is said again (here: the bot removed)
    engine = alerts_of(second).engine
    await second.app.store.write(
        lambda tx: channel_refused(engine, tx, ALERTS, "not_in_channel", Memory())
    )
    await fake.wait_for(lambda: len(reports()) == 2, within=3)
    assert "invite the bot" in reports()[1]


async def test_the_default_alerts_channel_refused_is_named_not_linked(slack_http, tmp_path):
    """audit24 claims C2: with no `channels:` (alerts go to `#alerts`) the DM said
    "Alerts to <##alerts>": `<#…>` links a channel id, and a name in it shows as is."""
    policy = {k: v for k, v in POLICY.items() if k not in ("channels", "oncall")}
    slack = await slack_http(policy, clock=ManualClock(), db=tmp_path / "default.db")
    slack.fake.refuse["#alerts"] = "is_archived"
    await overspend(slack.app)
    await alerts_of(slack).process()

    def reports() -> list[str]:
        return [t for t in slack.fake.texts(POLICY["admins"][0]) if "are refused by Slack" in t]

    await slack.fake.wait_for(lambda: reports(), within=3)
    [report] = reports()
    assert report.startswith("⚠️ Alerts to #alerts are refused by Slack (is_archived):"), report
