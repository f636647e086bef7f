"""Circuit breakers through HTTP: failures, spend rate, attempts, approved trials, listing."""

from __future__ import annotations

import json
from typing import Any

from guards.clock import ManualClock

BOT = "acme/alice/rss-bot"
HELPER = "acme/bob/helper"
POLICY: dict[str, Any] = {
    "budgets": {"defaults": {"agent": {"day": "100.00"}}},
    "breakers": {
        "failures": {"consecutive": 5, "rate": 0.5, "window_calls": 20, "min_calls": 10},
        "spend_rate": {"max": "2.00", "per_seconds": "10m"},
        "max_attempts_per_task": 3,
        "cooldown_seconds": "15m",
        "half_open": {"mode": "approval", "trial_calls": 3, "trial_budget": "0.50"},
    },
}


class Agent:
    """One agent of the fleet, talking to the app with its own token."""

    def __init__(self, app: Any, scope: str, token: str) -> None:
        self.app, self.scope, self.token, self.n = app, scope, token, 0

    async def reserve(
        self, micros: int = 100_000, *, scope: str | None = None, task_id: str | None = None
    ) -> Any:
        self.n += 1
        body: dict[str, Any] = {
            "scope": scope or self.scope,
            "idempotency_key": f"{self.scope}-{self.n}",
            "max_cost_micros": micros,
        }
        if task_id is not None:
            body["task_id"] = task_id
        return await self.app.request("POST", "/v1/reservations", token=self.token, json=body)

    async def settle(
        self, res_id: str, outcome: str = "success", micros: int = 50_000, error: str = ""
    ) -> Any:
        body: dict[str, Any] = {"actual_cost_micros": micros, "outcome": outcome}
        if error:
            body["error"] = error
        r = await self.app.request(
            "POST", f"/v1/reservations/{res_id}/settle", token=self.token, json=body
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def call(self, outcome: str = "success", micros: int = 50_000) -> None:
        r = await self.reserve(max(micros, 1))
        assert r.status_code == 201, r.text
        await self.settle(r.json()["reservation_id"], outcome, micros)

    async def breakers(self, query: str = "") -> Any:
        r = await self.app.request("GET", f"/v1/breakers{query}", token=self.token)
        assert r.status_code == 200, r.text
        return r.json()["breakers"]


async def fleet(app_factory: Any, policy: dict[str, Any] = POLICY) -> tuple[Any, Agent, Agent]:
    app = await app_factory(policy, clock=ManualClock())
    bot = Agent(app, BOT, await app.token("acme/alice"))
    helper = Agent(app, HELPER, await app.token("acme/bob"))
    return app, bot, helper


async def events(app: Any, kind: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await app.store.fetch(
        "SELECT scope, payload FROM events WHERE kind = ? ORDER BY id", (kind,)
    )
    return [(r[0], json.loads(r[1])) for r in rows]


async def trip_on_failures(bot: Agent) -> None:
    for _ in range(5):
        await bot.call("failure")


async def test_failures_trip_the_agent_breaker_and_other_agents_keep_working(app_factory):
    app, bot, helper = await fleet(app_factory)
    for i in range(4):
        await bot.call("timeout" if i % 2 else "failure")
        await helper.call("success")
    assert (await bot.reserve()).status_code == 201  # 4 failures in a row: not yet
    await bot.call("failure")

    refused = await bot.reserve()
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "900"
    body = refused.json()
    assert body["error"] == "breaker_open" and body["state"] == "open" and body["scope"] == BOT
    assert "failures in a row" in body["reason"] and "/agent breaker" in body["message"]
    in_conversation = await bot.reserve(scope=f"{BOT}/c42")
    assert in_conversation.status_code == 503
    await helper.call("success")

    app.clock.advance(600)
    later = await bot.reserve()
    assert later.status_code == 503 and later.headers["Retry-After"] == "300"
    [listed] = await bot.breakers()
    assert (listed["scope"], listed["state"], listed["trip"]) == (BOT, "open", "failures")
    assert listed["retry_after"] == 300 and listed["reason"] == body["reason"]
    assert await helper.breakers() == []
    [(scope, opened)] = await events(app, "breaker_opened")
    assert scope == BOT and opened["trip"] == "failures" and opened["figures"]["consecutive"] >= 5


async def test_a_runaway_spender_trips_on_spend_rate_exactly_at_the_threshold(app_factory):
    app, bot, helper = await fleet(app_factory)
    for _ in range(4):  # every call succeeds: $1.60 in ten minutes
        await bot.call("success", micros=400_000)
        app.clock.advance(60)
    await helper.call("success", micros=400_000)
    r = await bot.reserve(500_000)
    assert r.status_code == 201
    # $1.99999 stays under the limit...
    await bot.settle(r.json()["reservation_id"], micros=399_999)
    assert (await bot.reserve()).status_code == 201
    # ...and one more micro-dollar reaches it
    r = await bot.reserve(1)
    await bot.settle(r.json()["reservation_id"], micros=1)
    refused = await bot.reserve()
    assert refused.status_code == 503
    assert "spent $2.00 in the last 10m (limit $2.00)" in refused.json()["reason"]
    [(scope, opened)] = await events(app, "breaker_opened")
    assert scope == BOT and opened["trip"] == "spend"
    assert opened["figures"] == {
        "spent_micros": 2_000_000,
        "limit_micros": 2_000_000,
        "per_seconds": 600,
    }
    await helper.call("success", micros=400_000)


async def test_the_attempt_past_the_task_limit_is_refused_with_429(app_factory):
    app, bot, helper = await fleet(app_factory)
    for _ in range(3):
        r = await bot.reserve(task_id="fetch-feed-17")
        assert r.status_code == 201
        await bot.settle(r.json()["reservation_id"], "failure")
    fourth = await bot.reserve(task_id="fetch-feed-17")
    assert fourth.status_code == 429
    assert fourth.json() | {"message": ""} == {
        "error": "attempts_exhausted",
        "message": "",
        "scope": BOT,
        "task_id": "fetch-feed-17",
        "attempts": 3,
        "limit": 3,
    }
    assert (await bot.reserve(task_id="fetch-feed-18")).status_code == 201
    assert (await helper.reserve(task_id="fetch-feed-17")).status_code == 201
    [(scope, event)] = await events(app, "attempts_exhausted")
    assert scope == BOT and event["task_id"] == "fetch-feed-17"


async def test_an_approved_trial_lets_exactly_the_trial_calls_through_then_closes(app_factory):
    app, bot, helper = await fleet(app_factory)
    await trip_on_failures(bot)
    app.clock.advance(900)
    await app.store.write(app.ns.breakers.tick)
    waiting = await bot.reserve()
    assert waiting.status_code == 503 and waiting.json()["state"] == "half_open_pending"
    [(scope, asked)] = await events(app, "half_open_requested")
    assert scope == BOT and (asked["trial_calls"], asked["trial_budget_micros"]) == (3, 500_000)

    await app.store.write(lambda tx: app.ns.breakers.approve(tx, BOT, "U_DANA"))
    trial = []
    for _ in range(3):
        r = await bot.reserve(150_000)
        assert r.status_code == 201, r.text
        trial.append(r.json()["reservation_id"])
    fourth = await bot.reserve(1)
    assert fourth.status_code == 503 and fourth.json()["state"] == "half_open"
    [listed] = await bot.breakers()
    assert listed["trial"]["admitted"] == 3 and listed["trial"]["held_micros"] == 450_000
    await helper.call("success")

    for res_id in trial:
        await bot.settle(res_id, "success", micros=100_000)
    assert await bot.breakers() == []
    [closed] = await bot.breakers("?all=1")
    assert closed["state"] == "closed"
    assert (await bot.reserve()).status_code == 201
    [(_, event)] = await events(app, "breaker_closed")
    assert event["reason"] == "all 3 trial calls succeeded"
    rows = await app.store.fetch(
        "SELECT from_state, to_state, actor FROM breaker_transitions WHERE scope = ? ORDER BY id",
        (BOT,),
    )
    assert [tuple(r) for r in rows] == [
        ("closed", "open", "breaker"),
        ("open", "half_open_pending", "breaker"),
        ("half_open_pending", "half_open", "U_DANA"),
        ("half_open", "closed", "breaker"),
    ]


async def test_a_failed_trial_reopens_with_a_longer_cooldown(app_factory):
    app, bot, helper = await fleet(app_factory)
    await trip_on_failures(bot)
    app.clock.advance(900)
    await app.store.write(lambda tx: app.ns.breakers.approve(tx, BOT, "U_DANA"))
    await bot.call("success")
    await bot.call("failure")
    refused = await bot.reserve()
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1800"
    assert refused.json()["reason"].startswith("trial call res_")
    await helper.call("success")
    app.clock.advance(1800)
    assert (await bot.reserve()).json()["state"] == "half_open_pending"
    trips = [p["trip"] for _, p in await events(app, "breaker_opened")]
    assert trips == ["failures", "trial"]


async def test_a_failed_trial_says_what_its_call_said(app_factory):
    """audit23 forensics M3: the approver of a trial that failed read only "trial call
    res_… failed": the error the call settled with was dropped for trial calls."""
    app, bot, _ = await fleet(app_factory)
    await trip_on_failures(bot)
    app.clock.advance(900)
    await app.store.write(lambda tx: app.ns.breakers.approve(tx, BOT, "U_DANA"))
    r = await bot.reserve()
    await bot.settle(r.json()["reservation_id"], "failure", 0, error="provider said 500")
    refused = (await bot.reserve()).json()
    assert refused["reason"] == (
        f"trial call {r.json()['reservation_id']} failed; last error: provider said 500"
    )
    [_, (_, reopened)] = await events(app, "breaker_opened")
    assert reopened["reason"] == refused["reason"]


async def test_breakers_need_a_token_and_show_only_the_tokens_subtree(app_factory):
    app, bot, helper = await fleet(app_factory)
    assert (await app.request("GET", "/v1/breakers")).status_code == 401
    await trip_on_failures(bot)
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, "acme/bob", "U_OPS", "audit"))
    assert [b["scope"] for b in await bot.breakers()] == [BOT]
    [forced] = await helper.breakers()
    assert (forced["scope"], forced["state"], forced["trip"]) == (
        "acme/bob",
        "forced_open",
        "manual",
    )
    refused = await helper.reserve()
    assert refused.status_code == 503 and refused.json()["scope"] == "acme/bob"
    admin = Agent(app, "acme", await app.token("acme"))
    scopes = [b["scope"] for b in await admin.breakers("?all=1")]
    assert scopes == ["acme/alice/rss-bot", "acme/bob"]


