"""``/agent status`` of agents whose calls were refused before they started (recheck27 Kd
L1): an agent whose every call met a model's kill switch left no scope row, so status
did not list it; the operator who set the kill switch at 3 a.m. could not see whom it
stopped. It is listed now, held by the model's breaker while that stays forced open,
with its refusals of the day and what refused them.

The real app in Slack HTTP mode against a real SQLite file, a ManualClock; the calls
through the HTTP API, the commands as signed slash commands.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_digest_namespaces import ADMIN, HAIKU, REFUSING, berlin, reserve

KILL = f"model:{HAIKU}"


def line_of(text: str, scope: str) -> str:
    """The status line of ``scope`` (AssertionError: none)."""
    lines = [line for line in text.splitlines() if f"`{scope}`" in line]
    assert lines, text
    return lines[0]


async def test_an_agent_whose_every_call_was_refused_is_in_status_with_what_refused_it(
    slack_http: Any,
) -> None:
    slack = await slack_http(REFUSING, clock=ManualClock(berlin(2026, 1, 5, 3)))
    app = slack.app
    await app.store.write(
        lambda tx: app.ns.breakers.force_open(tx, KILL, ADMIN, "provider incident")
    )
    for i in range(2):  # 03:00: each of nu's calls meets the kill switch
        assert await reserve(app, "nu/u/a", f"n{i}", micros=10_000) == 503
    # bu's one call asks more than its $10 day; ok reserves on another model
    assert await reserve(app, "bu/u/a", "b", micros=25_000_000, model="gpt-4o") == 402
    assert await reserve(app, "ok/u/a", "o", micros=10_000, model="gpt-4o") == 201
    agents = await app.store.fetch("SELECT path FROM scopes WHERE depth = 3")
    assert [tuple(r) for r in agents] == [("ok/u/a",)]  # a refused call makes no scope row

    said = (await slack.command("status"))["text"]
    assert "Fleet: 3 agents, 2 need a look" in said, said
    nu = line_of(said, "nu/u/a")
    assert nu.startswith("🔴"), nu
    assert f"⛔ breaker forced open at {KILL}: forced open by <@{ADMIN}>: provider" in nu, nu
    assert nu.endswith("· refused today: 2 by a breaker"), nu
    assert line_of(said, "bu/u/a").endswith("· refused today: 1 over budget"), said
    assert "refused today" not in line_of(said, "ok/u/a"), said
    narrowed = (await slack.command("status nu"))["text"]
    assert "Fleet under `nu`: 1 agent (of 3 in the fleet), 1 needs a look" in narrowed, narrowed

    # the next day: still held by the kill switch, no refusal that day yet
    app.clock.set(berlin(2026, 1, 6, 9))
    nu = line_of((await slack.command("status"))["text"], "nu/u/a")
    assert f"⛔ breaker forced open at {KILL}" in nu and "refused today" not in nu, nu
    # the kill switch lifted: nu, refused nothing today, is of the fleet no more (review28
    # R2 H1: an agent refused once, months ago, was of the fleet for good)
    await app.store.write(lambda tx: app.ns.breakers.force_close(tx, KILL, ADMIN))
    said = (await slack.command("status"))["text"]
    assert "Fleet: 2 agents" in said and "`nu/u/a`" not in said, said


async def test_a_namespace_or_user_breaker_keeps_the_agents_it_refused_past_midnight(
    slack_http: Any,
) -> None:
    """review28 R6 L2: an agent known only by refused calls dropped out at midnight while
    the namespace's or user's breaker that refused it stayed open (only a model's kill
    switch kept it). L4: a scope whose agent was refused only on an earlier day was said
    to have none "yet", "an agent appears with its first … refused call"."""
    slack = await slack_http(REFUSING, clock=ManualClock(berlin(2026, 1, 5, 23)))
    app = slack.app
    for key in ("nsx", "usx/v"):
        await app.store.write(
            lambda tx, key=key: app.ns.breakers.force_open(tx, key, ADMIN, "runaway loop")
        )
    assert await reserve(app, "nsx/u/a", "n", micros=10_000) == 503
    assert await reserve(app, "usx/v/b", "u", micros=10_000) == 503
    assert await reserve(app, "bu/u/a", "b", micros=25_000_000, model="gpt-4o") == 402
    assert "Fleet: 3 agents, 3 need a look" in (await slack.command("status"))["text"]

    app.clock.set(berlin(2026, 1, 6, 0, 5))  # a new day: nothing refused in it yet
    await app.ns.extras["alerts"].tick()  # bu's budget alert: a new day began
    said = (await slack.command("status"))["text"]
    assert "Fleet: 2 agents, 2 need a look" in said and "`bu/u/a`" not in said, said
    nsx, usx = line_of(said, "nsx/u/a"), line_of(said, "usx/v/b")
    assert "⛔ breaker forced open at nsx: forced open by" in nsx, nsx  # before: not listed
    assert "⛔ breaker forced open at usx/v: forced open by" in usx, usx
    assert "refused today" not in nsx + usx, said
    empty = (await slack.command("status bu"))["text"]
    assert (
        "No agents under `bu` (2 in the fleet), and no call of one refused today: an agent is"
        " listed from its first reservation or heartbeat on; one whose every call was refused,"
        " on a day one of them is refused (its namespace's day) or while a breaker that"
        " refused it stays open." in empty
    ), empty

    await app.store.write(lambda tx: app.ns.breakers.force_close(tx, "nsx", ADMIN))
    said = (await slack.command("status"))["text"]
    assert "Fleet: 1 agent" in said and "`nsx/u/a`" not in said, said
    assert "⛔ breaker forced open at usx/v" in line_of(said, "usx/v/b"), said
