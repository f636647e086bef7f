"""Slow calls (``breakers.failures.slow_after``, resilience4j's slow-call threshold): a
call settled that long after its reserve counts as a failed one for its breakers,
whatever outcome it reports. On a real SQLite store, time from the injected clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guards.config import parse_policy
from guards.config_types import PolicyError
from guards.errors import BreakerOpen
from tests.unit.test_breaker_engine import BASE, BOT, OTHER, Engine, start

MODEL = "claude-haiku-4-5"


def slow_policy(**failures: Any) -> dict[str, Any]:
    breakers = BASE["breakers"]
    return {"breakers": {**breakers, "failures": {**breakers["failures"], **failures}}}


async def slow_call(
    e: Engine, seconds: float, *, scope: str = BOT, model: str | None = None
) -> str:
    res_id = await e.reserve(scope, model=model)
    e.clock.advance(seconds)
    await e.settle(res_id, "success")
    return res_id


async def test_calls_as_slow_as_slow_after_trip_the_breaker_and_say_how_long(tmp_path: Path):
    e = await start(tmp_path / "s.db", slow_policy(slow_after="2m"))
    await slow_call(e, 119.9)  # under it: a success
    for _ in range(2):
        await slow_call(e, 120)  # at it: a failure (the threshold is the first value)
    assert await e.state() == "closed"
    await slow_call(e, 190)
    with pytest.raises(BreakerOpen) as info:
        await e.reserve()
    assert info.value.reason == (
        "3 failures in a row (limit 3); the call took 3m10s (breakers.failures.slow_after is 2m)"
    )
    [(scope, opened)] = await e.events("breaker_opened")
    assert scope == BOT and opened["trip"] == "failures"
    await e.call(scope=OTHER)  # another agent's quick calls are not its
    # the calls themselves were successes: charged as such
    rows = await e.store.fetch("SELECT outcome FROM reservations WHERE scope = ?", (BOT,))
    assert {r[0] for r in rows} == {"success"}
    await e.store.close()


async def test_a_quick_success_between_slow_calls_ends_the_streak(tmp_path: Path):
    e = await start(tmp_path / "s.db", slow_policy(slow_after="1m"))
    for _ in range(2):
        await slow_call(e, 61)
    await e.call()  # quick
    for _ in range(2):
        await slow_call(e, 61)
    assert await e.state() == "closed"
    await e.store.close()


async def test_without_slow_after_a_slow_call_is_a_success(tmp_path: Path):
    e = await start(tmp_path / "s.db")
    for _ in range(5):
        await slow_call(e, 590)
    assert await e.state() == "closed"
    assert await e.events("breaker_opened") == []
    await e.store.close()


async def test_a_slow_trial_call_fails_the_trial(tmp_path: Path):
    e = await start(tmp_path / "s.db", slow_policy(slow_after="1m"))
    for _ in range(3):
        await e.call(outcome="failure")
    e.clock.advance(100)
    await e.store.write(lambda tx: e.breakers.approve(tx, BOT, "U_DANA"))
    await slow_call(e, 75)
    with pytest.raises(BreakerOpen) as info:
        await e.reserve()
    assert info.value.state == "open" and info.value.retry_after == 200
    assert "the call took 1m15s (breakers.failures.slow_after is 1m)" in info.value.reason
    await e.store.close()


async def test_a_model_slow_for_several_agents_trips_the_models_breaker(tmp_path: Path):
    trip = {"consecutive": 3, "window_calls": 10, "min_calls": 10, "slow_after": "30s"}
    e = await start(tmp_path / "m.db", {"breakers": {"model_failures": trip}})
    for _ in range(2):
        await slow_call(e, 31, model=MODEL)
    await slow_call(e, 31, scope=OTHER, model=MODEL)
    assert await e.state(f"model:{MODEL}") == "open"
    [(scope, opened)] = await e.events("breaker_opened")
    assert scope == f"model:{MODEL}"
    assert opened["reason"].endswith(
        "the call took 31s (breakers.model_failures.slow_after is 30s)"
    )
    assert await e.state() == "closed"  # the agents' own limits have no slow_after
    await e.store.close()


async def test_a_scope_prefix_sets_its_own_slow_after(tmp_path: Path):
    policy = {
        "breakers": {
            **BASE["breakers"],
            "scopes": {"acme/alice": {"failures": {"slow_after": "10s"}}},
        }
    }
    e = await start(tmp_path / "p.db", policy)
    for _ in range(3):
        await slow_call(e, 11, scope=OTHER)  # acme/bob: the top level has none
    assert await e.state(OTHER) == "closed"
    for _ in range(3):
        await slow_call(e, 11)
    with pytest.raises(BreakerOpen) as info:
        await e.reserve()
    assert info.value.reason.endswith(
        "the call took 11s (breakers.scopes.acme/alice.failures.slow_after is 10s)"
    )
    await e.store.close()


@pytest.mark.parametrize(
    ("value", "said"),
    [("soon", "slow_after"), ("-5m", "slow_after"), (True, "slow_after"), ("1.5.2s", "slow_after")],
)
def test_a_bad_slow_after_stops_start_up_naming_it(value: object, said: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(slow_policy(slow_after=value))
    assert f"breakers.failures.{said}" in str(info.value)


def test_slow_after_reads_durations_and_defaults_to_off() -> None:
    assert parse_policy(slow_policy(slow_after="90s")).breakers.failures.slow_after == 90
    assert parse_policy({}).breakers.failures.slow_after == 0
    assert parse_policy({}).breakers.model_failures.slow_after == 0


async def test_a_prefix_that_leaves_slow_after_out_names_the_top_level_key(tmp_path: Path):
    """recheck23 L2: the reason named breakers.scopes.acme/alice.failures.slow_after, which
    the file does not have: the prefix only inherits the top level's value."""
    policy = slow_policy(slow_after="10s")
    policy["breakers"]["scopes"] = {"acme/alice": {"failures": {"consecutive": 3}}}
    e = await start(tmp_path / "p.db", policy)
    for _ in range(3):
        await slow_call(e, 11)
    with pytest.raises(BreakerOpen) as info:
        await e.reserve()
    assert info.value.reason.endswith("the call took 11s (breakers.failures.slow_after is 10s)")
    await e.store.close()
