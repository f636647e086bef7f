"""Acknowledge all on an alert storm summary, as signed block_actions against the real app.

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock (starts
2026-01-01 00:00 UTC). Agents trip on spend at once (a P0 each); with
``alerts.fold_after: 3`` the first three pages and posts of a lane go out on their
own, the rest fold into one "Alert storm" summary per lane. Its Acknowledge all
button acknowledges what it holds, once; the summary then says who did it.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from bot.alerts import operations as ops
from guards.clock import ManualClock
from guards.events import BreakerOpened
from tests.scenario.test_alerts import ALERTS, POLICY, alerts_of, dms, emit
from tests.scenario.test_stale_clicks import answer, audit, buttons, click, message, settled
from tests.scenario.test_unsilence_button import until

ADMIN = "U0ADMIN"
STRANGER = "U0STRANGER"
STORM_POLICY: dict[str, Any] = {
    **POLICY,
    "alerts": {
        "update_interval_seconds": "30s",
        "repeat_escalation": 0,
        "fold_after": 3,
        "fold_pages_after": 0,  # pages follow fold_after, as posts do
    },
}
TEAMS = 4  # the mixed storm: each team's alerts post to its own channel, three each


def team_channel(team: int) -> str:
    return f"C0TEAM{team}"


MIXED_POLICY: dict[str, Any] = {
    **STORM_POLICY,
    "channels": {
        "alerts": ALERTS,
        "alerts_by_scope": {f"acme/team-{t}": team_channel(t) for t in range(TEAMS)},
    },
}


# -- helpers ------------------------------------------------------------------------------


async def storm(app: Any, scopes: list[str]) -> None:
    """Every agent of ``scopes`` trips on spend at once; the engine takes them in one go."""
    now = app.clock.now()
    await emit(app, *(BreakerOpened(at=now, scope=s, trip="spend", reason="r") for s in scopes))
    await alerts_of_app(app).process()


def alerts_of_app(app: Any) -> Any:
    return app.ns.extras["alerts"]


def summary_in(slack: Any, channel: str) -> str | None:
    """The ts of the storm summary posted to ``channel`` (None: not yet)."""
    posts = [c for c in slack.fake.posts(channel) if "Alert storm" in str(c.args.get("text"))]
    return str(posts[0].response["ts"]) if posts else None


async def summary_of(slack: Any, channel: str) -> str:
    await slack.fake.wait_for(lambda: summary_in(slack, channel) is not None)
    return str(summary_in(slack, channel))


async def one_storm(slack: Any, agents: int = 40) -> None:
    """``agents`` agents of one team: both lanes (C0ALERTS, U01's DMs) fold all but 3."""
    await storm(slack.app, [f"acme/team/bot-{i:02d}" for i in range(agents)])


async def acked(app: Any) -> dict[int, tuple[str | None, bool]]:
    """``{alert id: (acked_by, escalation still armed)}``."""
    rows = await app.store.fetch("SELECT id, acked_by, esc_at IS NOT NULL FROM alerts")
    return {int(r[0]): (r[1], bool(r[2])) for r in rows}


def context_lines(msg: dict[str, Any]) -> list[str]:
    return [e["text"] for b in msg["blocks"] if b["type"] == "context" for e in b["elements"]]


async def summary_edits(app: Any) -> list[str]:
    """The chat.update rows queued for storm summaries."""
    rows = await app.store.fetch(
        "SELECT args FROM outbox WHERE method = 'chat.update' AND args LIKE '%$ref:fold:%'"
    )
    return [str(r[0]) for r in rows]


# -- the click ----------------------------------------------------------------------------


async def test_acknowledge_all_takes_the_storm_stops_its_chains_and_edits_every_message(
    slack_http,
):
    """12 agents of 4 teams: each team channel posts its 3 alerts on its own, U01 is paged
    for 3 and the other 9 fold into one page summary. U01 clicks Acknowledge all in it: it
    takes the 9 and the storm's first 3 pages (FR4 item 2: their chains went on, and paged
    U04 five minutes later, although U01 acknowledged "all")."""
    slack = await slack_http(MIXED_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await storm(app, [f"acme/team-{t}/bot-{i}" for t in range(TEAMS) for i in range(3)])
    ts = await summary_of(slack, "U01")
    shown = message(slack, "U01", ts)
    assert shown["text"].startswith("🔴 Alert storm · 9 alerts")
    assert shown["blocks"][1]["text"]["text"].endswith(
        " Acknowledge all takes this storm's first 3 pages above too (`#1`, `#2`, `#3`)."
    )
    value, block_id = buttons(shown)["storm_ack"]
    assert block_id == "storm" and value.startswith("fold:pages:U01:")  # the ref, not ids
    assert [a for a in buttons(shown)] == ["storm_ack"]
    await settled(slack)  # every post and page is out: their edits can be told apart
    updates_before = len(fake.calls_of("chat.update"))

    app.clock.advance(120)
    await click(slack, "storm_ack", "U01", ts, user="U01")
    assert await answer(slack, "U01") == (
        "✅ you acknowledged 12 alerts of this storm (9 here and the 3 pages before) at 00:02."
    )
    state = await acked(app)
    assert {i for i, (by, _) in state.items() if by == "U01"} == set(range(1, 13))
    assert not any(armed for _, armed in state.values())  # their chains stopped

    # the summary says who took how many, and its button is gone
    await fake.wait_for(lambda: "storm_ack" not in buttons(message(slack, "U01", ts)))
    after = message(slack, "U01", ts)
    assert after["blocks"][:-1] == shown["blocks"][:-1]  # what it listed stays
    # headed "9 alerts", it says which 12 it took (recheck27 Kd: "199 alerts" read "✅ 201")
    said = "✅ 12 acknowledged (9 here and the 3 pages before) by <@U01> at 00:02"
    assert context_lines(after)[-1] == said
    assert after["text"].endswith(f" [{said}]")
    # each alert's own channel message shows its acknowledgement, as a single ack does
    await settled(slack)
    for team in range(1, TEAMS):
        for call in fake.posts(team_channel(team)):
            msg = message(slack, team_channel(team), call.response["ts"])
            assert "acknowledged by <@U01> at 00:02" in json.dumps(msg["blocks"])
            assert "alert_ack" not in buttons(msg)
    edits = fake.calls_of("chat.update")[updates_before:]
    # the summary, the channel post of each alert it took, the first pages themselves
    assert len(edits) == 1 + 12 + 3
    for call in dms(fake, "U01")[:3]:
        first = message(slack, "U01", call.response["ts"])
        assert "acknowledged by <@U01> at 00:02" in json.dumps(first["blocks"])

    # one audit row per alert, as acking each one writes, and one for the click
    rows = await app.store.fetch("SELECT actor, target FROM audit WHERE action = 'alert.ack'")
    assert [r[0] for r in rows] == ["U01"] * 12
    assert [r[1].split(" ")[0] for r in rows] == [f"#{i}" for i in range(1, 13)]
    # (with the split its line says: recheck28 Kb L2)
    split = "12 acknowledged (9 here and the 3 pages before)"
    assert await audit(app, "alert.ack_storm") == [("U01", None, None, split)]
    times = await app.store.fetch("SELECT DISTINCT acked_at FROM alerts WHERE acked_at IS NOT NULL")
    assert len(times) == 1  # one write took them all

    # nobody is paged next: not U04 for the first three either
    app.clock.advance(5 * 60)
    await alerts_of(slack).tick()
    await settled(slack)
    assert dms(fake, "U04") == []
    assert await app.store.fetch("SELECT alert_id FROM escalations WHERE step = 1") == []


async def test_acknowledge_all_skips_and_counts_what_was_handled_before(slack_http):
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await one_storm(slack)  # #4-#40 in the channel's summary and in U01's
    ts = await summary_of(slack, ALERTS)
    page = await summary_of(slack, "U01")  # both sent: what they hold is settled
    engine = alerts_of(slack).engine
    for alert_id in (5, 6):
        await app.store.write(
            lambda tx, a=alert_id: ops.resolve(engine, tx, alert_id=a, actor=ADMIN)
        )
    done = await slack.command("ack 7", user="U02")
    assert "acknowledged #7" in done["text"], done
    blocks = message(slack, ALERTS, ts)["blocks"]

    app.clock.advance(60)
    await click(slack, "storm_ack", ALERTS, ts, user=ADMIN)  # an admin, not on call
    assert await answer(slack, ADMIN) == (
        "✅ you acknowledged 34 alerts of this storm at 00:01;"
        " 1 was already acknowledged by <@U02>; 2 were already resolved."
    )
    line = (
        "✅ 34 acknowledged by <@U0ADMIN> at 00:01; 1 was already acknowledged by <@U02>;"
        " 2 were already resolved"
    )
    await fake.wait_for(lambda: context_lines(message(slack, ALERTS, ts))[-1] == line)
    state = await acked(app)
    assert state[7] == ("U02", False) and state[5][0] is None and state[6][0] is None
    assert sum(by == ADMIN for by, _ in state.values()) == 34

    # U01's page summary held the same alerts: none is left open, so its button goes too
    page_line = (
        "✅ all 37 alerts handled by 00:01: 35 acknowledged by <@U0ADMIN> and <@U02>, 2 resolved"
    )
    await fake.wait_for(lambda: context_lines(message(slack, "U01", page))[-1] == page_line)
    assert "storm_ack" not in buttons(message(slack, "U01", page))

    # a second click, on the summary as it was, changes nothing
    await settled(slack)
    updates = len(fake.calls_of("chat.update"))
    await click(slack, "storm_ack", ALERTS, ts, user="U01", blocks=blocks)
    assert await answer(slack, "U01") == (
        "Nothing to acknowledge in this storm: all 37 of its alerts are already handled"
        " (35 acknowledged by <@U0ADMIN> and <@U02>, 2 resolved). Nothing changed."
    )
    await settled(slack)
    assert len(fake.calls_of("chat.update")) == updates
    assert len(await audit(app, "alert.ack_storm")) == 1


async def test_two_clicks_at_once_acknowledge_once(slack_http):
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await one_storm(slack, agents=8)  # #4-#8 folded
    ts = await summary_of(slack, ALERTS)
    blocks = message(slack, ALERTS, ts)["blocks"]
    await asyncio.gather(
        click(slack, "storm_ack", ALERTS, ts, user="U01", blocks=blocks),
        click(slack, "storm_ack", ALERTS, ts, user="U02", blocks=blocks),
    )
    await fake.wait_for(lambda: fake.responses["U01"] and fake.responses["U02"])
    [(by, *_)] = await audit(app, "alert.ack_storm")
    late = "U02" if by == "U01" else "U01"
    assert await answer(slack, by) == "✅ you acknowledged 5 alerts of this storm at 00:00."
    assert await answer(slack, late) == (
        "Nothing to acknowledge in this storm: all 5 of its alerts are already handled"
        f" (5 acknowledged by <@{by}>). Nothing changed."
    )
    await settled(slack)
    edits = await summary_edits(app)
    assert len([e for e in edits if "$ref:fold:posts:" in e]) == 1  # the clicked one, once
    [page] = [e for e in edits if "$ref:fold:pages:" in e]  # U01's held the same five
    assert f"all 5 alerts handled by 00:00: 5 acknowledged by <@{by}>" in page
    assert context_lines(message(slack, ALERTS, ts))[-1] == f"✅ 5 acknowledged by <@{by}> at 00:00"
    assert len(await audit(app, "alert.ack")) == 5


async def test_a_storm_with_one_alert_left_says_so_in_the_singular(slack_http):
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    app = slack.app
    await one_storm(slack, agents=5)  # #4, #5 folded; #1-#3 paged before them
    ts = await summary_of(slack, "U01")
    engine = alerts_of(slack).engine
    for alert_id in (1, 2, 3):  # the storm's first pages, which Acknowledge all takes too
        await app.store.write(
            lambda tx, a=alert_id: ops.resolve(engine, tx, alert_id=a, actor=ADMIN)
        )
    await slack.command("ack 4", user="U01")
    await click(slack, "storm_ack", "U01", ts, user="U02")
    assert await answer(slack, "U02") == (
        "✅ you acknowledged 1 alert of this storm at 00:00; 1 was already acknowledged by"
        " <@U01>; 3 were already resolved (the 3 pages before)."  # (not of its 2: review28 R3 L2)
    )
    await slack.fake.wait_for(
        lambda: (
            context_lines(message(slack, "U01", ts))[-1]
            == "✅ 1 acknowledged by <@U02> at 00:00; 1 was already acknowledged by <@U01>;"
            " 3 were already resolved (the 3 pages before)"
        )
    )
    assert (await acked(app))[5] == ("U02", False)


# -- refusals -----------------------------------------------------------------------------


async def test_garbage_unknown_and_other_refs_are_refused_and_change_nothing(slack_http):
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await one_storm(slack, agents=6)
    ts = await summary_of(slack, ALERTS)
    value = buttons(message(slack, ALERTS, ts))["storm_ack"][0]
    ref, _, tag = value.partition("~")  # the summary's ref, tagged (as a summary's before: not)
    assert tag.isdigit()
    await settled(slack)
    updates = len(fake.calls_of("chat.update"))
    not_a_storm = (  # recheck28 Kb L3: worded as the other refusals, with what to do
        "This button does not name an alert storm summary: nothing changed. `/agent alerts`"
        " lists the open alerts, with their own buttons; `/agent ack <id>` takes one."
    )
    unknown = (
        "this alert storm summary is not known (any more); `/agent alerts` lists the open alerts"
    )
    cases = {
        "": not_a_storm,
        "garbage": not_a_storm,
        "4": not_a_storm,  # an alert id: the Acknowledge button's value
        "alert:1:post": not_a_storm,  # a ref of another kind
        f"nudge:{ref}:2:0": not_a_storm,
        f"{ref}; DROP TABLE alerts": not_a_storm,
        f"{ref}\n": not_a_storm,
        ref.replace("4", "４"): not_a_storm,  # a fullwidth digit
        "fold:pages:U01:" + "9" * 2000: not_a_storm,
        "A" * 5000: not_a_storm,
        "fold:posts:C0ALERTS:999": unknown,
        ref.replace("fold:posts:", "fold:pages:"): unknown,  # no such page summary
        ref + "-1": unknown,
        f"{ref}~": not_a_storm,
        f"{ref}~{tag}x": not_a_storm,
        f"{ref}~{int(tag) + 1}": (
            "This alert storm summary is about alerts this database does not have (was"
            " Nightshift restored from an older copy?). Nothing changed; `/agent alerts`"
            " lists the open alerts, with their own buttons."
        ),
    }
    for n, (value, expected) in enumerate(cases.items(), start=1):
        await click(slack, "storm_ack", ALERTS, ts, value=value)
        assert await answer(slack, ADMIN, n) == expected, value
    await settled(slack)
    assert all(by is None for by, _ in (await acked(app)).values())
    assert await audit(app, "alert.ack") == [] and await audit(app, "alert.ack_storm") == []
    assert len(fake.calls_of("chat.update")) == updates


async def test_a_summary_that_never_reached_slack_is_refused(slack_http):
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    fake.fail("chat.postMessage", status=200, error="channel_not_found", times=100)  # for good
    await one_storm(slack, agents=5)
    rows: list[Any] = []

    async def failed() -> None:
        while not rows:
            rows.extend(
                await app.store.fetch(
                    "SELECT ref FROM outbox WHERE ref LIKE 'fold:posts:%' AND state = 'failed'"
                )
            )
            await asyncio.sleep(0.02)

    await asyncio.wait_for(failed(), 5)
    fake.heal()
    r = await slack.click(  # a click forged with its ref: no such message exists
        action_id="storm_ack",
        value=rows[0][0],
        channel=ALERTS,
        response_url=fake.response_url(ADMIN),
    )
    assert r.status_code == 200
    assert await answer(slack, ADMIN) == (
        "this alert storm summary has not reached Slack; nothing changed"
    )
    assert all(by is None for by, _ in (await acked(app)).values())


async def test_someone_not_on_call_is_refused(slack_http):
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    app = slack.app
    await one_storm(slack, agents=6)
    ts = await summary_of(slack, ALERTS)
    await click(slack, "storm_ack", ALERTS, ts, user=STRANGER)
    assert await answer(slack, STRANGER) == (
        "Only admins and the people on call (rotations, escalation users, overrides)"
        " can acknowledge alerts. Ask <@U0ADMIN>."
    )
    assert all(by is None for by, _ in (await acked(app)).values())
    rows = await app.store.fetch("SELECT actor, action, target FROM audit ORDER BY id")
    assert [tuple(r) for r in rows] == [(STRANGER, "refused", "acknowledge alerts")]
    assert "storm_ack" in buttons(message(slack, ALERTS, ts))


# -- shell mode ---------------------------------------------------------------------------


async def test_shell_shows_acknowledge_all_as_a_numbered_choice(app_factory):
    app = await app_factory(STORM_POLICY, clock=ManualClock())  # no SLACK_*: the shell
    console = app.ns.extras["shell"]
    console.out = out = io.StringIO()
    console.read_input = True  # as on a terminal: someone can type a number
    await storm(app, [f"acme/team/bot-{i}" for i in range(7)])  # #4-#7 folded
    await until(lambda: console.find_button("storm_ack") is not None)
    take = console.find_button("storm_ack")
    assert take is not None and take.value.startswith("fold:")
    assert f"[{take.number}] Acknowledge all" in out.getvalue()

    await console.handle_line(str(take.number))  # the operator types its number
    pages = take.value.startswith("fold:pages:")
    taken = 7 if pages else 4  # (a page summary: #1-#3 too, and it says so)
    split = " (4 here and the 3 pages before)" if pages else ""
    assert (
        f"── only for you ──\n✅ you acknowledged {taken} alerts of this storm{split} at 00:00."
        in out.getvalue()
    )
    await until(lambda: console.find_button("storm_ack", take.value) is None)
    assert f"✅ {taken} acknowledged{split} by @shell at 00:00" in out.getvalue()
    rows = await app.store.fetch("SELECT COUNT(*) FROM alerts WHERE acked_by = 'shell'")
    assert rows[0][0] == taken
