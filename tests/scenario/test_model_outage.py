"""A provider outage (audit27 parity #2): the model's breaker pages, its agents' wait.

Four agents of acme/bob fail on claude-haiku-4-5 (the provider answers 529): each
agent's failure breaker trips and so does the model's. The model's alert is the one
posted and paged (it names the agents); the agents' alerts wait behind it
(``alerts.inhibit_by_model``), and when the model's own trial closes its breaker the
agents' breakers start their trial without an approval (``breakers.follow_model``).
``/agent breaker <prefix>/* approve`` approves what still waits, in one command.

Time is a ManualClock; the alert timers run when the test calls ``tick()``.
"""

from __future__ import annotations

from typing import Any

import pytest

from guards.clock import ManualClock
from tests.fakes.slack_api import FakeSlack

ALERTS = "C0ALERTS"
ADMIN = "U0ADMIN"
HAIKU = "claude-haiku-4-5"
AGENTS = [f"acme/bob/a{n}" for n in range(1, 5)]
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "channels": {"alerts": ALERTS},
    "budgets": {"defaults": {"agent": {"day": "100.00"}}},
    "breakers": {
        "failures": {"consecutive": 5, "rate": 0.5, "window_calls": 20, "min_calls": 10},
        "cooldown_seconds": "15m",
        "half_open": {"mode": "approval", "trial_calls": 3, "trial_budget": "0.50"},
    },
    "alerts": {"update_interval_seconds": "30s", "repeat_escalation": 0, "p1_escalate_after": "1m"},
    "oncall": {
        "rotations": [
            {"name": "primary", "users": ["U01"], "start": "2025-12-29"},
            {"name": "secondary", "users": ["U04"], "start": "2025-12-29"},
        ],
        "escalation": [
            {"notify": "rotation:primary", "after": "0m"},
            {"notify": "rotation:secondary", "after": "5m"},
            {"notify": "channel", "after": "15m"},
        ],
    },
}


def with_keys(*, alerts: dict[str, Any] | None = None, breakers: dict[str, Any] | None = None):
    return {
        **POLICY,
        "alerts": {**POLICY["alerts"], **(alerts or {})},
        "breakers": {**POLICY["breakers"], **(breakers or {})},
    }


async def call(app: Any, scope: str, outcome: str, n: list[int], model: str = HAIKU) -> None:
    """One call of ``scope`` on ``model``, settled as ``outcome``."""
    n[0] += 1
    tok = await app.token("/".join(scope.split("/")[:2]))
    body = {
        "scope": scope,
        "idempotency_key": f"{scope}-{n[0]}",
        "max_cost_micros": 5000,
        "model": model,
    }
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201, r.text
    settle = {"actual_cost_micros": 1000, "outcome": outcome}
    if outcome != "success":
        settle["error"] = "anthropic 529 overloaded"
    s = await app.request(
        "POST", f"/v1/reservations/{r.json()['reservation_id']}/settle", token=tok, json=settle
    )
    assert s.status_code == 200, s.text


async def outage(app: Any, n: list[int]) -> None:
    """Each of the four agents fails five times on haiku: every breaker trips."""
    for agent in AGENTS:
        for _ in range(5):
            await call(app, agent, "failure", n)


async def states(app: Any) -> dict[str, str]:
    rows = await app.store.fetch("SELECT key, state FROM breakers")
    return {str(k): str(s) for k, s in rows}


def alerts_of(slack: Any) -> Any:
    return slack.app.ns.extras["alerts"]


def top_posts(fake: FakeSlack) -> list[str]:
    return [c.args["text"] for c in fake.posts(ALERTS) if not c.args.get("thread_ts")]


def nudges(fake: FakeSlack) -> list[str]:
    return [c.args["text"] for c in fake.posts(ALERTS) if c.args.get("thread_ts")]


async def drain(slack: Any) -> None:
    """Let the outbox send what is queued."""
    rows: list[Any] = [1]
    for _ in range(200):
        rows = await slack.app.store.fetch("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
        if rows[0][0] == 0:
            return
        await _sleep()
    raise AssertionError(f"the outbox still holds {rows[0][0]} messages")


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.05)


