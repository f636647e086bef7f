"""Every breaker, agent and alert of a fleet is reachable from Slack (audit26 client M1, L1,
L4): a list cut short names the scopes the rest is under, and a scope narrows it.

One namespace of 220 agents (20 users of 11), 60 of them tripped (users 00 to 05), driven
through signed slash commands in HTTP mode. The tests follow the hints from reply to
reply, as an operator would, and check that they reach every item; that the plain text
counts what the blocks count; and that a bad scope is refused with nothing changed.
"""

from __future__ import annotations

import re
from typing import Any

from bot.shell_render import render_text
from guards.clock import ManualClock
from tests.scenario.test_lists_fleet import (
    APPROVAL_POLICY,
    T0,
    assert_fits,
    heartbeats,
    spend,
    texts_of,
    trip,
)

USERS = [f"user{u:02d}" for u in range(20)]
AGENTS = [f"acme/{user}/agent-{i:02d}" for user in USERS for i in range(11)]
TRIPPED = AGENTS[:60]  # users 00 to 04 whole, and 5 agents of user05
BREAKER_LINE = re.compile(r"^[🔴🟡🟠⛔🟢] \*([^*]+)\*")
AGENT_LINE = re.compile(r"^([🔴🟢]) `([^`]+)`")
UNDER = re.compile(r"under (.*): `/agent (\w+) (all )?(?:[\w]+:)?<scope>` lists one")
NAMED = re.compile(r"`([^`]+)` \((\d+)\)")
MORE = re.compile(r"… and (\d+) more")


async def fleet(slack_http: Any) -> Any:
    slack = await slack_http(APPROVAL_POLICY, clock=ManualClock(T0))
    app = slack.app
    await heartbeats(app, AGENTS)
    await app.store.write(trip(app, TRIPPED))  # open, cooling down: each needs a look
    await app.ns.extras["alerts"].process()
    return slack


def lines_of(reply: dict[str, Any], pattern: re.Pattern[str]) -> list[re.Match[str]]:
    return [
        found
        for block in reply["blocks"]
        if block["type"] == "section"
        for text in texts_of(block)
        for line in text.split("\n")
        if (found := pattern.match(line))
    ]


def hint(reply: dict[str, Any]) -> list[tuple[str, int]]:
    """The scopes the "… and N more" line names, with their counts (none: no such line)."""
    last = texts_of(reply["blocks"][-1])[0]
    if not MORE.match(last):
        return []
    under = UNDER.search(last)
    assert under, last
    return [(scope, int(n)) for scope, n in NAMED.findall(under.group(1))]


def same_count(reply: dict[str, Any]) -> None:
    """The plain text says the "… and N more" the blocks say (audit26 client L4)."""
    last = texts_of(reply["blocks"][-1])[0]
    said = MORE.search(reply["text"])
    assert said is not None and MORE.match(last) is not None, (last, reply["text"][-300:])
    assert said.group(1) == MORE.match(last).group(1)  # type: ignore[union-attr]
    assert reply["text"].endswith(last)


async def test_breakers_name_where_the_rest_is_and_reach_every_breaker(slack_http):
    slack = await fleet(slack_http)
    reply = await slack.command("breakers")
    assert_fits(reply)
    same_count(reply)
    shown = [m.group(1) for m in lines_of(reply, BREAKER_LINE)]
    assert 20 <= len(shown) < 60
    # the text lists the same breakers, one line each
    assert [line.split("*")[1] for line in reply["text"].split("\n") if line[:1] == "🔴"] == shown
    named = hint(reply)
    # one namespace: its users are named, not `acme` again (which would list the same)
    assert named and all(scope.count("/") == 1 for scope, _ in named), named
    hidden = sorted(set(TRIPPED) - set(shown))
    assert sum(n for _, n in named) == len(hidden) == 60 - len(shown)
    assert {scope for scope, _ in named} == {a.rsplit("/", 1)[0] for a in hidden}

    reached = set(shown)
    for scope, n in named:  # each named scope lists its breakers whole
        narrowed = await slack.command(f"breakers {scope}")
        assert_fits(narrowed)
        title = texts_of(narrowed["blocks"][0])[0]
        mine = [a for a in TRIPPED if a.startswith(scope + "/")]
        assert title == f"*Breakers* of `{scope}` and above it — {len(mine)} not closed"
        listed = [m.group(1) for m in lines_of(narrowed, BREAKER_LINE)]
        assert listed == mine and not hint(narrowed)
        assert len(set(listed) - reached) == n
        reached |= set(listed)
    assert reached == set(TRIPPED)

    # in the shell, the same blocks as terminal lines: the hint is there
    shell = render_text(reply["blocks"], reply["text"])
    assert "`/agent breakers <scope>` lists one" in shell.replace("&lt;", "<").replace("&gt;", ">")


async def test_breakers_all_narrowed_lists_the_closed_ones_of_that_scope(slack_http):
    slack = await fleet(slack_http)
    quiet = [a for a in AGENTS if a.startswith("acme/user07/")][:3]
    for agent in quiet:  # agents known through their spend: closed breakers
        await spend(slack.app, agent, 1_000)
    for text in (
        "breakers all acme/user07",
        "breakers acme/user07 all",
        "BREAKERS ALL acme/user07",
    ):
        reply = await slack.command(text)
        assert texts_of(reply["blocks"][0]) == [
            "*Breakers* of `acme/user07` and above it — 0 not closed of 3"
        ], text
        assert [m.group(1) for m in lines_of(reply, BREAKER_LINE)] == quiet
    clear = await slack.command("breakers acme/user07")
    assert clear["text"] == (
        "🟢 No breaker holds `acme/user07`: its own, those above it and the models' are closed."
    )
    every = await slack.command("breakers all")
    assert_fits(every)
    same_count(every)
    assert "`/agent breakers all <scope>` lists one" in texts_of(every["blocks"][-1])[0]


