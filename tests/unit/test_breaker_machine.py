"""The pure breaker state machine: trips, cool-downs, trials, operators."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from guards.breaker import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    HALF_OPEN_PENDING,
    OPEN,
    Breaker,
    BreakerConfig,
    FailureWindow,
    SpendWindow,
    Transition,
)
from guards.breaker_view import row_of, shared
from guards.config_types import format_seconds
from guards.errors import Conflict

KEY = "acme/alice/bot"


def make(**kw: Any) -> Breaker:
    base: dict[str, Any] = {
        "consecutive": 3,
        "rate": 0.5,
        "window_calls": 10,
        "min_calls": 6,
        "cooldown_seconds": 100,
        "max_cooldown_seconds": 1000,
        "trial_calls": 3,
        "trial_budget_micros": 1_000,
        "spend_max_micros": 5_000,
        "spend_per_seconds": 60,
    }
    base.update(kw)
    return Breaker(KEY, BreakerConfig(**base))


def fail(b: Breaker, now: float, n: int = 1, source: str = KEY) -> Transition | None:
    t = None
    for _ in range(n):
        t = b.record(now, failed=True, source=source)
    return t


def must(t: Transition | None) -> Transition:
    assert t is not None
    return t


def deadline(b: Breaker) -> float:
    when = b.deadline()
    assert when is not None
    return when


# -- failure trips ---------------------------------------------------------------------


def test_consecutive_failures_trip_at_the_limit_not_before():
    b = make()
    assert fail(b, 0.0, 2) is None
    assert b.state == CLOSED
    t = fail(b, 1.0)
    assert t is not None and t.to_state == OPEN and t.trip == "failures"
    assert t.figures == {"consecutive": 3, "limit": 3}
    assert t.cooldown_seconds == 100
    assert "3 failures in a row" in b.reason


def test_a_success_resets_the_streak():
    b = make()
    fail(b, 0.0, 2)
    b.record(0.0, failed=False, source=KEY)
    assert fail(b, 0.0, 2) is None
    assert b.state == CLOSED


def test_failure_rate_trips_once_min_calls_are_known():
    b = make(consecutive=100, window_calls=10, min_calls=6, rate=0.5)
    # F S F S F: 3 of 5, but fewer than min_calls calls
    for i, failed in enumerate([True, False, True, False, True]):
        assert b.record(float(i), failed=failed, source=KEY) is None
    t = b.record(5.0, failed=True, source=KEY)  # 4 of 6 >= 50%
    assert t is not None and t.trip == "failures"
    assert t.figures["failures"] == 4 and t.figures["calls"] == 6


def test_the_success_that_brings_the_window_to_min_calls_at_the_limit_trips_it():
    """audit26 L3: F S F S F S (3 of 6 = 50%, min_calls 6) stayed closed until the next
    failure: the rate was judged only when a failure came. Judged after every outcome
    (resilience4j), the sixth call trips it, success or not; it names no model (the
    success was no outage's call) and quotes no error."""
    b = make(consecutive=100, window_calls=10, min_calls=6, rate=0.5)
    for i, failed in enumerate([True, False, True, False, True]):
        assert b.record(float(i), failed=failed, source=KEY, model="model:haiku") is None
    t = must(b.record(5.0, failed=False, source=KEY, model="model:haiku", detail="ignored"))
    assert (t.to_state, t.trip, b.state) == (OPEN, "failures", OPEN)
    assert t.reason == "3 of the last 6 calls failed (limit 50% of at least 6)"
    assert t.figures == {"failures": 3, "calls": 6, "rate": 0.5, "limit": 0.5}
    # one unit under the limit never trips: F S S F S S (2 of 6)
    under = make(consecutive=100, window_calls=10, min_calls=6, rate=0.5)
    for i, failed in enumerate([True, False, False, True, False, False]):
        assert under.record(float(i), failed=failed, source=KEY) is None
    # a success never trips on the streak, nor on failures from too few sources
    few = make(consecutive=2, window_calls=10, min_calls=2, rate=0.5, min_sources=2)
    few.record(0.0, failed=True, source="acme/a/one")
    assert few.record(1.0, failed=False, source="acme/b/two") is None
    assert few.state == CLOSED


def test_failure_rate_below_the_limit_does_not_trip():
    b = make(consecutive=100, window_calls=9, min_calls=9, rate=0.5)
    for i in range(40):  # one failure in three: 33%
        t = b.record(float(i), failed=i % 3 == 0, source=KEY)
        assert t is None
    assert b.state == CLOSED


def test_a_model_breaker_needs_failures_from_several_agents():
    b = make(consecutive=3, min_sources=2)
    assert fail(b, 0.0, 5, source="acme/a/one") is None
    t = fail(b, 1.0, 1, source="acme/b/two")
    assert t is not None and t.to_state == OPEN


def test_attempt_signals_trip_with_their_own_kind():
    b = make()
    fail(b, 0.0, 2)
    t = b.record(1.0, failed=True, source=KEY, signal="attempts", detail="task t1 asked past 3")
    assert t is not None and t.trip == "attempts"
    assert "task t1" in t.reason


def test_failure_window_round_trips_through_its_stored_form():
    w = FailureWindow(4)
    for failed, src in [(True, "a"), (False, "a"), (True, "b"), (True, "b"), (True, "a")]:
        w.add(failed, src)
    back = FailureWindow.decode(4, w.encode(), w.consecutive)
    assert list(back.items) == list(w.items) == [None, "b", "b", "a"]
    assert (back.failures, back.consecutive, dict(back.sources)) == (3, 3, {"b": 2, "a": 1})


def test_only_a_window_with_failures_is_stored():
    w = FailureWindow(3)
    assert [w.add(False, "a") for _ in range(5)] == [False] * 5
    assert w.add(True, "a") is True
    assert [w.add(False, "a") for _ in range(4)] == [True, True, True, False]
    assert w.failures == 0 and len(w.items) == 3


# -- spend rate ------------------------------------------------------------------------


def test_spend_rate_trips_exactly_at_the_threshold_not_before():
    b = make(spend_max_micros=5_000)
    assert b.on_spend(0.0, 4_999) is None
    assert b.state == CLOSED
    t = b.on_spend(0.0, 5_000)
    assert t is not None and t.trip == "spend" and b.state == OPEN
    assert t.figures == {"spent_micros": 5_000, "limit_micros": 5_000, "per_seconds": 60}
    assert "spent $0.005 in the last 1m (limit $0.005)" in t.reason  # not rounded (audit21 F4)


def test_spend_window_forgets_charges_exactly_per_seconds_later():
    w = SpendWindow(60)
    w.add(0.0, 100)
    w.add(30.0, 200)
    assert w.total_at(59.9) == 300
    assert w.total_at(60.0) == 200  # the window is (now - 60, now]
    assert w.total_at(90.0) == 0


@settings(max_examples=200, deadline=None)
@given(
    charges=st.lists(
        st.tuples(st.floats(0, 40, allow_nan=False), st.integers(0, 3_000)), max_size=40
    ),
    per=st.integers(1, 120),
    limit=st.integers(1, 20_000),
)
def test_spend_rate_trips_at_the_first_charge_that_reaches_the_limit(charges, per, limit):
    """Against brute force: the window sum is exact and the trip comes at the first sum >= limit."""
    b = make(spend_max_micros=limit, spend_per_seconds=per)
    window = SpendWindow(per)
    now = 0.0
    seen: list[tuple[float, int]] = []
    tripped_at = None
    for i, (step, micros) in enumerate(charges):
        now += step
        seen.append((now, micros))
        window.add(now, micros)
        total = window.total_at(now)
        assert total == sum(m for at, m in seen if at > now - per)
        t = b.on_spend(now, total)
        if tripped_at is None:
            assert (t is not None) == (total >= limit)
            if t is not None:
                tripped_at = i
        else:
            assert t is None  # an open breaker does not trip again


# -- cool-downs ------------------------------------------------------------------------


def test_cooldown_doubles_per_reopen_is_capped_and_resets_after_a_clean_close():
    b = make(cooldown_seconds=100, max_cooldown_seconds=500)
    now = 0.0
    fail(b, now, 3)
    assert b.cooldown_seconds == 100
    seen = []
    for _ in range(4):
        now = deadline(b)
        assert b.check(now - 0.5, 1).admit is False
        assert must(b.expire(now)).to_state == HALF_OPEN_PENDING
        b.approve(now, actor="U1")
        assert b.check(now, 1).admit
        b.admitted(f"r{now}", 1)
        t = must(b.record(now, failed=True, source=KEY, res_id=f"r{now}"))
        assert t.to_state == OPEN and t.trip == "trial"
        seen.append(b.cooldown_seconds)
    assert seen == [200, 400, 500, 500]
    now = deadline(b)
    b.expire(now)
    b.approve(now, actor="U1")
    for i in range(3):
        assert b.check(now, 1).admit
        b.admitted(f"ok{i}", 1)
    closing = [b.record(now, failed=False, source=KEY, res_id=f"ok{i}") for i in range(3)]
    assert closing[:2] == [None, None]
    assert must(closing[2]).to_state == CLOSED
    assert b.probation_until == now + 500  # as long as its last cool-down (audit21 F2)
    fail(b, now + 500, 3)  # the probation ran out: a first trip again
    assert b.state == OPEN and b.cooldown_seconds == 100 and b.reopens == 0


def trial_of(b: Breaker, *, calls: int, budget: int | None = None) -> float:
    """Approve the trial of a breaker at the end of its cool-down (with ``budget``, if
    given) and admit ``calls`` trial calls t0, t1, ...; returns that instant."""
    now = deadline(b)
    b.expire(now)
    b.approve(now, actor="U1", trial_budget_micros=budget)
    for i in range(calls):
        assert b.check(now, 1).admit
        b.admitted(f"t{i}", 1)
    return now


def pass_trial(b: Breaker, now: float, *, charged: int = 0) -> Transition:
    """Approve the trial of a breaker cooled down by ``now``; its calls all succeed."""
    b.expire(now)
    b.approve(now, actor="U1")
    transitions = []
    for i in range(b.trial_calls):
        assert b.check(now, 1).admit
        b.admitted(f"t{now}-{i}", 1)
        transitions.append(
            b.record(now, failed=False, source=KEY, res_id=f"t{now}-{i}", charged_micros=charged)
        )
    return must(transitions[-1])


def test_a_trip_soon_after_a_passed_trial_doubles_the_cooldown_on():
    """audit21 guards F2: a loop's calls all succeed, so it passed every trial, and each
    trip after it started again at the base cool-down: a page every cycle, for ever."""
    b = make(cooldown_seconds=100, spend_per_seconds=60)
    assert must(b.on_spend(0.0, 5_000)).cooldown_seconds == 100
    cooldowns = []
    now = 0.0
    for _ in range(3):  # the loop: trial passed, spend limit reached again 30 s later
        now = deadline(b)
        assert pass_trial(b, now).to_state == CLOSED
        t = must(b.on_spend(now + 30, 5_000))
        assert t.trip == "spend" and "tripped again 30s after its trial passed" in t.reason
        cooldowns.append(t.cooldown_seconds)
    assert cooldowns == [200, 400, 800]
    assert "so the cool-down doubles" in b.reason
    capped = make(cooldown_seconds=100, max_cooldown_seconds=100)  # (review22 L4)
    capped.on_spend(0.0, 5_000)
    pass_trial(capped, deadline(capped))
    assert "so the cool-down stays at its cap" in must(capped.on_spend(150.0, 5_000)).reason
    # the probation is the last cool-down, at least a spend window: past it, a first trip
    now = deadline(b)
    pass_trial(b, now)
    assert b.probation_until == now + 800  # it was kept open 800 s last
    assert row_of(b, "agent", now + 799).reopens == 3  # shown while on probation only
    assert row_of(b, "agent", now + 800).reopens == 0
    t = must(b.on_spend(now + 800, 5_000))
    assert t.cooldown_seconds == 100 and "after its trial" not in t.reason
    # a person's close ends the probation: the next trip is a first one
    now = deadline(b)
    pass_trial(b, now)
    b.force_open(now + 1, actor="U1", reason="looking into it")
    b.force_close(now + 2, actor="U1")
    assert must(b.on_spend(now + 3, 5_000)).cooldown_seconds == 100


def test_a_trial_whose_calls_charge_the_spend_limit_reopens_it():
    """audit21 guards F2: the trial was judged by its outcomes alone; a loop's trial
    calls spent three times the spend-rate limit and closed the breaker."""
    b = make(spend_max_micros=5_000, trial_budget_micros=100_000)
    b.on_spend(0.0, 5_000)
    now = trial_of(b, calls=2)
    assert b.record(now, failed=False, source=KEY, res_id="t0", charged_micros=4_999) is None
    t = must(b.record(now, failed=False, source=KEY, res_id="t1", charged_micros=1))
    assert t.to_state == OPEN and t.trip == "trial" and t.cooldown_seconds == 200
    assert t.reason == (
        "the trial's calls were charged $0.005, the spend-rate limit ($0.005 per 1m) on their own"
    )


@pytest.mark.parametrize("chosen", ["budget", "slow"])
def test_a_trial_budget_a_person_chose_or_a_slow_trial_is_not_judged_by_the_spend_rate(
    chosen: str,
):
    """review22 L5: the rule overrode the budget an approver gave the trial, and judged
    charges spread over far more than a spend window as a rate."""
    b = make(spend_max_micros=5_000, trial_budget_micros=100_000, trial_calls=2)
    b.on_spend(0.0, 5_000)
    now = trial_of(b, calls=2, budget=200_000 if chosen == "budget" else None)
    later = now + (61 if chosen == "slow" else 0)
    assert b.record(later, failed=False, source=KEY, res_id="t0", charged_micros=4_000) is None
    t = must(b.record(later, failed=False, source=KEY, res_id="t1", charged_micros=4_000))
    assert t.to_state == CLOSED


def test_auto_mode_goes_straight_to_a_trial():
    b = make(modes={"failures": "auto"})
    fail(b, 0.0, 3)
    check = b.check(100.0, 1)
    assert check.admit and check.trial
    assert [t.to_state for t in check.transitions] == [HALF_OPEN]


def test_spend_trips_wait_for_approval_by_default():
    b = make(modes={"failures": "auto", "spend": "approval"})
    b.on_spend(0.0, 10_000)
    check = b.check(100.0, 1)
    assert not check.admit and b.state == HALF_OPEN_PENDING
    assert [t.to_state for t in check.transitions] == [HALF_OPEN_PENDING]


def test_retry_after_is_the_remaining_cooldown():
    b = make()
    fail(b, 10.0, 3)
    check = b.check(45.2, 1)
    assert not check.admit and check.retry_after == 65


# -- trials ----------------------------------------------------------------------------


def open_then_approve(b: Breaker, **kw: Any) -> float:
    fail(b, 0.0, 3)
    now = deadline(b)
    b.approve(now, actor="U1", **kw)
    return now


def test_a_trial_admits_exactly_trial_calls():
    b = make()
    now = open_then_approve(b)
    for i in range(3):
        assert b.check(now, 10).admit
        b.admitted(f"r{i}", 10)
    refused = b.check(now, 10)
    assert not refused.admit and "3 of 3 calls admitted" in refused.reason
    assert b.state == HALF_OPEN


def test_a_model_breaker_shows_a_tenant_neither_a_trial_calls_error_nor_its_money():
    """audit23 tenants F1: a model's trial admits every tenant's calls."""
    b = make()
    now = open_then_approve(b)
    assert b.check(now, 10).admit
    b.admitted("res_other", 10)
    trial = row_of(b, "model", now)
    assert trial.trial is not None and trial.trial["held_micros"] == 10
    assert shared(trial).trial == {
        "calls": 3,
        "admitted": 1,
        "succeeded": 0,
        "budget_micros": b.trial_budget_micros,
    }
    b.record(now, failed=True, source="beta/x/y", res_id="res_other", detail="last error: Globex")
    failed = row_of(b, "model", now)
    assert failed.reason == "trial call res_other failed; last error: Globex"
    assert failed.figures["reservation_id"] == "res_other"
    seen = shared(failed)
    assert (seen.reason, "reservation_id" in seen.figures) == ("a trial call failed", False)
    assert shared(row_of(b, "agent", now)) == row_of(b, "agent", now)  # its own: whole
    wrapped = replace(failed, reason="trial started (10 failures (limit 10); last error: Globex)")
    assert shared(wrapped).reason == "trial started (10 failures (limit 10))"  # recheck23 N5


def test_the_trial_budget_may_be_reached_but_not_passed():
    b = make(trial_budget_micros=1_000)
    now = open_then_approve(b)
    assert b.check(now, 600).admit
    b.admitted("r1", 600)
    assert b.check(now, 400).admit  # exactly the budget
    b.admitted("r2", 400)
    b.released("r2")
    check = b.check(now, 401)  # 600 + 401 > 1000: the trial budget is hit
    assert not check.admit
    assert b.state == OPEN and b.trip == "trial" and b.cooldown_seconds == 200
    assert "trial budget hit" in check.reason


def test_a_released_trial_call_frees_its_slot():
    b = make(trial_calls=1)
    now = open_then_approve(b)
    assert b.check(now, 1).admit
    b.admitted("r1", 1)
    assert not b.check(now, 1).admit
    b.released("r1")
    assert b.check(now, 1).admit


def test_approval_may_set_its_own_trial():
    b = make()
    now = open_then_approve(b, trial_calls=1, trial_budget_micros=50)
    assert b.check(now, 50).admit
    b.admitted("r1", 50)
    t = must(b.record(now, failed=False, source=KEY, res_id="r1"))
    assert t.to_state == CLOSED


def test_settles_of_calls_from_before_the_trip_do_not_decide_the_trial():
    b = make()
    now = open_then_approve(b)
    assert b.record(now, failed=True, source=KEY, res_id="old") is None
    assert b.state == HALF_OPEN


def test_a_trial_charge_over_the_trial_budget_reopens():
    b = make(trial_budget_micros=100)
    now = open_then_approve(b)
    b.check(now, 100)
    b.admitted("r1", 100)
    t = must(b.record(now, failed=False, source=KEY, res_id="r1", charged_micros=150))
    assert t.to_state == OPEN and t.trip == "trial"


def test_model_trials_count_every_settle():
    b = make(trials_by_id=False, modes={"failures": "auto"})
    fail(b, 0.0, 3)
    b.expire(100.0)
    assert b.state == HALF_OPEN
    for _ in range(2):
        assert b.record(100.0, failed=False, source="x") is None
    assert must(b.record(100.0, failed=False, source="y")).to_state == CLOSED


def test_an_abandoned_trial_call_reopens():
    b = make()
    now = open_then_approve(b)
    b.check(now, 1)
    b.admitted("r1", 1)
    assert b.abandoned(now, "other") is None
    assert must(b.abandoned(now, "r1")).to_state == OPEN


# -- operators -------------------------------------------------------------------------


def test_forced_open_refuses_until_approved_or_closed():
    b = make()
    t = b.force_open(0.0, actor="U1", reason="runaway")
    assert t.to_state == FORCED_OPEN and t.trip == "manual" and t.actor == "U1"
    assert b.expire(10**9) is None  # no timer
    assert not b.check(10**9, 1).admit
    with pytest.raises(Conflict):
        b.force_open(1.0, actor="U1", reason="again")
    b.force_close(2.0, actor="U2")
    assert b.state == CLOSED and b.check(2.0, 1).admit
    with pytest.raises(Conflict):
        b.force_close(3.0, actor="U2")


def test_keep_open_doubles_the_cooldown_without_an_announcement():
    b = make()
    fail(b, 0.0, 3)
    b.expire(100.0)
    t = b.keep_open(100.0, actor="U1")
    assert t.to_state == OPEN and not t.announce
    assert b.cooldown_seconds == 200 and b.deadline() == 300.0
    assert "kept open by U1" in b.reason


def test_nothing_to_approve_on_a_closed_breaker():
    with pytest.raises(Conflict):
        make().approve(0.0, actor="U1")


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59, 60, 3600, 5400, 90061)] == [
        "0s",
        "59s",
        "1m",
        "1h",
        "1h30m",
        "1d1h1m1s",
    ]


