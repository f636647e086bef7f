"""A trial's calls in flight are its holds not settled (review28 R2 M1): they were counted
as the calls admitted less ``trial_succeeded``, which counts a scheduled job's successful
run too (``Breaker.trial_run``, never admitted), so after one such run the last call in
flight counted as settled: the trial closed with it in flight, naming money not spent
("… spent the trial's budget ($0.003 of $0.01)"), and its failure was then lost.

The real Breaker, on plain values and instants (its rules are pure).
"""

from __future__ import annotations

from guards.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from tests.unit.test_breaker_machine import fail, make


def trial_after_a_job_run(calls: int = 3) -> tuple[Breaker, float]:
    """A trial of ``calls`` calls within $0.01 whose agent's scheduled job ran (and
    succeeded) before any reservation of it: the run counts as a trial call that succeeded."""
    b = make(trial_calls=calls, trial_budget_micros=10_000, spend_max_micros=1_000_000)
    fail(b, 0.0, 3)
    now = 100.0
    b.expire(now)
    b.approve(now, actor="U1")
    assert b.state == HALF_OPEN
    assert b.trial_run(now + 1, failed=False, started=now + 0.5) is None
    assert b.trial_succeeded == 1
    return b, now + 2


def test_a_trial_does_not_close_while_a_call_is_in_flight_after_a_job_run() -> None:
    b, now = trial_after_a_job_run()
    for res_id, micros in (("r1", 3_000), ("r2", 7_000)):
        assert b.check(now, micros).trial
        b.admitted(res_id, micros)
    assert b.trial_in_flight == 2
    t = b.record(now, failed=False, source=b.key, res_id="r1", charged_micros=3_000)
    # before: closed here, "2 trial calls of 3 succeeded and spent the trial's budget
    # ($0.003 of $0.01)", r2 still in flight
    assert t is None and b.state == HALF_OPEN, (t, b.state)
    assert (b.trial_in_flight, b.trial_held_micros, b.trial_charged_micros) == (1, 7_000, 3_000)
    failed = b.record(now + 1, failed=True, source=b.key, res_id="r2", charged_micros=7_000)
    assert failed is not None and b.state == OPEN, failed  # its failure fails the trial
    assert failed.reason == "trial call r2 failed", failed.reason


def test_a_call_past_a_budget_all_held_fails_the_trial_after_a_job_run() -> None:
    b, now = trial_after_a_job_run()
    assert b.check(now, 10_000).trial
    b.admitted("r1", 10_000)  # in flight, holding the whole budget
    c = b.check(now + 1, 1)
    # before: closed ("1 trial call of 3 succeeded and spent the trial's budget ($0.00 of
    # $0.01)") and the call admitted as an ordinary one
    assert not c.admit and b.state == OPEN, (c, b.state)
    assert c.reason == "trial budget hit: $0.01 held + $0.000001 asked is over $0.01", c.reason


def test_a_trial_whose_calls_were_charged_its_budget_passes_once_none_is_in_flight() -> None:
    b, now = trial_after_a_job_run(calls=4)
    for res_id in ("r1", "r2"):
        assert b.check(now, 5_000).trial
        b.admitted(res_id, 5_000)
    assert b.record(now, failed=False, source=b.key, res_id="r1", charged_micros=5_000) is None
    t = b.record(now, failed=False, source=b.key, res_id="r2", charged_micros=5_000)
    assert t is not None and (t.to_state, b.state) == (CLOSED, CLOSED), t
    assert t.reason == "3 trial calls of 4 succeeded and spent the trial's budget ($0.01 of $0.01)"
