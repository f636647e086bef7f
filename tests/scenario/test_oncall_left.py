"""On-call people who left the workspace (audit20 slack H1): Slack accepts a DM to a
deactivated account (``ok: true``, nobody reads it), so Nightshift looks the rotation's
users up with ``users.info`` and passes over the ones who left."""

from __future__ import annotations

import json
import logging
from typing import Any

from tests.fakes.slack_api import FakeSlack
from tests.scenario.test_slack_commands import ADMIN, spend
from tests.scenario.test_stale_clicks import answer, audit, click

ROTATION = {"handoff": "mon 00:00", "start": "2025-12-29"}  # the clock's week: the first user's


def policy(**oncall: Any) -> dict[str, Any]:
    return {
        "admins": [ADMIN],
        "oncall": {
            "rotations": [{"name": "primary", "users": ["U0GONE", "U0NEXT"], **ROTATION}],
            **oncall,
        },
        "breakers": {"spend_rate": {"max": "1.00", "per_seconds": "10m"}},
    }


async def page(slack: Any, key: str = "k1") -> list[Any]:
    """A P0 (the spend-rate breaker trips), its chain ticked: the escalations taken."""
    await spend(slack.app, f"acme/alice/{key}-bot", micros=2_000_000, key=key)
    await slack.app.ns.extras["alerts"].tick()
    rows = await slack.app.store.fetch("SELECT step, target FROM escalations ORDER BY id")
    return [(r["step"], r["target"]) for r in rows]


def left_warnings(caplog: Any, user: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and f"{user} left the workspace" in r.getMessage()
    ]


async def test_a_user_who_left_is_skipped_and_warned_about_once(slack_http, fake_slack, caplog):
    fake_slack.users["U0GONE"] = {"deleted": True}
    with caplog.at_level(logging.WARNING):
        slack = await slack_http(policy())
        assert [c.args["user"] for c in fake_slack.calls_of("users.info")] == ["U0GONE", "U0NEXT"]
        assert await page(slack) == [(0, "U0NEXT")]
        assert await page(slack, "k2") == [(0, "U0NEXT"), (0, "U0NEXT")]
    await fake_slack.wait_for(lambda: len(fake_slack.posts("U0NEXT")) == 2)
    assert not fake_slack.posts("U0GONE")
    assert all("U0GONE" not in text for text in fake_slack.texts())  # nor mentioned
    [warning] = left_warnings(caplog, "U0GONE")
    assert "rotation primary" in warning and "remove them from the policy" in warning


async def test_a_rotation_everyone_left_pages_nobody_and_the_chain_goes_on_at_once(
    slack_http, fake_slack
):
    fake_slack.users["U0GONE"] = {"deleted": True}
    fake_slack.unknown_users.add("U0NEXT")  # users.info: user_not_found
    chain = [
        {"notify": "rotation:primary", "after": "0m"},
        {"notify": "rotation:secondary", "after": "5m"},
    ]
    secondary = {"name": "secondary", "users": ["U0SEC"], **ROTATION}
    p = policy(escalation=chain)
    p["oncall"]["rotations"].append(secondary)
    slack = await slack_http(p)
    # the clock has not moved: secondary is paged now, not 5 minutes later
    assert await page(slack) == [(0, None), (1, "U0SEC")]
    await fake_slack.wait_for(lambda: fake_slack.posts("U0SEC"))
    assert not fake_slack.posts("U0GONE") and not fake_slack.posts("U0NEXT")
    # nor does the P0's channel post mention the first rotation's scheduled user; the
    # step that paged nobody says so in the thread, and notifies nobody (review20 M1)
    assert all("U0GONE" not in text and "U0NEXT" not in text for text in fake_slack.texts())
    await fake_slack.wait_for(lambda: any("pages nobody" in t for t in fake_slack.texts()))
    assert not [t for t in fake_slack.texts() if "<!channel>" in t]
    [note] = [t for t in fake_slack.texts() if "pages nobody" in t]
    assert note.startswith(
        "⚠️ Step 1 of 2 pages nobody: everyone in rotation primary left the workspace"
    ), note


async def test_escalate_now_to_a_step_whose_user_left_says_nobody_was_paged(slack_http, fake_slack):
    """review21 L2, L7: the clicker was told "notified the channel" and the audit row said
    "channel" for a step that paged nobody; its note said "everyone in it" of one user."""
    fake_slack.users["U0GONE"] = {"deleted": True}
    chain = [
        {"notify": "rotation:primary", "after": "0m"},
        {"notify": "user:U0GONE", "after": "5m"},
        {"notify": "channel", "after": "10m"},
    ]
    slack = await slack_http(policy(escalation=chain))
    assert await page(slack) == [(0, "U0NEXT")]

    def alert_posts() -> list[Any]:  # in the channel (the page to U0NEXT has the button too)
        return [
            c
            for c in fake_slack.posts()
            if c.args["channel"] != "U0NEXT" and "alert_escalate" in json.dumps(c.args["blocks"])
        ]

    await fake_slack.wait_for(alert_posts)
    [post] = alert_posts()
    await click(slack, "alert_escalate", post.args["channel"], post.response["ts"], user="U0NEXT")
    assert await answer(slack, "U0NEXT") == (
        "Escalated #1: that step pages nobody (the alert's thread says why); the chain goes"
        " on to its next step."
    )
    [(*_, after, _detail)] = await audit(slack.app, "alert.escalate")
    assert after == "nobody"
    await fake_slack.wait_for(lambda: any("pages nobody" in t for t in fake_slack.texts()))
    [note] = [t for t in fake_slack.texts() if "pages nobody" in t]
    assert note == (
        "⚠️ Step 2 of 3 pages nobody: <@U0GONE> left the workspace (`/agent oncall` shows who"
        " is on call)."
    )
    # the channel's step is not kept waiting its 5 minutes for nobody
    await slack.app.ns.extras["alerts"].tick()
    rows = await slack.app.store.fetch("SELECT step, notify, target FROM escalations ORDER BY id")
    assert [tuple(r) for r in rows] == [
        (0, "rotation:primary", "U0NEXT"),
        (1, "user:U0GONE", None),
        (2, "channel", None),
    ]
    assert not fake_slack.posts("U0GONE")