# -- invariants over random histories --------------------------------------------------

OPS = st.one_of(
    st.tuples(st.just("advance"), st.integers(0, 400)),
    st.tuples(st.just("reserve"), st.integers(1, 600)),
    st.tuples(st.just("reserve"), st.integers(1, 300)),
    st.tuples(st.just("settle"), st.integers(0, 20), st.booleans(), st.integers(0, 800)),
    st.tuples(st.just("settle"), st.integers(0, 20), st.just(False), st.integers(0, 300)),
    st.tuples(st.just("fail"), st.integers(1, 3)),
    st.tuples(st.just("release"), st.integers(0, 20)),
    st.tuples(st.just("spend"), st.integers(0, 8_000)),
    st.tuples(st.just("approve"), st.one_of(st.none(), st.integers(1, 5))),
    st.tuples(st.just("keep_open")),
    st.tuples(st.just("force_open")),
    st.tuples(st.just("force_close")),
    st.tuples(st.just("pass_trial")),  # a trial's calls all succeed, cheaply
)


@settings(max_examples=400, deadline=None)
@given(
    ops=st.lists(OPS, min_size=20, max_size=120),
    auto=st.booleans(),
    trials_by_id=st.booleans(),
    spend_max=st.sampled_from([500, 5_000]),  # under the trial budget (1,000), and over
)
def test_invariants_over_random_histories(ops, auto, trials_by_id, spend_max):
    """Nothing admitted while refusing; a trial never passes trial_calls or its budget; a
    trip from closed doubles the cool-down on only within a passed trial's probation."""
    mode = "auto" if auto else "approval"
    b = make(
        consecutive=3,
        modes={"failures": mode, "spend": mode},
        trials_by_id=trials_by_id,
        max_cooldown_seconds=700,
        spend_max_micros=spend_max,
    )
    cfg = b.config
    now = 0.0
    outstanding: list[str] = []
    serial = 0
    episode_calls = 0
    for op in ops:
        was_half_open = b.state == HALF_OPEN
        before, reopens, probation = b.state, b.reopens, b.probation_until
        kind = op[0]
        if kind == "advance":
            now += op[1]
        elif kind == "reserve":
            amount = op[1]
            before = b.state
            cooling = before == OPEN and now < (b.deadline() or 0)
            check = b.check(now, amount)
            if check.admit:
                assert before not in (FORCED_OPEN, HALF_OPEN_PENDING) and not cooling
                assert b.state in (CLOSED, HALF_OPEN)
                assert not any(t.to_state == OPEN for t in check.transitions)
                serial += 1
                res_id = f"r{serial}"
                b.admitted(res_id, amount)
                outstanding.append(res_id)
                if check.trial:
                    event("a trial call was admitted")
            else:
                assert check.retry_after >= 1
                assert b.state in (OPEN, HALF_OPEN_PENDING, HALF_OPEN, FORCED_OPEN)
        elif kind == "settle" and outstanding:
            res_id = outstanding.pop(op[1] % len(outstanding))
            t = b.record(now, failed=op[2], source=KEY, res_id=res_id, charged_micros=op[3])
            if t is not None and t.to_state == CLOSED:
                event("a trial closed the breaker")
        elif kind == "fail":  # calls from before any trial, failing
            for _ in range(op[1]):
                b.record(now, failed=True, source=KEY)
        elif kind == "release" and outstanding:
            b.released(outstanding.pop(op[1] % len(outstanding)))
        elif kind == "spend":
            b.on_spend(now, op[1])
        elif kind == "pass_trial":
            while b.state == HALF_OPEN and b.check(now, 1).admit:
                serial += 1
                b.admitted(f"r{serial}", 1)
                b.record(now, failed=False, source=KEY, res_id=f"r{serial}", charged_micros=1)
        elif kind in ("approve", "keep_open", "force_open", "force_close"):
            try:
                if kind == "approve":
                    b.approve(now, actor="U1", trial_calls=op[1])
                elif kind == "keep_open":
                    b.keep_open(now, actor="U1")
                elif kind == "force_open":
                    b.force_open(now, actor="U1", reason="test")
                else:
                    b.force_close(now, actor="U1")
            except Conflict:
                pass
        if before == CLOSED and b.state == OPEN:  # a trip (a kill switch is forced_open)
            on_probation = probation is not None and now < probation
            assert b.reopens == (reopens + 1 if on_probation else 0)
            if on_probation:
                event("a trip on probation doubled the cool-down on")
        if before == HALF_OPEN and b.state == OPEN and "spend-rate limit" in b.reason:
            event("a trial re-opened on the spend rate")
        if b.state == HALF_OPEN and not was_half_open:
            episode_calls = 0
        if b.state == HALF_OPEN:
            if trials_by_id:
                episode_calls = len(b.trial_holds)
                assert episode_calls <= b.trial_calls
                assert b.trial_held_micros <= b.trial_budget_micros
            assert b.trial_succeeded < b.trial_calls
        if b.state == OPEN:
            assert b.probation_until is None  # an open breaker is on no probation
            assert b.cooldown_seconds == cfg.cooldown(b.reopens)
            assert cfg.cooldown_seconds <= b.cooldown_seconds <= cfg.max_cooldown_seconds
        if b.state == CLOSED:  # re-opens carry only through a passed trial's probation
            assert (b.reopens == 0 or b.probation_until is not None) and not b.trial_holds