async def test_status_names_where_the_agents_that_need_a_look_are(slack_http):
    slack = await fleet(slack_http)
    reply = await slack.command("status")
    assert_fits(reply)
    assert reply["blocks"][1]["text"]["text"].startswith("Fleet: 220 agents, 60 need a look")
    shown = lines_of(reply, AGENT_LINE)
    bad = [m.group(2) for m in shown if m.group(1) == "🔴"]
    assert len(bad) == len(shown) < 60  # the unhealthy first, and some left out
    last = texts_of(reply["blocks"][-1])[0]
    assert last.startswith(
        f"… and {220 - len(shown)} more agents: {60 - len(bad)} need a look,"
        f" {160} healthy · those {60 - len(bad)} are under `acme/user"
    ), last
    assert last in reply["text"].split("\n")  # the text lists the same agents, by name
    assert [m.group(2) for m in map(AGENT_LINE.match, reply["text"].split("\n")) if m] == bad
    named = hint(reply)
    assert sum(n for _, n in named) == 60 - len(bad)

    reached = set(bad)
    for scope, _ in named:
        narrowed = await slack.command(f"status {scope}")
        assert_fits(narrowed)
        mine = [a for a in AGENTS if a.startswith(scope + "/")]
        need = sum(1 for a in mine if a in TRIPPED)
        head = narrowed["blocks"][1]["text"]["text"]
        assert head.startswith(
            f"Fleet under `{scope}`: 11 agents (of 220 in the fleet), {need} need a look"
            " · open alerts: P1 " + str(need)
        ), head
        found = lines_of(narrowed, AGENT_LINE)
        assert sorted(m.group(2) for m in found) == mine and not hint(narrowed)
        reached |= {m.group(2) for m in found if m.group(1) == "🔴"}
    assert reached == set(TRIPPED)  # every agent that needs a look, seen in Slack

    one = await slack.command("status acme/user19/agent-10")
    assert one["blocks"][1]["text"]["text"].startswith(
        "Fleet under `acme/user19/agent-10`: 1 agent (of 220 in the fleet), 0 need a look"
    )


async def test_alerts_of_one_namespace_name_its_users(slack_http):
    slack = await fleet(slack_http)
    for text in ("alerts breaker_opened_failures", "alerts breaker_opened_failures:acme"):
        reply = await slack.command(text)
        assert_fits(reply)
        listed = [
            line
            for b in reply["blocks"]
            for t in texts_of(b)
            for line in t.split("\n")
            if line.startswith("`#")
        ]
        last = texts_of(reply["blocks"][-1])[0]
        assert last.endswith(": `/agent alerts breaker_opened_failures:<scope>` lists one"), last
        named = hint(reply)
        assert named and all(scope.count("/") == 1 for scope, _ in named), named  # users
        assert sum(n for _, n in named) == 60 - len(listed)
        scope = named[-1][0]
        one = await slack.command(f"alerts breaker_opened_failures:{scope}")
        assert_fits(one)
        mine = [a for a in TRIPPED if a.startswith(scope + "/")]
        assert texts_of(one["blocks"][0]) == [
            f"Open alerts: {len(mine)} matching `breaker_opened_failures:{scope}` (of 60)"
        ]
        assert "more P1 alerts" not in one["text"]


async def test_a_bad_scope_is_refused_clearly_and_changes_nothing(slack_http):
    slack = await fleet(slack_http)
    app = slack.app

    async def state() -> list[Any]:
        queries = ("SELECT * FROM breakers", "SELECT * FROM audit", "SELECT * FROM scopes")
        return [[tuple(r) for r in await app.store.fetch(sql)] for sql in queries]

    before = await state()
    cases = {
        "acme//x": "each segment is 1-64 of",
        "a/b/c/d/e": "has 5 segments",
        "<!channel>": "each segment is 1-64 of",
        "'; DROP TABLE breakers; --": "each segment is 1-64 of",
        "x" * 10_000: "each segment is 1-64 of",
        "acme/nobody": "No agent has reserved or sent a heartbeat under `acme/nobody` yet",
        "Acme/User04": "Did you mean `acme/user04`?",
        "acme/user04/agent-00/c1": "is a conversation;",
    }
    for command in ("breakers", "breakers all", "status"):
        name = command.split()[0]
        usage = (
            "`/agent breakers [all] [scope]`" if name == "breakers" else "`/agent status [scope]`"
        )
        for arg, said in cases.items():
            reply = await slack.command(f'{command} "{arg}"')
            assert_fits(reply)
            assert said in reply["text"], (command, arg[:40], reply["text"])
            assert reply["text"].endswith(f"usage: {usage}"), reply["text"]
            assert "<!channel>" not in reply["text"]
        conversation = await slack.command(f"{command} acme/user04/agent-00/c1")
        assert f"`/agent {name} acme/user04/agent-00`" in conversation["text"]
    assert (
        "takes `all` and one scope at most"
        in (await slack.command("breakers all acme/user04 acme/user05"))["text"]
    )
    assert "takes one scope at most" in (await slack.command("status acme acme/user04"))["text"]
    assert await state() == before