async def test_an_override_covering_a_rotation_everyone_left_is_paged_alone(slack_http, fake_slack):
    """review20 H1: the zero wait looked at the rotation's users, not at who was paged:
    the cover an admin put on call and the next step's person were both woken at once."""
    fake_slack.users["U0GONE"] = {"deleted": True}
    fake_slack.unknown_users.add("U0NEXT")
    chain = [
        {"notify": "rotation:primary", "after": "0m"},
        {"notify": "rotation:secondary", "after": "5m"},
    ]
    p = policy(escalation=chain)
    p["oncall"]["rotations"].append({"name": "secondary", "users": ["U0SEC"], **ROTATION})
    slack = await slack_http(p)
    covered = (await slack.command("oncall override <@U0COVER> 4h primary"))["text"]
    assert covered.startswith("<@U0COVER> is on call for primary"), covered
    assert await page(slack) == [(0, "U0COVER")]  # secondary waits its 5 minutes


async def test_oncall_shows_who_left(slack_http, fake_slack):
    fake_slack.users["U0GONE"] = {"deleted": True}
    slack = await slack_http(policy())
    text = (await slack.command("oncall"))["text"]
    assert "*primary* (weekly, hand-off mon 00:00): <@U0NEXT>" in text, text
    assert "⚠️ <@U0GONE> left the workspace: skipped; remove them from the policy" in text, text


async def test_an_override_of_someone_who_left_is_refused(slack_http, fake_slack):
    fake_slack.users["U0EX"] = {"deleted": True}
    fake_slack.unknown_users.add("W0NOBODY")
    slack = await slack_http(policy())
    for user in ("U0EX", "W0NOBODY"):
        refused = (await slack.command(f"oncall override <@{user}> 1h"))["text"]
        assert refused.startswith(f"<@{user}> left the workspace"), refused
        assert "Nothing changed; put someone else on call for primary" in refused
    assert not await slack.app.store.fetch("SELECT * FROM oncall_overrides")
    taken = (await slack.command("oncall override <@U0COVER> 1h"))["text"]
    assert taken.startswith("<@U0COVER> is on call for primary"), taken


async def test_without_users_read_one_warning_and_pages_go_as_before(
    slack_http, fake_slack, caplog
):
    fake_slack.users["U0GONE"] = {"deleted": True}
    fake_slack.fail("users.info", status=200, error="missing_scope", retry_after=None, times=99)
    with caplog.at_level(logging.WARNING):
        slack = await slack_http(policy())
        assert await page(slack) == [(0, "U0GONE")]  # as before: nobody is skipped
        override = (await slack.command("oncall override <@U0COVER> 1h"))["text"]
    assert override.startswith("<@U0COVER> is on call"), override
    assert len(fake_slack.calls_of("users.info")) == 1  # not asked again
    [warning] = [r.getMessage() for r in caplog.records if "users:read" in r.getMessage()]
    assert "missing_scope" in warning and "reinstall" in warning


async def test_answers_are_kept_an_hour_then_asked_again_when_the_chain_needs_them(
    slack_http, fake_slack
):
    slack = await slack_http({**policy(), "alerts": {"repeat_escalation": 0}})
    assert len(fake_slack.calls_of("users.info")) == 2
    assert await page(slack) == [(0, "U0GONE")]  # there, at start
    fake_slack.users["U0GONE"] = {"deleted": True}  # leaves
    slack.app.clock.advance(30 * 60)
    assert (await page(slack, "k2"))[-1] == (0, "U0GONE")  # the answer is 30 min old: kept
    assert len(fake_slack.calls_of("users.info")) == 2
    slack.app.clock.advance(31 * 60)
    # over an hour: asked again, in the background (this page goes with what was known)
    assert (await page(slack, "k3"))[-1] == (0, "U0GONE")
    await fake_slack.wait_for(lambda: len(fake_slack.calls_of("users.info")) == 4)
    assert (await page(slack, "k4"))[-1] == (0, "U0NEXT")


async def test_shell_mode_looks_nobody_up(app_factory, fake_slack: FakeSlack):
    app = await app_factory(policy(), env={"SLACK_API_URL": fake_slack.url})
    assert app.ns.settings.transport == "shell"
    assert "people" not in app.ns.extras
    assert not fake_slack.calls_of("users.info")