def test_a_step_back_of_the_clock_keeps_charges_their_real_age():
    """audit17 time H2: after a step back of an hour, $1.50 and $1.00 charged 37 s apart
    against a 30 s window read as "spent $2.50 in the last 30s": a false trip and page."""
    window = SpendWindow(30)
    w0 = 1_800_000_000.0
    window.add(w0 - 5, 1_000)
    window.add(w0, 1_500_000)
    window.shift_back(3600)  # the clock watch saw the step a second after it
    later = w0 - 3600 + 37
    window.add(later, 1_000_000)
    assert window.total_at(later) == 1_000_000
    # a settle that came between the step and the watch's look stays where it is
    racing = SpendWindow(30)
    racing.add(w0, 1_500_000)
    racing.add(w0 - 3600 + 0.5, 700_000)  # after the step, before the look
    racing.shift_back(3600)
    assert [at for at, _ in racing.items] == [w0 - 3600, w0 - 3600 + 0.5]
    assert racing.total_at(w0 - 3600 + 1) == 2_200_000  # both within 30 s, really


@pytest.mark.parametrize("how", ["same model", "another model", "over budget"])
def test_a_failed_trial_keeps_the_trips_model_only_when_it_failed_on_that_model(how):
    # review30 L3: an agent follows (breakers.follow_model) only the model it fails on
    b = make()
    for _ in range(3):
        b.record(0.0, failed=True, source=KEY, model="model:haiku")
    assert b.figures["model"] == "model:haiku"
    now = trial_of(b, calls=1)
    if how == "over budget":
        t = b.record(now, failed=False, source=KEY, res_id="t0", charged_micros=5_000)
    else:
        on = "model:haiku" if how == "same model" else "model:sonnet"
        t = b.record(now, failed=True, source=KEY, res_id="t0", model=on)
    assert must(t).to_state == OPEN and t is not None and t.trip == "trial"
    assert b.figures.get("model") == ("model:haiku" if how == "same model" else None)


def test_a_trial_started_by_its_model_s_breaker_shows_its_budget_exactly():
    """review24 trial L5: a $0.105 trial said "$0.11" when a model's breaker started it
    (breakers.follow_model), "$0.105" when a person approved it."""
    b = make(trial_budget_micros=105_000)
    fail(b, 0.0, 3)
    t = b.follow(deadline(b), model="model:haiku")
    assert t.reason.startswith("trial of 3 calls up to $0.105 started: model:haiku's breaker")
