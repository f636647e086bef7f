"""The Python client (``guards.client``) against the real server, as DESIGN.md shows it."""

from __future__ import annotations

import asyncio
import contextlib
import types

import pytest

from guards.client import Estimate, GuardClient, Usage
from guards.errors import BudgetExceeded, Conflict, InvalidInput

POLICY = {"budgets": {"defaults": {"conversation": {"total": "2.00"}}}}
HAIKU = Estimate("claude-haiku-4-5", 1200, 800)


async def held_and_spent(app, token, scope):
    r = await app.request("GET", f"/v1/budgets/{scope}", token=token)
    total = r.json()["levels"][-1]["windows"]["total"]
    return total["held_micros"], total["spent_micros"]


@pytest.mark.parametrize(
    "usage",
    [
        Usage("claude-haiku-4-5", 1100, 640),
        {"model": "claude-haiku-4-5", "input_tokens": 1100, "output_tokens": 640},
        types.SimpleNamespace(input_tokens=1100, output_tokens=640),  # an Anthropic SDK usage
        types.SimpleNamespace(prompt_tokens=1100, completion_tokens=640),  # an OpenAI one
    ],
    ids=["Usage", "dict", "anthropic-style", "openai-style"],
)
async def test_settle_takes_the_usage_an_llm_sdk_returns(app_factory, usage):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        async with guard.reserve("acme/alice/rss-bot/c42", estimate=HAIKU) as hold:
            hold.settle(usage=usage)
        assert hold.result["charged_micros"] == 4300 and hold.result["released_micros"] == 900
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c42") == (0, 4300)


async def test_an_unreadable_usage_raises_inside_the_block_and_charges_the_ceiling(app_factory):
    """audit19 client 2: it was settled as a failure charging $0, and the spend could not
    be booked afterwards (a reservation settles once): the call spent, so the ceiling is
    charged, as when the server refuses a usage."""
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    gemini = types.SimpleNamespace(prompt_token_count=120, candidates_token_count=40)
    async with GuardClient(app.url, tok) as guard:
        with pytest.raises(ValueError, match="input_tokens"):
            async with guard.reserve("acme/alice/rss-bot/c1", max_cost_micros=4321) as hold:
                hold.settle(usage={"model": "claude-haiku-4-5", "input_tokens": "many"})
        # booked as reported (review19 L10: as a failure, it counted against the model's
        # breaker, which every tenant shares, though the model had answered)
        assert hold.result["outcome"] == "success" and hold.result["charged_micros"] == 4321
        # caught inside, and nothing readable said after it: the ceiling, the outcome given
        async with guard.reserve("acme/alice/rss-bot/c2", estimate=HAIKU) as caught:
            with contextlib.suppress(ValueError):
                caught.settle(usage=gemini)
        assert caught.result["outcome"] == "success"
        assert caught.result["charged_micros"] == caught.held_micros
        # caught, then said readably: what was said
        async with guard.reserve("acme/alice/rss-bot/c3", estimate=HAIKU) as fixed:
            with pytest.raises(ValueError):
                fixed.settle(usage={"model": "claude-haiku-4-5", "input_tokens": 10.0})
            fixed.settle(actual_cost_micros=700)
        assert fixed.result["charged_micros"] == 700
    rows = await app.store.fetch("SELECT error FROM reservations WHERE scope LIKE '%/c2'")
    assert "charged the ceiling: the cost reported could not be read" in rows[0][0]
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c1") == (0, 4321)