async def test_breakers_disabled_in_the_policy_refuse_nothing(app_factory):
    policy = {**POLICY, "breakers": {**POLICY["breakers"], "enabled": False}}
    _, bot, _ = await fleet(app_factory, policy)
    for _ in range(8):
        await bot.call("failure", micros=500_000)
    for _ in range(5):
        assert (await bot.reserve(task_id="same")).status_code == 201
    assert [b["state"] for b in await bot.breakers("?all=1")] == ["closed"]


async def test_a_model_forced_open_refuses_reservations_naming_it_and_is_listed(app_factory):
    app, bot, helper = await fleet(app_factory)
    haiku = "model:claude-haiku-4-5"
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, haiku, "U_OPS", "incident"))

    async def reserve(key: str, **body: Any) -> Any:
        body = {"scope": BOT, "idempotency_key": key, **body}
        return await app.request("POST", "/v1/reservations", token=bot.token, json=body)

    estimate = {"model": "claude-haiku-4-5", "input_tokens": 1000, "max_output_tokens": 500}
    for key, body in (
        ("by-estimate", {"estimate": estimate}),
        ("by-model", {"max_cost_micros": 5000, "model": "claude-haiku-4-5"}),
    ):
        refused = await reserve(key, **body)
        assert refused.status_code == 503, refused.text
        assert refused.json()["scope"] == haiku and refused.json()["state"] == "forced_open"
        assert int(refused.headers["Retry-After"]) > 0
    # either name is the call's; a padded name is the same name
    both = await reserve("both", model="claude-sonnet-4-5", estimate=estimate)
    assert both.status_code == 503, both.text
    padded = await reserve("padded", max_cost_micros=5000, model=" Claude-Haiku-4-5 ")
    assert padded.status_code == 503, padded.text
    assert "until an operator runs /agent breaker model:claude-haiku-4-5 close" in padded.text
    other = await reserve("other-model", max_cost_micros=5000, model="claude-sonnet-4-5")
    assert other.status_code == 201, other.text
    unnamed = await reserve("no-model", max_cost_micros=5000)
    assert unnamed.status_code == 201, unnamed.text
    # every tenant sees the model breakers (they carry no tenant's data)
    for agent in (bot, helper):
        [listed] = await agent.breakers()
        assert (listed["scope"], listed["state"]) == (haiku, "forced_open")
    await app.store.write(lambda tx: app.ns.breakers.force_close(tx, haiku, "U_OPS"))
    again = await reserve("after-close", estimate=estimate)
    assert again.status_code == 201, again.text