async def test_an_outage_posts_and_pages_once_and_the_models_alert_names_the_agents(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await outage(app, [0])
    assert {k: s for k, s in (await states(app)).items()} == {
        **dict.fromkeys(AGENTS, "open"),
        f"model:{HAIKU}": "open",
    }
    await alerts_of(slack).process()
    await drain(slack)
    posts = top_posts(fake)
    # the first agent's is posted before the model's breaker could trip (it needs two
    # agents); the others wait: the cause is posted, not its symptoms
    assert [p.split(":")[0] for p in posts] == [
        f"🟠 P1 · Breaker opened on failures — {AGENTS[0]}",
        "🟠 P1 · Breaker opened on failures — model",
    ], posts
    model_id = (
        await app.store.fetch("SELECT id FROM alerts WHERE scope = ?", (f"model:{HAIKU}",))
    )[0][0]
    app.clock.advance(61)  # p1_escalate_after: 1m
    await alerts_of(slack).tick()
    app.clock.advance(5 * 60)
    await alerts_of(slack).tick()
    await drain(slack)
    now = [m["text"] for (channel, _), m in fake.messages.items() if channel == ALERTS]
    [model] = [m for m in now if f"— model:{HAIKU}:" in m]
    assert (
        "4 agents' breakers opened with it: acme/bob/a1, acme/bob/a2, acme/bob/a3, acme/bob/a4"
        in model
    ), model
    [first] = [m for m in now if f"— {AGENTS[0]}:" in m]  # posted before the model's
    assert (
        f"part of model:{HAIKU}'s outage (#{model_id}): its pages wait while the model's"
        " breaker is open" in first
    ), first
    assert top_posts(fake) == posts  # the agents' alerts still wait
    assert pages(fake) == [("U04", "model")]  # one page: the model's
    assert all(f"#{model_id}" in t for t in nudges(fake)), nudges(fake)
    waiting = await slack.command("alerts")
    assert f"waits for model:{HAIKU}'s outage (#{model_id})" in waiting["text"], waiting["text"]


async def test_the_models_trial_closes_it_and_the_agents_start_their_trials_unasked(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    n = [0]
    await outage(app, n)
    await alerts_of(slack).process()
    app.clock.advance(15 * 60 + 1)  # the cool-downs end: the agents ask, the model tries
    await app.ns.breakers.sweep(app.store)
    await alerts_of(slack).tick()
    assert (await states(app))[AGENTS[0]] == "half_open_pending"
    for _ in range(3):  # another agent's calls on haiku succeed: the model's trial passes
        await call(app, "acme/carol/c1", "success", n)
    now = await states(app)
    assert now[f"model:{HAIKU}"] == "closed"
    assert [now[a] for a in AGENTS] == ["half_open"] * 4  # nobody approved them
    audit = await app.store.fetch(
        "SELECT actor, action, target FROM audit WHERE actor = ? ORDER BY id", (f"model:{HAIKU}",)
    )
    assert [(r[1], r[2]) for r in audit] == [("breaker.follow_model", a) for a in AGENTS]
    before = pages(fake)
    await alerts_of(slack).tick()
    app.clock.advance(2 * 60)
    await alerts_of(slack).tick()
    await drain(slack)
    assert [p.split(":")[0] for p in top_posts(fake)] == [  # still the model's and a1's
        f"🟠 P1 · Breaker opened on failures — {AGENTS[0]}",
        "🟠 P1 · Breaker opened on failures — model",
    ], top_posts(fake)
    assert pages(fake) == before, pages(fake)  # nobody paged after the model closed
    requests = await app.store.fetch(
        "SELECT resolved_at IS NOT NULL, resolve_reason FROM alerts"
        " WHERE kind = 'half_open_requested'"
    )
    assert len(requests) == 4 and all(r[0] for r in requests), requests
    assert requests[0][1] == f"trial started by model:{HAIKU}'s breaker", requests
    for agent in AGENTS:  # each agent's own trial passes: closed, without a person
        for _ in range(3):
            await call(app, agent, "success", n)
    assert {s for k, s in (await states(app)).items() if k in AGENTS} == {"closed"}


async def test_without_follow_model_the_agents_still_ask_a_minute_after(slack_http):
    slack = await slack_http(with_keys(breakers={"follow_model": False}), clock=ManualClock())
    fake, app = slack.fake, slack.app
    n = [0]
    await outage(app, n)
    await alerts_of(slack).process()
    app.clock.advance(15 * 60 + 1)
    await app.ns.breakers.sweep(app.store)
    await alerts_of(slack).tick()
    for _ in range(3):
        await call(app, "acme/carol/c1", "success", n)
    assert [(await states(app))[a] for a in AGENTS] == ["half_open_pending"] * 4
    await alerts_of(slack).tick()
    await drain(slack)
    before = top_posts(fake)
    assert [p.split(":")[0] for p in before] == [  # the model closed a moment ago: they wait
        f"🟠 P1 · Breaker opened on failures — {AGENTS[0]}",
        "🟠 P1 · Breaker opened on failures — model",
    ], before
    app.clock.advance(61)
    await alerts_of(slack).tick()
    await drain(slack)
    posts = top_posts(fake)
    model_id = (
        await app.store.fetch("SELECT id FROM alerts WHERE scope = ?", (f"model:{HAIKU}",))
    )[0][0]
    asking = [p for p in posts if p.startswith("🟠 P1 · Breaker waits for a trial approval")]
    assert len(asking) == 4, posts
    messages = [m for c in fake.posts(ALERTS) if (m := fake.messages[(ALERTS, c.response["ts"])])]
    held = [m for m in messages if f"— {AGENTS[0]}:" in m["text"]]
    assert len(held) == 2, held  # its trip and its trial request
    said = f"part of model:{HAIKU}'s outage (#{model_id}): this breaker is still open"
    assert all(said in m["text"] for m in held), held
    assert any("Approve trial" in str(m["blocks"]) for m in held)


async def test_inhibit_by_model_off_pages_each_agent_as_before(slack_http):
    slack = await slack_http(with_keys(alerts={"inhibit_by_model": False}), clock=ManualClock())
    fake, app = slack.fake, slack.app
    await outage(app, [0])
    await alerts_of(slack).process()
    await drain(slack)
    posts = top_posts(fake)
    assert len(posts) == 5, posts
    assert not any("outage" in p for p in posts)


async def test_an_agent_failing_on_a_model_whose_breaker_is_closed_pages_as_before(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    n = [0]
    for _ in range(5):  # one agent alone: the model's breaker needs two
        await call(app, AGENTS[0], "failure", n)
    assert (await states(app)).get(f"model:{HAIKU}", "closed") == "closed"
    await alerts_of(slack).process()
    await drain(slack)
    [post] = top_posts(fake)
    assert AGENTS[0] in post and "outage" not in post


# -- /agent breaker <prefix>/* approve ------------------------------------------------


async def test_approve_by_prefix_counts_and_names_what_it_approved(slack_http):
    slack = await slack_http(with_keys(breakers={"follow_model": False}), clock=ManualClock())
    app = slack.app
    await outage(app, [0])
    app.clock.advance(15 * 60 + 1)
    await app.ns.breakers.sweep(app.store)
    refused = await slack.command("breaker acme/bob/* approve", user="U0STRANGER")
    assert refused["text"].startswith("Only admins can operate breakers."), refused["text"]
    assert (await states(app))[AGENTS[0]] == "half_open_pending"
    bare = await slack.command("breaker acme/bob approve")  # recheck30 L4: the /* left out
    assert bare["text"].endswith(
        "; 4 breakers under it wait for a trial approval:"
        " `/agent breaker acme/bob/* approve` approves them"
    ), bare["text"]
    done = await slack.command("breaker acme/bob/* approve")
    assert done["text"] == (
        "<@U0ADMIN> approved the trial of 4 breakers under `acme/bob`: a1, a2, a3, a4"
    ), done["text"]
    assert [(await states(app))[a] for a in AGENTS] == ["half_open"] * 4
    actions = await app.store.fetch(
        "SELECT target FROM audit WHERE action = 'breaker.approve' AND actor = ? ORDER BY id",
        (ADMIN,),
    )
    assert [r[0] for r in actions] == AGENTS
    none = await slack.command("breaker acme/bob/* approve")
    assert none["text"] == (
        "No breaker under `acme/bob` waits for a trial approval; nothing changed"
        " (`/agent breakers` lists them)."
    ), none["text"]


async def test_approve_by_prefix_names_five_and_counts_the_rest(slack_http):
    slack = await slack_http(with_keys(breakers={"follow_model": False}), clock=ManualClock())
    app = slack.app
    n = [0]
    for i in range(1, 8):
        for _ in range(5):
            await call(app, f"acme/bob/b{i}", "failure", n, model="claude-sonnet-4-5")
    app.clock.advance(15 * 60 + 1)
    await app.ns.breakers.sweep(app.store)
    done = await slack.command("breaker acme/* approve")
    assert done["text"] == (
        "<@U0ADMIN> approved the trial of 7 breakers under `acme`:"
        " bob/b1, bob/b2, bob/b3, bob/b4, bob/b5 and 2 more"
    ), done["text"]


@pytest.mark.parametrize(
    "typed",
    ["breaker acme/Bob!/* approve", "breaker model:*/* approve", "breaker acme/bob/* open"],
)
async def test_approve_by_prefix_refuses_a_bad_prefix_and_changes_nothing(slack_http, typed):
    slack = await slack_http(with_keys(breakers={"follow_model": False}), clock=ManualClock())
    app = slack.app
    await outage(app, [0])
    app.clock.advance(15 * 60 + 1)
    await app.ns.breakers.sweep(app.store)
    said = await slack.command(typed)
    assert "/*" in said["text"] or "prefix" in said["text"], said["text"]
    assert "approved" not in said["text"]
    assert [(await states(app))[a] for a in AGENTS] == ["half_open_pending"] * 4


async def test_the_help_names_approve_by_prefix(slack_http):
    slack = await slack_http(POLICY)
    said = await slack.command("help")
    shown = " ".join(str(b) for b in said["blocks"])
    assert "breaker <prefix>/* approve" in shown, shown


# -- review30: after the outage (H1, H2, M1, L3) ------------------------------------------


def message_of(fake: FakeSlack, agent: str) -> str:
    """The channel message of ``agent``'s breaker alert as it reads now."""
    [text] = [
        m["text"]
        for (channel, _), m in fake.messages.items()
        if channel == ALERTS and f"Breaker opened on failures — {agent}:" in m["text"]
    ]
    return str(text)


def pages(fake: FakeSlack) -> list[tuple[str, str]]:
    """Every DM sent so far: (user, the alert it names)."""
    sent = []
    for user in ("U01", "U04"):
        for c in fake.posts(user):
            which = "model" if f"— model:{HAIKU}:" in c.args["text"] else c.args["text"]
            for agent in [*AGENTS, "acme/zed/z1"]:
                if f"— {agent}:" in c.args["text"]:
                    which = agent
            sent.append((user, which))
    return sent


async def followed_by_model(app: Any) -> list[str]:
    """The agents whose trial the model's recovery started, in order (the audit)."""
    rows = await app.store.fetch(
        "SELECT target FROM audit WHERE action = 'breaker.follow_model' ORDER BY id"
    )
    return [str(r[0]) for r in rows]


async def auto_mode_outage(
    slack_http: Any, *, cooldown: str, trial_calls: int
) -> tuple[Any, list[int]]:
    """An outage of haiku under agents whose trials start on their own after ``cooldown``;
    its alerts processed and sent. Returns the app and the call counter."""
    policy = with_keys(
        breakers={
            "half_open": {"mode": "auto", "trial_calls": trial_calls, "trial_budget": "0.50"},
            "scopes": {"acme/bob": {"cooldown_seconds": cooldown}},
        }
    )
    slack = await slack_http(policy, clock=ManualClock())
    n = [0]
    await outage(slack.app, n)
    await alerts_of(slack).process()
    await drain(slack)
    return slack, n


async def close_the_model(slack: Any, n: list[int]) -> None:
    """The cool-downs end (the model starts its trial) and another agent's calls pass it."""
    app = slack.app
    for _ in range(15):  # a tick a minute, as the scheduler runs it
        app.clock.advance(60)
        await alerts_of(slack).tick()
    app.clock.advance(1)
    await app.ns.breakers.sweep(app.store)
    await alerts_of(slack).tick()
    await drain(slack)
    for _ in range(3):
        await call(app, "acme/carol/c1", "success", n)
    assert (await states(app))[f"model:{HAIKU}"] == "closed"


async def minutes(slack: Any, count: int) -> None:
    for _ in range(count):
        slack.app.clock.advance(61)
        await alerts_of(slack).tick()
    await drain(slack)


async def test_after_the_model_closes_nobody_is_paged_while_the_agents_trials_run(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    n = [0]
    await outage(app, n)
    await alerts_of(slack).process()
    await drain(slack)
    model_id = (
        await app.store.fetch("SELECT id FROM alerts WHERE scope = ?", (f"model:{HAIKU}",))
    )[0][0]
    await close_the_model(slack, n)
    before = pages(fake)
    assert before == [("U04", "model")], before  # the outage's one page (P1s start at 2)
    await minutes(slack, 8)  # the grace, p1_escalate_after and the secondary's 5m
    assert [(await states(app))[a] for a in AGENTS] == ["half_open"] * 4
    assert pages(fake) == before  # nobody woken for an outage that is over
    first = message_of(fake, AGENTS[0])  # posted before the model's breaker could trip
    assert (
        f"part of model:{HAIKU}'s outage (#{model_id}): the model's breaker closed and this"
        " breaker's trial is running; its pages wait for the trial's result"
    ) in first, first
    assert "while the model's breaker is open" not in first
    listed = (await slack.command("alerts"))["text"]
    assert f"waits for its trial after model:{HAIKU}'s outage (#{model_id})" in listed, listed
    for agent in AGENTS:  # each agent's own trial passes: resolved, nobody paged
        for _ in range(3):
            await call(app, agent, "success", n)
    await minutes(slack, 2)
    assert pages(fake) == before
    open_ = await app.store.fetch(
        "SELECT scope FROM alerts WHERE resolved_at IS NULL AND scope LIKE 'acme/bob/%'"
    )
    assert open_ == [], open_


async def test_a_held_alert_already_posted_resumes_its_chain_once_when_its_trial_fails(
    slack_http,
):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    n = [0]
    await outage(app, n)
    await alerts_of(slack).process()
    await drain(slack)
    await close_the_model(slack, n)
    before = pages(fake)
    await minutes(slack, 3)  # a1's trial runs: its chain waits
    await call(app, AGENTS[0], "failure", n)  # then it fails: a1 is a problem of its own
    assert (await states(app))[AGENTS[0]] == "open"
    await minutes(slack, 7)  # posted a minute after the model closed (it was), paged once
    assert pages(fake)[len(before) :] == [("U04", AGENTS[0])], pages(fake)
    steps = await app.store.fetch(
        "SELECT e.step FROM escalations e JOIN alerts a ON a.id = e.alert_id"
        " WHERE a.scope = ? ORDER BY e.id",
        (AGENTS[0],),
    )
    assert [s[0] for s in steps] == [1], steps  # the step it stood at, once: not started over
    said = message_of(fake, AGENTS[0])
    assert "this breaker is still open a minute after the model's closed" in said, said


async def test_an_agent_that_tripped_on_its_own_days_before_is_not_part_of_the_outage(
    slack_http,
):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    n = [0]
    for _ in range(5):  # its own bad requests on haiku: the model's breaker needs two agents
        await call(app, "acme/zed/z1", "failure", n)
    await alerts_of(slack).process()
    app.clock.advance(2 * 86400)
    await app.ns.breakers.sweep(app.store)
    await alerts_of(slack).tick()
    assert (await states(app))["acme/zed/z1"] == "half_open_pending"  # it asks a person
    await outage(app, n)  # two days later, an outage of haiku
    await alerts_of(slack).process()
    await minutes(slack, 1)
    shown = [m["text"] for (ch, _), m in fake.messages.items() if ch == ALERTS]
    [model] = [m for m in shown if "— model:" in m]
    assert (
        "4 agents' breakers opened with it: acme/bob/a1, acme/bob/a2, acme/bob/a3, acme/bob/a4;"
    ) in model, model
    z1 = await app.store.fetch(
        "SELECT kind, json_extract(facts, '$.held_by') FROM alerts WHERE scope = 'acme/zed/z1'"
        " AND resolved_at IS NULL ORDER BY id"
    )
    assert [tuple(r) for r in z1] == [
        ("breaker_opened_failures", None),
        ("half_open_requested", None),
    ], z1
    listed = await slack.command("alerts")
    zed = [line for line in listed["text"].splitlines() if "acme/zed/z1" in line]
    assert zed and not any("outage" in line for line in zed), listed["text"]
    await close_the_model(slack, n)
    assert (await states(app))["acme/zed/z1"] == "half_open_pending"  # still asks a person
    followed = await followed_by_model(app)
    assert followed == AGENTS


async def test_auto_mode_agents_with_a_longer_cooldown_follow_the_model_and_page_nobody(
    slack_http,
):
    slack, n = await auto_mode_outage(slack_http, cooldown="30m", trial_calls=3)
    fake, app = slack.fake, slack.app
    posted = top_posts(fake)
    await close_the_model(slack, n)
    before = pages(fake)
    assert [(await states(app))[a] for a in AGENTS] == ["half_open"] * 4
    followed = await followed_by_model(app)
    assert followed == AGENTS
    await minutes(slack, 8)
    assert top_posts(fake) == posted, top_posts(fake)  # no storm after the recovery
    assert pages(fake) == before


async def test_a_trial_that_fails_on_another_model_no_longer_follows_the_first(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    n = [0]
    await outage(app, n)
    await alerts_of(slack).process()
    app.clock.advance(15 * 60 + 1)
    await app.ns.breakers.sweep(app.store)
    said = await slack.command(f"breaker {AGENTS[0]} approve")
    assert "approved" in said["text"], said["text"]
    await call(app, AGENTS[0], "failure", n, model="claude-sonnet-4-5")  # its trial fails
    assert (await states(app))[AGENTS[0]] == "open"
    for _ in range(3):  # haiku's trial passes
        await call(app, "acme/carol/c1", "success", n)
    followed = await followed_by_model(app)
    assert followed == AGENTS[1:]  # a1 fails on sonnet now: not haiku's
    assert (await states(app))[AGENTS[0]] == "open"


async def test_a_trial_call_that_hangs_in_the_outage_stays_part_of_it(slack_http):
    """review31 H1: an agent's trial call whose hold expired (hung on the provider) dropped
    the model, and its alert was posted and paged while the model was still in its trial."""
    slack, n = await auto_mode_outage(slack_http, cooldown="1m", trial_calls=1)
    fake, app = slack.fake, slack.app
    posted = list(top_posts(fake))
    for _ in range(16):  # the agents' trials start on their own; the model's cool-down runs
        app.clock.advance(60)
        await app.ns.breakers.sweep(app.store)
        await alerts_of(slack).tick()
    tok = await app.token("acme/bob")
    body = {"scope": AGENTS[1], "idempotency_key": "hung", "max_cost_micros": 5000}
    r = await app.request(
        "POST", "/v1/reservations", token=tok, json={**body, "model": HAIKU, "ttl_seconds": 60}
    )
    assert r.status_code == 201, r.text
    app.clock.advance(61)  # the provider never answered: its hold expires
    await app.ns.breakers.sweep(app.store)
    await call(app, "acme/carol/c9", "success", n, model="claude-sonnet-4-5")  # a write batch
    figures = await app.store.fetch("SELECT figures FROM breakers WHERE key = ?", (AGENTS[1],))
    assert HAIKU in figures[0][0]  # still the model's outage
    await minutes(slack, 4)
    assert top_posts(fake) == posted  # nothing new posted
    assert [p for p in pages(fake) if p[1] != "model"] == []  # and no agent paged


@pytest.mark.parametrize(("before", "part_of_it"), [(10 * 60, True), (20 * 60, False)])
async def test_a_trip_counts_for_the_outage_up_to_15_minutes_before_the_model_opens(
    slack_http, before, part_of_it
):
    """review31 M3: the first agents trip before the model's breaker can; 15 minutes is
    the lead a trip may have on the model's opening to count as part of its outage."""
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    n = [0]
    for _ in range(5):
        await call(app, "acme/zed/z1", "failure", n)
    app.clock.advance(before)
    await outage(app, n)  # the model's breaker opens now
    await alerts_of(slack).process()
    await minutes(slack, 1)
    shown = [m["text"] for (ch, _), m in fake.messages.items() if ch == ALERTS]
    [model] = [m for m in shown if "— model:" in m]
    assert ("acme/zed/z1" in model) is part_of_it, model
    held = await app.store.fetch(
        "SELECT json_extract(facts, '$.held_by') FROM alerts WHERE scope = 'acme/zed/z1'"
        " AND kind = 'breaker_opened_failures'"
    )
    assert (held[0][0] is not None) is part_of_it


async def test_a_breaker_a_person_kept_open_does_not_follow_the_model(slack_http):
    """review31 L4: the model's recovery started the trial of a breaker a person had kept
    open on purpose."""
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    n = [0]
    await outage(app, n)
    await alerts_of(slack).process()
    for _ in range(15):
        app.clock.advance(60)
        await alerts_of(slack).tick()
    app.clock.advance(1)
    await app.ns.breakers.sweep(app.store)
    assert (await states(app))[AGENTS[0]] == "half_open_pending"
    await app.store.write(lambda tx: app.ns.breakers.keep_open(tx, AGENTS[0], ADMIN))
    for _ in range(3):
        await call(app, "acme/carol/c1", "success", n)
    got = await states(app)
    assert got[f"model:{HAIKU}"] == "closed"
    assert got[AGENTS[0]] == "open"  # as the person left it
    assert [got[a] for a in AGENTS[1:]] == ["half_open"] * 3
