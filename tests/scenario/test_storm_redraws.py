"""A storm summary's redraws (chat.update) when Slack does not take them, on the real app.

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock (starts
2026-01-01 00:00 UTC), ``alerts.fold_after: 3``: ten agents trip on spend at once, U01 is
paged for three on their own and the other seven fold into one page summary. Agents
tripping in the minute after it went out join it by an edit (bot.alerts.folding_join).

- A redraw Slack answers with a 5xx is tried again as any outbox row is (its ``Retry-
  After`` after a 429), and the summary ends up showing it.
- A summary whose message was deleted: its first edit fails and is logged, once; it
  takes no more alerts (they are posted, or paged, on their own) and is edited no more.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.alerts import operations as ops
from bot.alerts.storm_alone import deliver_alone
from guards.clock import ManualClock
from tests.scenario.test_alerts import ALERTS, alerts_of
from tests.scenario.test_stale_clicks import message, settled
from tests.scenario.test_storm_ack import ADMIN, STORM_POLICY, one_storm, storm, summary_of


async def join(slack: Any, agent: str) -> None:
    """One more agent trips: its page joins U01's sent summary by an edit."""
    await storm(slack.app, [agent])
    await settled(slack)


async def deleted_page_summary(slack: Any) -> str:
    """A storm of 10 agents; U01's page summary sent, then deleted in Slack: its ts."""
    await one_storm(slack, agents=10)
    ts = await summary_of(slack, "U01")
    await settled(slack)
    slack.fake.forget("U01", ts)  # someone deleted it
    return str(ts)


async def three_trip(slack: Any) -> None:
    """Three agents trip, one by one, 5 s apart (within the summary's minute)."""
    for i in range(3):
        slack.app.clock.advance(5)
        await join(slack, f"acme/team/bot-late-{i}")


async def test_a_redraw_slack_answers_500_is_tried_again_and_shown(slack_http):
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await one_storm(slack, agents=10)
    ts = await summary_of(slack, "U01")
    await settled(slack)
    assert message(slack, "U01", ts)["text"].startswith("🔴 Alert storm · 7 alerts")
    fake.fail("chat.update", status=500)  # the next call only: then 200
    app.clock.advance(10)
    await storm(app, ["acme/team/bot-late"])
    await fake.wait_for(
        lambda: message(slack, "U01", ts)["text"].startswith("🔴 Alert storm · 8 alerts")
    )
    await settled(slack)
    updates = [c.status for c in fake.calls_of("chat.update") if c.args.get("ts") == ts]
    assert updates == [500, 200]
    rows = await app.store.fetch(
        "SELECT state, attempts FROM outbox WHERE method = 'chat.update'"
        " AND args LIKE '%$ref:fold:pages:U01:%'"
    )
    assert [tuple(r) for r in rows] == [("delivered", 2)]


async def test_a_deleted_summary_is_logged_once_and_takes_no_more_alerts(
    slack_http, caplog: pytest.LogCaptureFixture
):
    """The first agent after the deletion joins it (the edit that finds it gone fails,
    one WARNING); the next two are paged on their own, in the summary's minute (they
    joined it, and were in no message of U01's: review28 R3 M1)."""
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    ts = await deleted_page_summary(slack)
    caplog.set_level(logging.INFO)
    pages = len(fake.posts("U01"))
    await three_trip(slack)
    refused = [c for c in fake.calls_of("chat.update") if c.args.get("ts") == ts]
    assert [c.response.get("error") for c in refused] == ["message_not_found"]
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    [(failed,)] = await app.store.fetch(
        "SELECT id FROM outbox WHERE state = 'failed' AND method = 'chat.update'"
    )
    assert [r.getMessage() for r in warned if "message_not_found" in r.getMessage()] == [
        f"outbox row {failed} (chat.update) failed: Slack error message_not_found"
    ]
    said = [r.getMessage() for r in caplog.records if r.name == "bot.alerts.storm_gone"]
    assert len(said) == 1 and said[0].startswith("alert storm summary fold:pages:U01:")
    late = await app.store.fetch(
        "SELECT e.folded_into FROM escalations e JOIN alerts a ON a.id = e.alert_id"
        " WHERE a.scope LIKE 'acme/team/bot-late-%' ORDER BY a.id"
    )
    assert [r[0] is None for r in late] == [False, True, True]
    # recheck28 Kb M1: the first one's page, which only the refused edit carried, is
    # paged on its own (it reached nobody until its chain's next step), once
    posted = fake.posts("U01")[pages:]
    assert [c.args["text"].split(" — ")[-1] for c in posted] == [
        "acme/team/bot-late-0: r",
        "acme/team/bot-late-1: r",
        "acme/team/bot-late-2: r",
    ]
    gone = "the alert storm summary that carried this page was deleted in Slack"
    assert gone in str(posted[0].args["blocks"])
    [(first,)] = await app.store.fetch("SELECT id FROM alerts WHERE scope = 'acme/team/bot-late-0'")
    story = (await slack.command(f"alert {first}", user=ADMIN))["text"]
    assert "sent in a storm summary" not in story
    assert (
        "— its storm summary was deleted in Slack before it showed it: paged on its own at" in story
    )


