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


def test_a_job_run_takes_a_trial_slot_so_the_trial_closes_with_none_in_flight() -> None:
    """review28 R6 M1: the count exit. README (jobs): a job run in a trial is one of its
    calls, so a trial of 3 after one run admits 2 reservations, not 3, and closes at the
    second's settle with nothing in flight; before, it admitted 3 and closed at the 2nd
    settle ("all 3 trial calls succeeded") with the 3rd running, whose failure was lost."""
    b, now = trial_after_a_job_run()
    for res_id in ("r1", "r2"):
        assert b.check(now, 1_000).trial
        b.admitted(res_id, 1_000)
    third = b.check(now, 1_000)
    assert not third.admit and not third.trial and b.state == HALF_OPEN, third
    assert third.reason == (
        "trial in progress: 1 job run of the agent succeeded and 2 admitted of 3 calls,"
        " waiting for their results"
    ), third.reason
    assert third.retry_after > 0
    assert b.record(now, failed=False, source=b.key, res_id="r1", charged_micros=1_000) is None
    t = b.record(now + 1, failed=False, source=b.key, res_id="r2", charged_micros=1_000)
    assert t is not None and b.state == CLOSED and b.trial_in_flight == 0, t
    assert t.reason == "all 3 trial calls succeeded (1 of them a job run)", t.reason


def test_a_call_released_after_a_job_run_gives_its_slot_back() -> None:
    b, now = trial_after_a_job_run()
    for res_id in ("r1", "r2"):
        assert b.check(now, 1_000).trial
        b.admitted(res_id, 1_000)
    b.released("r2")
    assert b.check(now, 1_000).trial  # r2's slot is free again, the run's is not
    b.admitted("r3", 1_000)
    assert not b.check(now, 1_000).admit
    assert b.record(now, failed=False, source=b.key, res_id="r1", charged_micros=1_000) is None
    t = b.record(now, failed=True, source=b.key, res_id="r3", charged_micros=1_000)
    assert t is not None and b.state == OPEN and t.reason == "trial call r3 failed", t


def test_the_count_exit_waits_for_a_call_in_flight() -> None:
    """Both exits close only with nothing in flight: a trial whose successes reached
    ``trial_calls`` with a call still out (a row stored by the code before, which admitted
    one call past a job run) waits for it, and its failure fails the trial."""
    b, now = trial_after_a_job_run()
    b.trial_holds.update({"r1": 1_000, "r2": 1_000, "r3": 1_000})  # as the code before left it
    assert b.record(now, failed=False, source=b.key, res_id="r1", charged_micros=1_000) is None
    assert b.record(now, failed=False, source=b.key, res_id="r2", charged_micros=1_000) is None
    assert b.state == HALF_OPEN and b.trial_in_flight == 1
    t = b.record(now + 1, failed=True, source=b.key, res_id="r3", charged_micros=1_000)
    assert t is not None and b.state == OPEN and t.reason == "trial call r3 failed", t