async def test_a_model_breaker_that_tripped_on_its_own_does_not_refuse_a_pinned_model(
    app_factory,
):
    app, bot, _ = await fleet(app_factory)
    haiku = {"max_cost_micros": 5000, "model": "claude-haiku-4-5"}
    n = 0
    for _ in range(2):  # ten failures in a row, spread over five agents
        for a in range(5):
            n += 1
            body = {"scope": f"acme/alice/a{a}", "idempotency_key": f"f{n}", **haiku}
            r = await app.request("POST", "/v1/reservations", token=bot.token, json=body)
            assert r.status_code == 201, r.text
            await bot.settle(r.json()["reservation_id"], "failure", 1000)
    [model] = [b for b in await bot.breakers() if b["scope"] == "model:claude-haiku-4-5"]
    assert model["state"] == "open"
    body = {"scope": BOT, "idempotency_key": "pinned", **haiku}
    r = await app.request("POST", "/v1/reservations", token=bot.token, json=body)
    assert r.status_code == 201, r.text  # routing steers around it; a pinned call may still try


async def test_a_model_breaker_shows_no_tenant_what_another_tenants_calls_said(app_factory):
    """audit23 tenants F1: a model's breaker is shared by every namespace, and its reason
    quoted the last failed call's error: one team's customer name in another team's
    `GET /v1/breakers`. Operators still read it whole."""
    app, bot, _ = await fleet(app_factory)
    other = Agent(app, "beta/yuki/bot", await app.token("beta"))
    haiku = {"max_cost_micros": 5000, "model": "claude-haiku-4-5"}
    for n in range(10):  # ten failures in a row, spread over five agents of acme
        body = {"scope": f"acme/alice/a{n % 5}", "idempotency_key": f"f{n}", **haiku}
        r = await app.request("POST", "/v1/reservations", token=bot.token, json=body)
        assert r.status_code == 201, r.text
        await bot.settle(r.json()["reservation_id"], "failure", 1, error="customer Globex #4471")
    for agent in (other, bot):
        [model] = [b for b in await agent.breakers() if b["kind"] == "model"]
        assert (model["state"], model["reason"]) == ("open", "10 failures in a row (limit 10)")
    [whole] = await app.store.write(lambda tx: app.ns.breakers.list(tx))
    assert whole.reason.endswith("; last error: customer Globex #4471")


