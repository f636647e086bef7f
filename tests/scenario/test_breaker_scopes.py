"""Breaker limits per scope prefix (`breakers.scopes`), through HTTP and Slack (audit27
parity #4): a research agent allowed $5 per 10 minutes beside agents at the default $2."""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_breakers import Agent

RESEARCH = "acme/alice/research"
OTHER = "acme/alice/classifier"
BOB = "acme/bob/helper"
ADMIN = "U0ADMIN"
ALERTS = "C0ALERTS"
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "channels": {"alerts": ALERTS},
    "budgets": {"defaults": {"agent": {"day": "100.00"}}},
    "breakers": {
        "spend_rate": {"max": "2.00", "per_seconds": "10m"},
        "cooldown_seconds": "15m",
        "scopes": {RESEARCH: {"spend_rate": {"max": "5.00", "per_seconds": "10m"}}},
    },
}


def with_scopes(scopes: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {**POLICY, "breakers": {**POLICY["breakers"], **top, "scopes": scopes}}


async def agents(app: Any, *scopes: str) -> list[Agent]:
    found = []
    for scope in scopes:
        found.append(Agent(app, scope, await app.token(scope.rsplit("/", 1)[0])))
    return found


async def spend(agent: Agent, micros: int, *, calls: int = 1, every: float = 30) -> None:
    for _ in range(calls):
        await agent.call("success", micros=micros)
        agent.app.clock.advance(every)


async def listed(agent: Agent) -> dict[str, dict[str, Any]]:
    return {b["scope"]: b for b in await agent.breakers("?all=1")}


async def test_each_agent_trips_at_its_own_prefixs_spend_rate(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    research, other = await agents(app, RESEARCH, OTHER)
    await spend(research, 1_000_000, calls=3)  # $3 in 90 s: under its own $5
    await spend(other, 3_000_000)  # $3: over the default $2
    assert (await research.reserve()).status_code == 201
    refused = await other.reserve()
    assert refused.status_code == 503
    assert "spent $3.00 in the last 10m (limit $2.00)" in refused.json()["reason"]

    await spend(research, 1_000_000, calls=2)  # $5 within ten minutes: its limit
    tripped = await research.reserve()
    assert tripped.status_code == 503
    assert "spent $5.00 in the last 10m (limit $5.00)" in tripped.json()["reason"]

    text = (await slack.command("breakers"))["text"]
    assert f"*{RESEARCH}* open" in text and "(limit $5.00)" in text, text
    assert f"*{OTHER}* open" in text and "spent $3.00 in the last 10m (limit $2.00)" in text
    rows = await listed(research)
    assert rows[RESEARCH]["limits_from"] == RESEARCH
    assert rows[OTHER]["limits_from"] == "breakers"
    assert rows[RESEARCH]["figures"]["limit_micros"] == 5_000_000

    await slack.app.ns.extras["alerts"].process()
    fake = slack.fake
    await fake.wait_for(lambda: len(fake.posts(ALERTS)) >= 2)
    posted = {
        scope: c.args["text"]
        for c in fake.posts(ALERTS)
        for scope in (RESEARCH, OTHER)
        if scope in c.args["text"]
    }
    assert "spent $5.00 in the last 10m (limit $5.00)" in posted[RESEARCH], posted
    assert "spent $3.00 in the last 10m (limit $2.00)" in posted[OTHER], posted


async def test_the_longest_prefix_wins_and_the_others_keep_the_top_level(app_factory):
    policy = with_scopes(
        {
            "acme": {"spend_rate": {"max": "1.00"}},
            "acme/alice": {"spend_rate": {"max": "3.00"}},
            RESEARCH: {"spend_rate": {"max": "5.00"}},
        }
    )
    app = await app_factory(policy, clock=ManualClock())
    research, other, bob = await agents(app, RESEARCH, OTHER, BOB)
    elsewhere = Agent(app, "globex/carl/bot", await app.token("globex/carl"))
    for agent in (research, other, bob, elsewhere):
        await spend(agent, 900_000, every=1)
    rows = await listed(research)
    assert rows[RESEARCH]["limits_from"] == RESEARCH
    assert rows[OTHER]["limits_from"] == "acme/alice"
    assert (await listed(bob))[BOB]["limits_from"] == "acme"
    assert (await listed(elsewhere))["globex/carl/bot"]["limits_from"] == "breakers"

    await spend(bob, 100_000)  # $1.00 reaches acme's $1
    assert "(limit $1.00)" in (await bob.reserve()).json()["reason"]
    await spend(elsewhere, 1_100_000)  # $2.00: the top level's
    assert "(limit $2.00)" in (await elsewhere.reserve()).json()["reason"]
    await spend(other, 1_100_000)  # $2.00 is under acme/alice's $3 (not acme's $1)
    assert (await other.reserve()).status_code == 201
    await spend(other, 1_000_000)  # $3.00
    assert "(limit $3.00)" in (await other.reserve()).json()["reason"]
    await spend(research, 3_000_000)  # $3.90: under $5
    assert (await research.reserve()).status_code == 201


async def test_a_prefix_inherits_the_keys_it_leaves_out(app_factory):
    """Only `consecutive` is set for research: its rate window, the top level's cool-down
    and spend rate still hold for it; the other agent keeps 5 in a row."""
    policy = with_scopes(
        {RESEARCH: {"failures": {"consecutive": 2}}},
        failures={"consecutive": 5, "rate": 0.5, "window_calls": 30, "min_calls": 10},
    )
    app = await app_factory(policy, clock=ManualClock())
    research, other = await agents(app, RESEARCH, OTHER)
    for _ in range(2):
        await other.call("failure")
    assert (await other.reserve()).status_code == 201
    await research.call("failure")
    assert (await research.reserve()).status_code == 201  # one failure: not yet
    await research.call("failure")
    refused = await research.reserve()
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "900"
    assert "2 failures in a row (limit 2)" in refused.json()["reason"]
    assert app.ns.policy.breakers.scopes[RESEARCH].failures is not None
    assert app.ns.policy.breakers.scopes[RESEARCH].failures.window_calls == 30


async def test_a_prefix_may_turn_the_spend_breaker_off(app_factory):
    app = await app_factory(with_scopes({RESEARCH: {"spend_rate": None}}), clock=ManualClock())
    research, other = await agents(app, RESEARCH, OTHER)
    await spend(research, 3_000_000, calls=3, every=1)  # $9 in seconds: no spend breaker
    assert (await research.reserve()).status_code == 201
    await spend(other, 2_000_000, every=1)
    assert (await other.reserve()).status_code == 503


async def test_a_prefix_in_auto_mode_starts_its_trial_by_itself(app_factory):
    policy = with_scopes({RESEARCH: {"half_open": {"mode": "auto"}, "cooldown_seconds": "5m"}})
    app = await app_factory(policy, clock=ManualClock())
    research, other = await agents(app, RESEARCH, OTHER)
    await spend(other, 2_000_000, every=1)
    await spend(research, 2_000_000, every=0)
    refused = await research.reserve()
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "300"
    app.clock.advance(15 * 60 + 1)
    await app.ns.breakers.sweep(app.store)
    rows = await listed(research)
    assert rows[RESEARCH]["state"] == "half_open"
    assert rows[RESEARCH]["trial"]["calls"] == 3  # half_open.trial_calls inherited
    assert rows[OTHER]["state"] == "half_open_pending"  # the top level: approval


async def test_max_attempts_and_namespace_spend_rate_per_prefix(app_factory):
    policy = with_scopes(
        {
            RESEARCH: {"max_attempts_per_task": 5},
            "globex": {"namespace_spend_rate": {"max": "1.00", "per_seconds": "1h"}},
        }
    )
    app = await app_factory(policy, clock=ManualClock())
    research, other = await agents(app, RESEARCH, OTHER)
    for agent, limit in ((research, 5), (other, 3)):
        for _ in range(limit):
            r = await agent.reserve(task_id="t1")
            assert r.status_code == 201, r.text
            await agent.settle(r.json()["reservation_id"])
        assert (await agent.reserve(task_id="t1")).status_code == 429
    await spend(other, 1_500_000, every=1)  # acme has no namespace spend rate
    carl = Agent(app, "globex/carl/bot", await app.token("globex/carl"))
    await spend(carl, 1_000_000, every=1)
    refused = await carl.reserve()
    assert refused.status_code == 503 and refused.json()["scope"] == "globex"
    assert "spent $1.00 in the last 1h (limit $1.00)" in refused.json()["reason"]
    assert (await listed(carl))["globex"]["limits_from"] == "globex"