async def test_a_delivery_that_raises_leaves_the_summary_to_the_next_refused_edit(
    slack_http, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """review28 R7 L5: delivering what the deleted summary never showed raised once; the
    hook's work was undone but its edit still failed as the gone mark, so that page was
    never delivered. Now neither holds: the next agent's edit finds it gone and both
    pages go out on their own, once; the one after is paged on its own too."""
    import bot.alerts.refused

    def raising_once(*args: Any, **kwargs: Any) -> list[int]:
        monkeypatch.setattr(bot.alerts.refused, "deliver_alone", deliver_alone)
        raise RuntimeError("delivery broke")

    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    ts = await deleted_page_summary(slack)
    monkeypatch.setattr(bot.alerts.refused, "deliver_alone", raising_once)
    caplog.set_level(logging.INFO)
    pages = len(fake.posts("U01"))
    await three_trip(slack)
    refused = [c for c in fake.calls_of("chat.update") if c.args.get("ts") == ts]
    assert [c.response.get("error") for c in refused] == ["message_not_found"] * 2
    posted = fake.posts("U01")[pages:]
    assert sorted(c.args["text"].split(" — ")[-1] for c in posted) == [
        "acme/team/bot-late-0: r",
        "acme/team/bot-late-1: r",
        "acme/team/bot-late-2: r",
    ]
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    [broke] = [m for m in warned if "delivery broke" in m]
    assert "the next refused edit of it tries again" in broke
    rows = await app.store.fetch(
        "SELECT last_error FROM outbox WHERE state = 'failed' AND method = 'chat.update'"
        " ORDER BY id"
    )
    assert [r[0].endswith("message_not_found") for r in rows] == [False, True]


async def test_a_deleted_channel_summary_takes_no_alert_and_no_edit(slack_http):
    """review28 R3 H1 and M1 on the channel's summary: deleted, then an agent's post
    joins it (its edit finds it gone); a P0 within its minute is posted on its own. All
    it holds are acknowledged, then resolved, one by one: no edit of it is sent again
    (each was one more refused chat.update in the channel's lane), and its "handled"
    state is not lost: a P0 after that is posted on its own too."""
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await one_storm(slack, agents=10)
    ts = await summary_of(slack, ALERTS)
    await settled(slack)
    app.clock.advance(5)
    await storm(app, ["acme/team/bot-seen"])  # joins it: its edit goes through
    await settled(slack)
    assert message(slack, ALERTS, ts)["text"].split(": ")[0].endswith("8 alerts")
    fake.forget(ALERTS, ts)
    posts = len(fake.posts(ALERTS))
    app.clock.advance(5)
    await storm(app, ["acme/team/bot-late"])  # joins it: its edit finds it gone
    await settled(slack)
    # recheck28 Kb M1: the alert only that refused edit carried is posted on its own,
    # once; the one an edit that went through showed stays as it is (it was seen)
    [alone] = fake.posts(ALERTS)[posts:]
    assert alone.args["text"].endswith("acme/team/bot-late: r")
    seen, late = await app.store.fetch(
        "SELECT id, posted_at IS NULL FROM alerts WHERE scope IN"
        " ('acme/team/bot-seen', 'acme/team/bot-late') ORDER BY id"
    )
    assert (seen[1], late[1]) == (1, 0)
    story = (await slack.command(f"alert {late[0]}", user=ADMIN))["text"]
    assert "carried it" not in story
    assert (
        "Its message: <#C0ALERTS>, posted on its own: its storm summary was deleted in Slack"
        " before it showed it" in story
    )
    assert "posted in <#C0ALERTS> on its own: its storm summary was deleted in Slack" in story
    story = (await slack.command(f"alert {seen[0]}", user=ADMIN))["text"]
    assert "a storm summary in the alerts channel carried it" in story
    engine = alerts_of(slack).engine
    ref = f"fold:posts:{ALERTS}:4"  # found gone again (a restart's retry): nothing twice
    again = await app.store.write(lambda tx: deliver_alone(engine, tx, ref, now=tx.clock.now()))
    assert again == []
    posts = len(fake.posts(ALERTS))
    app.clock.advance(5)
    await storm(app, ["acme/team/bot-later"])
    await settled(slack)
    [mine] = fake.posts(ALERTS)[posts:]
    assert mine.args["text"].startswith("<@U01> 🔴 P0 · Breaker opened on spend rate")
    assert mine.args["text"].endswith("acme/team/bot-later: r")

    def updates() -> int:
        return len([c for c in fake.calls_of("chat.update") if c.args.get("ts") == ts])

    assert updates() == 2  # the join that went through, the one that found it gone
    rows = await app.store.fetch(
        "SELECT id FROM alerts WHERE folded_into LIKE 'fold:posts:%' ORDER BY id"
    )
    held = [int(r[0]) for r in rows]
    assert len(held) == 9  # #4-#10 and the two that joined
    for a in held:
        await app.store.write(lambda tx, a=a: ops.ack(engine, tx, alert_id=a, actor=ADMIN))
        await settled(slack)
    for a in held:
        await app.store.write(lambda tx, a=a: ops.resolve(engine, tx, alert_id=a, actor=ADMIN))
        await settled(slack)
    assert updates() == 2
    posts = len(fake.posts(ALERTS))
    app.clock.advance(10)  # (still within the summary's minute)
    await storm(app, ["acme/team/bot-last"])
    await settled(slack)
    [last] = fake.posts(ALERTS)[posts:]
    assert last.args["text"].endswith("acme/team/bot-last: r")
    row = await app.store.fetch("SELECT folded_into FROM alerts ORDER BY id DESC LIMIT 1")
    assert row[0][0] is None


async def test_the_channel_step_of_a_deleted_summary_is_a_post_naming_what_is_open(slack_http):
    """recheck28 Kb L4: the channel step of an alert a deleted channel summary showed
    was a reply in that summary's (gone) thread, "#201 … and others" though it was the
    only one open. It is a post in the channel, naming only what is open."""
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await one_storm(slack, agents=10)
    ts = await summary_of(slack, ALERTS)
    await settled(slack)
    fake.forget(ALERTS, ts)
    app.clock.advance(5)
    await storm(app, ["acme/team/bot-late"])  # its edit finds it gone
    await settled(slack)
    engine = alerts_of(slack).engine
    rows = await app.store.fetch(
        "SELECT id FROM alerts WHERE folded_into LIKE 'fold:posts:%' AND posted_at IS NULL"
        " ORDER BY id"
    )
    held = [int(r[0]) for r in rows]
    for a in held[1:]:  # all but the first are taken
        await app.store.write(lambda tx, a=a: ops.ack(engine, tx, alert_id=a, actor=ADMIN))
    await settled(slack)
    posts = len(fake.posts(ALERTS))
    app.clock.advance(15 * 60)
    await alerts_of(slack).tick()
    await settled(slack)
    nudges = [c for c in fake.posts(ALERTS)[posts:] if "<!channel>" in c.args["text"]]
    [nudge] = [c for c in nudges if f"#{held[0]} " in c.args["text"]]
    assert "thread_ts" not in nudge.args
    text = nudge.args["text"]
    assert text.startswith(f"<!channel> P0 #{held[0]} Breaker opened on spend rate on acme/")
    assert "is unacknowledged since 00:00 (its alert storm summary was deleted in Slack)" in text
    assert "and others" not in text
    assert not [c for c in fake.calls_of("chat.postMessage") if c.args.get("thread_ts") == ts]


async def test_what_a_deleted_summary_never_showed_goes_by_the_folding_rule(slack_http):
    """review28 R7 H1: 40 agents trip together while U01's page summary and the channel's
    summary are deleted: one join edit each carries the 40, finds its summary gone, and
    the 40 were each paged and posted on their own (40 DMs, 40 posts each mentioning
    <@U01>). They go by the lanes' fold_after (3) as any alert does: three on their own,
    the rest in one new summary per lane, which the next alerts join."""
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await one_storm(slack, agents=10)
    page_ts, post_ts = await summary_of(slack, "U01"), await summary_of(slack, ALERTS)
    await settled(slack)
    fake.forget("U01", page_ts)
    fake.forget(ALERTS, post_ts)
    dms, posts = len(fake.posts("U01")), len(fake.posts(ALERTS))
    app.clock.advance(5)
    await storm(app, [f"acme/team/bot-late-{i:02d}" for i in range(40)])
    await settled(slack)
    new_dms, new_posts = fake.posts("U01")[dms:], fake.posts(ALERTS)[posts:]
    assert [c.args["text"].startswith("🔴 Alert storm · 37 alerts") for c in new_dms] == [
        False,
        False,
        False,
        True,
    ]
    assert len(new_posts) == 4 and "🔴 Alert storm · 37 alerts" in new_posts[3].args["text"]
    gone = "the alert storm summary that carried this page was deleted in Slack"
    assert all(gone in str(c.args["blocks"]) for c in new_dms[:3])
    rows = await app.store.fetch(
        "SELECT a.folded_into, e.folded_into, a.posted_at IS NULL FROM alerts a"
        " JOIN escalations e ON e.alert_id = a.id"
        " WHERE a.scope LIKE 'acme/team/bot-late-%' ORDER BY a.id"
    )
    post_refs = {r[0] for r in rows[3:]}
    page_refs = {r[1] for r in rows[3:]}
    assert len(post_refs) == 1 and len(page_refs) == 1  # one new summary per lane
    assert [bool(r[2]) for r in rows] == [False] * 3 + [True] * 37
    app.clock.advance(5)  # the next agent joins the new summaries, not the gone ones
    await storm(app, ["acme/team/bot-later"])
    await settled(slack)
    assert len(fake.posts("U01")) == dms + 4 and len(fake.posts(ALERTS)) == posts + 4
    later = await app.store.fetch(
        "SELECT a.folded_into, e.folded_into FROM alerts a JOIN escalations e"
        " ON e.alert_id = a.id WHERE a.scope = 'acme/team/bot-later'"
    )
    assert tuple(later[0]) == (post_refs.pop(), page_refs.pop())