async def test_a_breaker_opened_on_failures_says_what_the_last_failed_call_said(app_factory):
    """audit19 hostile 3: the README said a settle's `error` is shown to operators; nothing
    showed it, and the person paged for "5 failures in a row" could not see why."""
    app, bot, _ = await fleet(app_factory)
    for i in range(5):
        r = await bot.reserve()
        body = {"actual_cost_micros": 0, "outcome": "failure"}
        if i == 4:
            body["error"] = "anthropic 529 overloaded_error:\n  retry later " + "x" * 300
        else:
            body["error"] = f"failure {i}"
        settled = await app.request(
            "POST",
            f"/v1/reservations/{r.json()['reservation_id']}/settle",
            token=bot.token,
            json=body,
        )
        assert settled.status_code == 200, settled.text
    refused = (await bot.reserve()).json()
    assert refused["reason"].startswith(
        "5 failures in a row (limit 5); last error: anthropic 529 overloaded_error: retry later"
    ), refused["reason"]
    assert len(refused["reason"]) < 300 and refused["reason"].endswith("…")
    [(_, opened)] = await events(app, "breaker_opened")
    assert opened["reason"] == refused["reason"]


async def test_a_loop_that_passes_its_trial_trips_again_with_a_doubled_cooldown(
    app_factory, tmp_path
):
    """audit21 guards F2: a stuck agent's calls all succeed: it passed each trial, closed
    "cleanly", spent the limit again and was paged again at the same 15 minutes, for ever.
    The probation after a passed trial survives a restart."""
    db, clock = tmp_path / "loop.db", ManualClock()
    app = await app_factory(POLICY, clock=clock, db=db)
    bot = Agent(app, BOT, await app.token("acme/alice"))

    async def loop_until_refused() -> Any:
        for _ in range(100):
            r = await bot.reserve(100_000)
            if r.status_code != 201:
                return r
            await bot.settle(r.json()["reservation_id"], micros=100_000)
        raise AssertionError("the loop was never stopped")

    first = await loop_until_refused()
    assert first.status_code == 503 and first.headers["Retry-After"] == "900"
    clock.advance(900)
    await app.store.write(lambda tx: app.ns.breakers.approve(tx, BOT, "U_DANA"))
    for _ in range(3):  # the trial: three small calls, all fine
        await bot.call("success", micros=10_000)
    assert [b["state"] for b in await bot.breakers("?all=1")] == ["closed"]
    await app.ns.stop()  # a restart in the probation

    clock.advance(60)
    app = await app_factory(POLICY, clock=clock, db=db)
    bot.app = app
    again = await loop_until_refused()
    assert again.status_code == 503 and again.headers["Retry-After"] == "1800"
    assert "after its trial passed, so the cool-down doubles" in again.json()["reason"]


async def test_a_credential_in_a_settles_error_is_not_posted_or_kept(app_factory):
    """audit21 observe L5: an HTTP error quoting its header went verbatim into the breaker
    reason: the alert, /agent breakers, the 503 and the audit log, kept for good."""
    app, bot, _ = await fleet(app_factory)
    leak = "401 Unauthorized (Authorization: Bearer ns_tok_0a1b_SECRETpart)"
    leak += "; key sk-ant-api03-SECRETKEY"
    for _ in range(5):
        r = await bot.reserve()
        body = {"actual_cost_micros": 0, "outcome": "failure", "error": leak}
        path = f"/v1/reservations/{r.json()['reservation_id']}/settle"
        assert (await app.request("POST", path, token=bot.token, json=body)).status_code == 200
    refused = (await bot.reserve()).json()
    assert "SECRET" not in refused["reason"], refused["reason"]
    assert "Bearer …" in refused["reason"] and "sk-ant-…" in refused["reason"]
    rows = await app.store.fetch("SELECT error FROM reservations WHERE error IS NOT NULL")
    assert rows and all("SECRET" not in r[0] for r in rows)
