"""The breaker engine on a real SQLite store: rows, events, restarts, rollbacks, operators."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from guards.breaker_attempts import ATTEMPTS_RETENTION_SECONDS, prune_attempts
from guards.breakers import Breakers, parse_key
from guards.clock import ManualClock
from guards.config import parse_policy
from guards.errors import AttemptsExhausted, BreakerOpen, Conflict, GuardError, InvalidInput
from guards.ledger import Ledger, ReserveRequest, SettleRequest
from guards.store import Store
from guards.tokens import Token, create_token

BOT = "acme/alice/bot"
OTHER = "acme/bob/other"


@dataclass
class Engine:
    store: Store
    ledger: Ledger
    breakers: Breakers
    clock: ManualClock
    token: Token
    n: int = 0

    async def reserve(
        self,
        scope: str = BOT,
        micros: int = 1_000,
        task_id: str | None = None,
        model: str | None = None,
    ) -> str:
        self.n += 1
        req = ReserveRequest(
            scope=scope,
            idempotency_key=f"{self.token.id}-{self.n}",  # a new call, also after a restart
            max_cost_micros=micros,
            task_id=task_id,
            model=model,
        )
        _, answer = await self.store.write(
            lambda tx: self.ledger.reserve(tx, token=self.token, req=req)
        )
        return str(answer["reservation_id"])

    async def settle(self, res_id: str, outcome: str = "success", micros: int = 1_000) -> Any:
        req = SettleRequest(outcome=outcome, actual_cost_micros=micros)
        return await self.store.write(
            lambda tx: self.ledger.settle(tx, token=self.token, res_id=res_id, req=req)
        )

    async def call(
        self,
        scope: str = BOT,
        outcome: str = "success",
        micros: int = 1_000,
        model: str | None = None,
    ) -> str:
        res_id = await self.reserve(scope, micros, model=model)
        await self.settle(res_id, outcome, micros)
        return res_id

    async def events(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.store.fetch(
            "SELECT scope, payload FROM events WHERE kind = ? ORDER BY id", (kind,)
        )
        return [(r[0], json.loads(r[1])) for r in rows]

    async def transitions(self, scope: str = BOT) -> list[tuple[Any, ...]]:
        rows = await self.store.fetch(
            "SELECT from_state, to_state, actor FROM breaker_transitions WHERE scope = ?"
            " ORDER BY id",
            (scope,),
        )
        return [tuple(r) for r in rows]

    async def state(self, scope: str = BOT) -> str:
        return (await self.store.write(lambda tx: self.breakers.get(tx, scope))).state


BASE: dict[str, Any] = {
    "breakers": {
        "failures": {"consecutive": 3, "rate": 0.5, "window_calls": 10, "min_calls": 10},
        "spend_rate": {"max": "0.01", "per_seconds": 60},
        "cooldown_seconds": 100,
        "max_cooldown_seconds": 1000,
        "half_open": {"mode": "approval", "trial_calls": 2, "trial_budget": "0.005"},
    }
}


async def start(
    path: Path | str, policy: dict[str, Any] | None = None, clock: ManualClock | None = None
) -> Engine:
    clock = clock or ManualClock()
    store = await Store.open(path, clock=clock)
    pol = parse_policy(policy or BASE)
    ledger = Ledger(policy=pol)
    breakers = Breakers(policy=pol)
    ledger.gates.append(breakers)
    store.before_batch.append(ledger.expire_due)
    store.on_rollback.append(ledger.forget)
    breakers.attach(store)
    token, _ = await store.write(lambda tx: create_token(tx, scope="acme"))
    return Engine(store, ledger, breakers, clock, token)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    e = await start(tmp_path / "b.db")
    yield e
    await e.store.close()


async def test_failures_open_the_agent_breaker_with_a_row_an_event_and_a_refusal(engine):
    for _ in range(3):
        await engine.call(outcome="failure")
    with pytest.raises(BreakerOpen) as info:
        await engine.reserve()
    assert info.value.retry_after == 100 and info.value.scope == BOT
    assert "3 failures in a row" in info.value.reason
    assert await engine.transitions() == [("closed", "open", "breaker")]
    [(scope, payload)] = await engine.events("breaker_opened")
    assert scope == BOT and payload["trip"] == "failures" and payload["cooldown_seconds"] == 100
    await engine.call(scope=OTHER)  # another agent is not affected


async def test_conversations_are_governed_by_their_agent(engine):
    for _ in range(3):
        await engine.call(scope=f"{BOT}/c{_}", outcome="timeout")
    with pytest.raises(BreakerOpen):
        await engine.reserve(scope=f"{BOT}/c9")


async def test_cooldown_comes_from_rows_so_a_restart_loses_nothing(tmp_path):
    e = await start(tmp_path / "r.db")
    for _ in range(3):
        await e.call(outcome="failure")
    await e.store.close()
    clock = e.clock
    clock.advance(99)
    e = await start(tmp_path / "r.db", clock=clock)
    assert await e.store.write(e.breakers.tick) == 0
    with pytest.raises(BreakerOpen) as info:
        await e.reserve()
    assert info.value.retry_after == 1
    clock.advance(1)
    assert await e.store.write(e.breakers.tick) == 1
    assert await e.store.write(e.breakers.tick) == 0
    assert await e.state() == "half_open_pending"
    [(scope, payload)] = await e.events("half_open_requested")
    assert scope == BOT and payload["trial_calls"] == 2 and payload["trial_budget_micros"] == 5_000
    await e.store.close()


async def test_the_cooldown_is_applied_lazily_without_a_tick(tmp_path):
    policy = {"breakers": {**BASE["breakers"], "failures_half_open_mode": "auto"}}
    e = await start(tmp_path / "l.db", policy)
    for _ in range(3):
        await e.call(outcome="failure")
    e.clock.advance(100)
    await e.call()  # admitted as the first trial call, without any tick
    await e.call()
    assert await e.state() == "closed"
    assert [t[1] for t in await e.transitions()] == ["open", "half_open", "closed"]
    await e.store.close()


async def test_approval_admits_exactly_the_trial_calls_then_closes(engine):
    for _ in range(3):
        await engine.call(outcome="failure")
    engine.clock.advance(100)
    with pytest.raises(BreakerOpen) as info:
        await engine.reserve()
    assert info.value.state == "half_open_pending"
    row = await engine.store.write(lambda tx: engine.breakers.approve(tx, BOT, "U_DANA"))
    assert row.state == "half_open" and row.trial == {
        "calls": 2,
        "admitted": 0,
        "succeeded": 0,
        "budget_micros": 5_000,
        "held_micros": 0,
        "charged_micros": 0,
    }
    first = await engine.reserve(micros=2_000)
    second = await engine.reserve(micros=2_000)
    with pytest.raises(BreakerOpen) as info:
        await engine.reserve(micros=1)
    assert "2 of 2 calls admitted" in info.value.reason
    await engine.settle(first, micros=2_000)
    await engine.settle(second, micros=2_000)
    assert await engine.state() == "closed"
    await engine.call()
    audit = await engine.store.fetch("SELECT actor, action, target, before, after FROM audit")
    assert [tuple(a) for a in audit if a[1].startswith("breaker.")] == [
        ("nightshift", "breaker.trip", BOT, "closed", "open"),
        ("nightshift", "breaker.trial_requested", BOT, "open", "half_open_pending"),
        ("U_DANA", "breaker.approve", BOT, "half_open_pending", "half_open"),
        ("nightshift", "breaker.close", BOT, "half_open", "closed"),
    ]
    [(_, closed)] = await engine.events("breaker_closed")
    assert closed["reason"] == "all 2 trial calls succeeded"


async def test_a_failed_trial_reopens_with_a_doubled_cooldown(engine):
    for _ in range(3):
        await engine.call(outcome="failure")
    engine.clock.advance(100)
    await engine.store.write(lambda tx: engine.breakers.approve(tx, BOT, "U_DANA"))
    await engine.call(outcome="failure")
    with pytest.raises(BreakerOpen) as info:
        await engine.reserve()
    assert info.value.state == "open" and info.value.retry_after == 200
    opened = await engine.events("breaker_opened")
    assert [p["trip"] for _, p in opened] == ["failures", "trial"]


async def test_the_trial_budget_cannot_be_passed(engine):
    for _ in range(3):
        await engine.call(outcome="failure")
    await engine.store.write(lambda tx: engine.breakers.approve(tx, BOT, "U_DANA"))
    await engine.reserve(micros=5_000)  # exactly the trial budget
    engine.clock.advance(1)
    rows = await engine.store.write(lambda tx: engine.breakers.list(tx))
    assert rows[0].trial["held_micros"] == 5_000
    await engine.store.write(lambda tx: engine.breakers.keep_open(tx, BOT, "U_DANA"))
    await engine.store.write(
        lambda tx: engine.breakers.approve(tx, BOT, "U_DANA", trial_budget_micros=3_000)
    )
    with pytest.raises(BreakerOpen) as info:
        await engine.reserve(micros=3_001)
    assert "trial budget hit" in info.value.reason and info.value.state == "open"


async def test_a_trial_call_whose_hold_expires_reopens_at_the_tick(engine):
    for _ in range(3):
        await engine.call(outcome="failure")
    await engine.store.write(lambda tx: engine.breakers.approve(tx, BOT, "U_DANA", trial_calls=1))
    await engine.reserve()
    engine.clock.advance(601)  # past the reservation's ttl
    assert await engine.store.write(engine.breakers.tick) == 1
    assert await engine.state() == "open"


async def test_spend_rate_trips_exactly_at_the_limit_and_survives_a_restart(tmp_path):
    e = await start(tmp_path / "s.db")
    await e.call(micros=4_000)
    await e.call(micros=5_999)  # 9,999 of 10,000 in the last minute
    assert await e.state() == "closed"
    await e.store.close()
    clock = e.clock
    clock.advance(30)
    e = await start(tmp_path / "s.db", clock=clock)  # the window is rebuilt from reservations
    await e.call(micros=1)  # 10,000: at the threshold
    assert await e.state() == "open"
    [(_, payload)] = await e.events("breaker_opened")
    assert payload["trip"] == "spend"
    assert payload["figures"] == {"spent_micros": 10_000, "limit_micros": 10_000, "per_seconds": 60}
    await e.store.close()


async def test_spend_leaves_the_window_after_per_seconds(engine):
    await engine.call(micros=9_000)
    engine.clock.advance(60)
    await engine.call(micros=9_000)
    assert await engine.state() == "closed"


async def test_a_clean_close_empties_the_spend_window(engine):
    await engine.call(micros=10_000)
    await engine.store.write(lambda tx: engine.breakers.approve(tx, BOT, "U1", trial_calls=1))
    await engine.call(micros=1_000)
    assert await engine.state() == "closed"
    engine.clock.advance(1)
    await engine.call(micros=8_000)  # the $0.01 from before the trip no longer counts
    assert await engine.state() == "closed"


async def test_namespace_spend_rate_refuses_every_agent_of_the_namespace(tmp_path):
    policy = {
        "breakers": {
            **BASE["breakers"],
            "spend_rate": None,
            "namespace_spend_rate": {"max": "0.02", "per_seconds": 60},
        }
    }
    e = await start(tmp_path / "n.db", policy)
    await e.call(micros=10_000)
    await e.call(scope=OTHER, micros=10_000)
    with pytest.raises(BreakerOpen) as info:
        await e.reserve(scope="acme/carol/third")
    assert info.value.scope == "acme"
    await e.store.close()


async def test_the_attempt_past_the_limit_is_refused_and_counts_as_a_failure(engine):
    for _ in range(3):
        await engine.reserve(task_id="t1")
    with pytest.raises(AttemptsExhausted) as info:
        await engine.reserve(task_id="t1")
    assert (info.value.attempts, info.value.limit, info.value.scope) == (3, 3, BOT)
    await engine.reserve(task_id="t2")
    with pytest.raises(AttemptsExhausted):
        await engine.reserve(task_id="t1")
    [(_, event)] = await engine.events("attempts_exhausted")  # announced once per task
    assert event["task_id"] == "t1"
    with pytest.raises(AttemptsExhausted):
        await engine.reserve(task_id="t1")  # the third refusal in a row trips the breaker
    with pytest.raises(BreakerOpen) as opened:
        await engine.reserve(task_id="t3")
    assert "asked past its 3 attempts" in opened.value.reason
    [(_, payload)] = await engine.events("breaker_opened")
    assert payload["trip"] == "attempts"


async def test_a_model_failing_for_several_agents_trips_its_own_breaker(tmp_path):
    model = "claude-haiku-4-5"
    trip = {"consecutive": 3, "window_calls": 10, "min_calls": 10}  # smaller than the defaults
    policy = {"breakers": {"model_failures": trip}}
    e = await start(tmp_path / "m.db", policy)
    is_open = lambda tx: e.breakers.is_model_open(tx, model)  # noqa: E731
    for _ in range(4):  # one agent failing alone does not trip the model
        await e.call(outcome="failure", model=model)
    assert not await e.store.write(is_open)
    await e.call(scope=OTHER, outcome="failure", model=model)  # a second agent does
    assert await e.store.write(is_open)
    await e.call(scope="acme/carol/x", outcome="success", model=model)  # advisory: not refused
    rows = await e.store.write(lambda tx: e.breakers.list(tx))
    assert [(r.scope, r.kind, r.state) for r in rows] == [(f"model:{model}", "model", "open")]
    [(scope, opened)] = await e.events("breaker_opened")
    assert scope == f"model:{model}" and opened["trip"] == "failures"
    e.clock.advance(900)  # auto half-open: the model's next settles are its trial
    assert not await e.store.write(is_open)
    for _ in range(3):
        await e.call(scope="acme/carol/x", outcome="success", model=model)
    assert await e.state(f"model:{model}") == "closed"
    await e.store.close()


async def test_force_open_a_user_refuses_its_agents_and_force_close_reopens_the_tap(engine):
    await engine.store.write(lambda tx: engine.breakers.force_open(tx, "acme/alice", "U1", "bug"))
    with pytest.raises(BreakerOpen) as info:
        await engine.reserve()
    assert info.value.scope == "acme/alice" and info.value.state == "forced_open"
    assert "forced open by U1: bug" in info.value.reason
    await engine.call(scope=OTHER)
    with pytest.raises(Conflict):
        await engine.store.write(lambda tx: engine.breakers.force_open(tx, "acme/alice", "U1"))
    await engine.store.write(lambda tx: engine.breakers.force_close(tx, "acme/alice", "U2"))
    await engine.call()
    audit = await engine.store.fetch(
        "SELECT actor, action FROM audit WHERE action LIKE 'breaker.%'"
    )
    assert [tuple(a) for a in audit] == [
        ("U1", "breaker.force_open"),
        ("U2", "breaker.force_close"),
    ]
    [(_, opened)] = await engine.events("breaker_opened")
    assert opened["trip"] == "manual" and opened["actor"] == "U1"


async def test_operator_input_is_checked(engine):
    with pytest.raises(InvalidInput):
        await engine.store.write(lambda tx: engine.breakers.force_open(tx, "acme//x", "U1"))
    with pytest.raises(InvalidInput):
        await engine.store.write(lambda tx: engine.breakers.approve(tx, BOT, "U1", trial_calls=0))
    with pytest.raises(Conflict):
        await engine.store.write(lambda tx: engine.breakers.approve(tx, BOT, "U1"))
    assert parse_key("acme/alice/bot/c1") == (BOT, "agent")


async def test_a_rolled_back_write_leaves_no_trace_in_memory(engine):
    await engine.call(outcome="failure")
    await engine.call(outcome="failure")
    res_id = await engine.reserve()

    def settle_then_crash(tx):
        engine.ledger.settle(
            tx,
            token=engine.token,
            res_id=res_id,
            req=SettleRequest(outcome="failure", actual_cost_micros=1),
        )
        raise RuntimeError("a bug after the settle")

    with pytest.raises(RuntimeError):
        await engine.store.write(settle_then_crash)
    row = await engine.store.write(lambda tx: engine.breakers.get(tx, BOT))
    assert row.state == "closed" and row.consecutive_failures == 2
    await engine.settle(res_id, outcome="success")
    await engine.call(outcome="failure")
    await engine.call(outcome="failure")
    assert await engine.state() == "closed"


async def test_disabled_breakers_are_a_no_op(tmp_path):
    e = await start(tmp_path / "d.db", {"breakers": {**BASE["breakers"], "enabled": False}})
    for _ in range(10):
        await e.call(outcome="failure", micros=10_000)
    for _ in range(5):
        await e.reserve(task_id="t")
    assert await e.store.fetch("SELECT * FROM breakers") == []
    with pytest.raises(GuardError):
        await e.store.write(lambda tx: e.breakers.force_open(tx, BOT, "U1"))
    await e.store.close()


async def test_list_shows_the_subtree_and_the_breakers_above_it(engine):
    for _ in range(3):
        await engine.call(scope=OTHER, outcome="failure")
    await engine.call()
    await engine.store.write(lambda tx: engine.breakers.force_open(tx, "acme", "U1", "freeze"))
    rows = await engine.store.write(lambda tx: engine.breakers.list(tx, within="acme/alice"))
    assert [r.scope for r in rows] == ["acme"]
    rows = await engine.store.write(lambda tx: engine.breakers.list(tx, within="acme/bob"))
    assert [(r.scope, r.state) for r in rows] == [("acme", "forced_open"), (OTHER, "open")]
    everything = await engine.store.write(lambda tx: engine.breakers.list(tx, True))
    assert {r.scope for r in everything} >= {"acme", OTHER, BOT}


async def test_attempt_counts_are_forgotten_a_week_after_the_last_attempt(engine):
    for _ in range(3):
        await engine.reserve(task_id="old")
    engine.clock.advance(6 * 86400)
    await engine.reserve(task_id="recent")
    engine.clock.advance(86400 + 1)
    forget = partial(prune_attempts, older_than_seconds=ATTEMPTS_RETENTION_SECONDS)
    assert await engine.store.write(forget) == 1  # what the retention job runs
    rows = await engine.store.fetch("SELECT task_id FROM breaker_attempts")
    assert [r["task_id"] for r in rows] == ["recent"]
    await engine.reserve(task_id="old")  # a forgotten task starts counting again


async def test_a_model_is_one_breaker_whatever_the_case_it_is_named_in(tmp_path):
    """review9 H1: a breaker tripped by `GPT-4o` calls is the one the list shows, the one
    `model:GPT-4o close` closes and the one routing asks about; a kill switch typed in
    another case stops the model and steers routing away from it."""
    trip = {"consecutive": 3, "window_calls": 10, "min_calls": 10}
    policy = {"breakers": {"model_failures": trip, "model_half_open_mode": "approval"}}
    e = await start(tmp_path / "m.db", policy)
    for _ in range(4):
        await e.call(outcome="failure", model="GPT-4o")
    await e.call(scope=OTHER, outcome="failure", model="gpt-4O")  # a second agent trips it
    rows = await e.store.write(lambda tx: e.breakers.list(tx))
    assert [(r.scope, r.state) for r in rows if r.kind == "model"] == [("model:gpt-4o", "open")]
    assert await e.store.write(lambda tx: e.breakers.is_model_open(tx, "gpt-4o"))
    row = await e.store.write(lambda tx: e.breakers.force_close(tx, "model:GPT-4o", "U1"))
    assert (row.scope, row.state) == ("model:gpt-4o", "closed")
    assert not await e.store.write(lambda tx: e.breakers.is_model_open(tx, "GPT-4o"))

    await e.store.write(lambda tx: e.breakers.force_open(tx, "model:Claude-X", "U1", "kill"))
    assert await e.store.write(lambda tx: e.breakers.is_model_open(tx, "claude-x"))
    with pytest.raises(BreakerOpen):
        await e.reserve(model="CLAUDE-X")
    await e.store.close()


async def test_model_keys_an_earlier_version_wrote_in_another_case_move_to_lower_case(tmp_path):
    e = await start(tmp_path / "m.db")
    await e.store.write(lambda tx: e.breakers.force_open(tx, "model:kept", "U1", "x"))
    await e.store.close()
    with sqlite3.connect(tmp_path / "m.db") as conn:  # as 0016's code left them
        conn.execute("UPDATE breakers SET key = 'model:Kept'")
        conn.execute("DELETE FROM schema_migrations WHERE version = 17")
    e = await start(tmp_path / "m.db")  # migrates
    keys = await e.store.fetch("SELECT key, state FROM breakers")
    assert [tuple(r) for r in keys] == [("model:kept", "forced_open")]
    await e.store.close()


async def test_a_model_row_in_another_case_beside_its_lower_case_row_goes(tmp_path):
    """audit11 day-2 L2: 0017 left `model:GPT-4o` beside `model:gpt-4o`: listed as open
    for good, and `breaker model:GPT-4o close` closed the other one."""
    e = await start(tmp_path / "m.db")
    await e.store.write(lambda tx: e.breakers.force_open(tx, "model:gpt-4o", "U1", "x"))
    await e.store.write(lambda tx: e.breakers.force_open(tx, "model:other", "U1", "y"))
    await e.store.close()
    with sqlite3.connect(tmp_path / "m.db") as conn:  # what 0016's code could leave
        conn.execute(
            "INSERT INTO breakers (key, kind, state, since, updated_at)"
            " SELECT 'model:GPT-4o', kind, 'open', since, updated_at FROM breakers"
            " WHERE key = 'model:gpt-4o'"
        )
        conn.execute("DELETE FROM schema_migrations WHERE version IN (17, 19)")
    e = await start(tmp_path / "m.db")  # migrates
    keys = await e.store.fetch("SELECT key, state FROM breakers ORDER BY key")
    assert [tuple(r) for r in keys] == [
        ("model:gpt-4o", "forced_open"),
        ("model:other", "forced_open"),
    ]
    await e.store.close()


async def test_made_up_agents_and_models_do_not_grow_memory_but_failures_are_kept(
    tmp_path, monkeypatch
):
    """audit11 security M3: every agent or model name a token made up stayed in memory."""
    import guards.breaker_records
    import guards.breaker_spend

    monkeypatch.setattr(guards.breaker_records, "MAX_ENTRIES", 40)
    monkeypatch.setattr(guards.breaker_spend, "MAX_WINDOWS", 20)
    e = await start(tmp_path / "mem.db")
    await e.call(outcome="failure")  # BOT has a failure in its window: it must stay
    await e.call(outcome="failure")
    await e.call(scope=OTHER, micros=10_000)  # OTHER's spend rate trips: open, kept
    assert await e.state(OTHER) == "open"
    for i in range(300):
        e.clock.advance(1)
        await e.call(scope=f"acme/mallory/a{i}", model=f"made-up-{i}", micros=1)
    records = e.breakers._records
    assert len(records.entries) <= 2 * 40 + 10
    spend = e.breakers._spend._spend
    # a minute of agents is still spending (one a second): at most twice that is kept
    assert spend is not None and len(spend) <= 2 * 61 + 1
    assert await e.state(OTHER) == "open"
    await e.call(outcome="failure")  # the third failure in a row trips BOT, as without eviction
    assert await e.state() == "open"
    await e.store.close()


async def test_a_breaker_waiting_for_approval_starts_its_trial_once_the_policy_says_auto(
    tmp_path,
):
    """audit17 policy M3: an operator going offline switched half_open.mode to auto and
    reloaded; the breaker already waiting for an approval kept waiting, its agent stopped."""
    e = await start(tmp_path / "m.db")
    for _ in range(3):
        await e.call(outcome="failure")
    e.clock.advance(100)
    assert await e.store.write(e.breakers.tick) == 1
    assert await e.state() == "half_open_pending"
    await e.store.close()
    auto = {"breakers": {**BASE["breakers"], "half_open": {"mode": "auto", "trial_calls": 2}}}
    e = await start(tmp_path / "m.db", auto, clock=e.clock)  # the reload
    assert await e.store.write(e.breakers.tick) == 1
    assert await e.state() == "half_open"
    [*_, last] = await e.transitions()
    assert last[:2] == ("half_open_pending", "half_open")
    # the request for a trial is answered: its alert resolves (review17 M3: it kept paging)
    [(scope, answered)] = await e.events("trial_answered")
    assert scope == BOT and answered["actor"] == "nightshift"
    assert answered["decision"] == "started: the policy starts trials itself now"
    await e.call()  # a trial call goes through
    await e.store.close()


async def test_windows_rebuilt_after_a_step_back_leave_out_charges_from_the_future(tmp_path):
    """review17 M2: a restart (a reload) after the wall clock stepped back rebuilt the
    spend window with the charges made before the step, "after now": a false trip."""
    e = await start(tmp_path / "s.db")
    await e.call(micros=6_000)  # of the 10,000 a minute allowed
    await e.store.close()
    e.clock.advance(-3600 + 61)  # an hour back, a minute lived
    e = await start(tmp_path / "s.db", clock=e.clock)
    await e.call(micros=6_000)
    assert await e.state() == "closed"
    await e.call(micros=5_000)  # and what is spent after the step still counts
    assert await e.state() == "open"
    await e.store.close()