async def test_the_callers_exception_survives_a_settle_that_fails(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        with pytest.raises(KeyError, match="original") as raised:
            async with guard.reserve("acme/alice/rss-bot/c2", max_cost_micros=1000) as hold:
                await guard.release(hold.reservation_id)
                raise KeyError("original")
    assert any("settling" in note for note in raised.value.__notes__)


async def test_a_callers_idempotency_key_finds_the_earlier_hold(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        first = await guard.create_reservation(
            "acme/alice/rss-bot/c3", idempotency_key="run-17-call-3", max_cost_micros=1000
        )
        async with guard.reserve(
            "acme/alice/rss-bot/c3", idempotency_key="run-17-call-3", max_cost_micros=1000
        ) as hold:
            assert hold.reservation_id == first["reservation_id"]
            hold.settle(actual_cost_micros=700)
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c3") == (0, 700)


async def test_anthropic_prompt_cache_tokens_are_charged_not_dropped(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    usage = types.SimpleNamespace(  # what anthropic.types.Usage carries with prompt caching
        input_tokens=100,
        output_tokens=640,
        cache_creation_input_tokens=400,
        cache_read_input_tokens=50_000,
    )
    async with (
        GuardClient(app.url, tok) as guard,
        guard.reserve(
            "acme/alice/rss-bot/c5", max_cost_micros=100_000, model="claude-haiku-4-5"
        ) as hold,
    ):
        hold.settle(usage=usage)
    # haiku: $1/M input, $5/M output; 100 fresh + writes at 1.25x (500) + reads at 0.1x (5,000)
    assert hold.result["charged_micros"] == 5_600 + 640 * 5


async def test_a_settle_the_server_refuses_charges_the_ceiling_and_raises(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        with pytest.raises(InvalidInput, match="no price for model 'gpt-9-ultra'"):
            async with guard.reserve("acme/alice/rss-bot/c6", estimate=HAIKU) as hold:
                hold.settle(usage=Usage("gpt-9-ultra", 100, 100))  # the call was made
    assert hold.result["charged_micros"] == 5200  # the whole ceiling, not nothing
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c6") == (0, 5200)


async def test_a_refused_settle_after_the_block_raised_still_charges_the_ceiling(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        with pytest.raises(KeyError, match="parse") as raised:
            async with guard.reserve("acme/alice/rss-bot/c9", estimate=HAIKU) as hold:
                hold.settle(usage=Usage("gpt-9-ultra", 100, 100))  # the LLM answered
                raise KeyError("parse")  # then reading its answer failed
    assert any("no price for model" in note for note in raised.value.__notes__)
    assert hold.result["charged_micros"] == 5200 and hold.result["outcome"] == "failure"
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c9") == (0, 5200)


async def test_a_key_whose_call_is_over_does_not_run_the_block_again(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    ran = []
    async with GuardClient(app.url, tok) as guard:
        async with guard.reserve(
            "acme/alice/rss-bot/c7", idempotency_key="call-9", max_cost_micros=1000
        ) as hold:
            hold.settle(actual_cost_micros=600)
        with pytest.raises(Conflict, match="settled already") as over:
            async with guard.reserve(
                "acme/alice/rss-bot/c7", idempotency_key="call-9", max_cost_micros=1000
            ):
                ran.append("the LLM call")
    assert ran == [] and over.value.state == "settled"
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c7") == (0, 600)


async def test_a_call_that_timed_out_settles_as_a_timeout(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        with pytest.raises(TimeoutError):
            async with (
                guard.reserve("acme/alice/rss-bot/c8", max_cost_micros=1000) as hold,
                asyncio.timeout(0.01),
            ):
                await asyncio.sleep(5)  # the LLM call that never answers
    assert hold.result["outcome"] == "timeout" and hold.result["charged_micros"] == 0
    async with GuardClient(app.url, tok) as guard:
        entered = []
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):  # around the block: inside, it is a cancellation
                async with guard.reserve("acme/alice/rss-bot/c8", max_cost_micros=1000) as held:
                    entered.append(held)
                    await asyncio.sleep(5)
        [cancelled] = entered
    # a cancellation says nothing about the model: released, no failure for the breaker
    assert cancelled.result["released_micros"] == 1000
    rows = await app.store.fetch(
        "SELECT state, outcome FROM reservations WHERE id = ?", (cancelled.reservation_id,)
    )
    assert tuple(rows[0]) == ("released", None)


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
async def test_a_ctrl_c_or_an_exit_inside_the_block_releases_and_trips_nothing(app_factory, stop):
    """audit15 devx 3: they were settled as failures, and tripped the agent's breaker and
    the model's, which every tenant shares."""
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    holds = []
    async with GuardClient(app.url, tok) as guard:
        for i in range(12):  # more than the agent's and the model's failure limits
            with pytest.raises(stop):
                async with guard.reserve(
                    f"acme/alice/rss-bot/c{i}", estimate=Estimate("gpt-4o-mini", 100, 100)
                ) as hold:
                    holds.append(hold)
                    raise stop()
        breakers = await guard.breakers()
    assert all(h.result["state"] == "released" for h in holds)
    rows = await app.store.fetch("SELECT DISTINCT state, outcome FROM reservations")
    assert [tuple(r) for r in rows] == [("released", None)]
    assert breakers["breakers"] == []  # nothing tripped


async def test_a_call_stopped_after_it_reported_is_settled_as_reported(app_factory):
    """audit19 client 1: a deploy cancelling calls that had reported success booked them
    as timeouts and failures: 5 opened the agent's breaker (a P1) and counted against the
    model's, which every tenant shares."""
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:

        async def call(i: int) -> None:
            async with guard.reserve(f"acme/alice/rss-bot/c{i}", estimate=HAIKU) as hold:
                hold.settle(usage=Usage("claude-haiku-4-5", 1100, 640))  # the LLM answered
                await asyncio.sleep(5)  # saving its output, when the deploy stops it

        tasks = [asyncio.create_task(call(i)) for i in range(10)]
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(d, asyncio.CancelledError) for d in done)
        for i, stop in enumerate((KeyboardInterrupt, SystemExit)):
            with pytest.raises(stop):
                async with guard.reserve(f"acme/alice/rss-bot/s{i}", estimate=HAIKU) as hold:
                    hold.settle(usage=Usage("claude-haiku-4-5", 1100, 640))
                    raise stop()
    # (leaving the client waited for the cancelled calls' settles, sent in the background)
    async with GuardClient(app.url, tok) as again:
        breakers = await again.breakers()
    rows = await app.store.fetch("SELECT state, outcome, charged_micros FROM reservations")
    assert [tuple(r) for r in rows] == [("settled", "success", 4300)] * 12
    assert breakers["breakers"] == []  # nothing tripped


async def test_refusals_raise_typed_errors(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        with pytest.raises(BudgetExceeded) as refused:
            async with guard.reserve("acme/alice/rss-bot/c4", max_cost_micros=3_000_000):
                raise AssertionError("the block must not run")
    assert refused.value.level == "conversation" and refused.value.limit_micros == 2_000_000


async def test_a_validation_names_the_routed_call_that_wrote_its_items(app_factory):
    """A rejection teaches routing only when it names the call (audit18 routing finding 1):
    the client passes the decision's route_id with the items."""
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        decision = await guard.route("acme/alice/rss-bot", "Summarize this feed item")
        route_id = decision["route_id"]
        async with guard.reserve(
            "acme/alice/rss-bot/c1", max_cost_micros=1000, route_id=route_id
        ) as hold:
            hold.settle(actual_cost_micros=10)
        answer = await guard.validate("acme/alice/rss-bot", "posts", ["<p></p>"], route_id=route_id)
    assert answer["verdict"] == "rejected" and answer["rejected"][0]["reason"] == "empty"
    rows = await app.store.fetch("SELECT outcome FROM routing_decisions WHERE id = ?", (route_id,))
    assert rows[0][0] == "rejected"


async def test_a_long_prompt_read_mostly_from_the_cache_is_charged_as_anthropic_bills_it(
    app_factory,
):
    """review18 H1: the client folded cache tokens into a priced input (39,000 for a
    300,000-token prompt), so the server never saw the prompt pass 200K: charged at half."""
    policy = {**POLICY, "breakers": {"spend_rate": {"max": "100.00"}}}
    app = await app_factory(policy)
    tok = await app.token("acme/alice/rss-bot")
    usage = {
        "input_tokens": 10_000,
        "output_tokens": 2_000,
        "cache_read_input_tokens": 290_000,
    }
    async with (
        GuardClient(app.url, tok) as guard,
        guard.reserve(
            "acme/alice/rss-bot/c6", max_cost_micros=1_000_000, model="claude-sonnet-4-5"
        ) as hold,
    ):
        hold.settle(usage=usage)
    # the whole 300K-token prompt is over 200K: 10,000 + 29,000 (reads at 0.1x) input at
    # $6 a million, 2,000 output at $22.50: 234,000 + 45,000 micro-dollars
    assert hold.result["charged_micros"] == 279_000


async def test_a_heartbeat_with_a_long_detail_is_kept_cut(app_factory):
    """A detail over the server's 2,000 characters (a stack trace) was sent whole and
    refused with a 400: the beat lost, its live agent paged as silent. The client cuts it
    as it cuts a settle's error, and the beat is kept."""
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        await guard.heartbeat("acme/alice/rss-bot", status="degraded", detail="trace " * 1000)
    [(detail,)] = await app.store.fetch("SELECT detail FROM heartbeats")
    assert len(detail) == 2000 and detail.endswith("…") and detail.startswith("trace trace")
