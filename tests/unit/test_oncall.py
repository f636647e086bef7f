"""Rotations: who is on call, hand-offs at local wall-clock time across DST, overrides."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts.escalation import Chain, notify_target
from bot.alerts.oncall import Override, handoffs, on_call, shift_at
from guards.config import Policy, PolicyError, Rotation, parse_policy

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def local(ts: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts, tz)


WEEKLY = Rotation(name="primary", users=["U01", "U02", "U03"], period="week", handoff="mon 09:00")


def test_first_user_from_the_first_handoff():
    # Mon 5 Jan 2026 09:00 CET = 08:00 UTC
    assert shift_at(WEEKLY, BERLIN, utc(2026, 1, 5, 8, 0)).user == "U01"
    assert shift_at(WEEKLY, BERLIN, utc(2026, 1, 5, 7, 59)).user == "U03"  # the week before
    assert shift_at(WEEKLY, BERLIN, utc(2026, 1, 12, 8, 0)).user == "U02"
    assert shift_at(WEEKLY, BERLIN, utc(2026, 1, 26, 8, 0)).user == "U01"  # cycles


def test_weekly_handoff_stays_at_nine_local_across_spring_forward():
    # Berlin goes from CET to CEST on Sun 29 Mar 2026: Mon 30 Mar 09:00 CEST = 07:00 UTC
    before = shift_at(WEEKLY, BERLIN, utc(2026, 3, 30, 6, 59, 59))
    after = shift_at(WEEKLY, BERLIN, utc(2026, 3, 30, 7, 0))
    assert before.user != after.user
    assert after.user == before.next_user
    assert before.ends_at == after.starts_at == utc(2026, 3, 30, 7, 0)
    assert local(after.starts_at, BERLIN).strftime("%a %H:%M") == "Mon 09:00"
    assert before.ends_at - before.starts_at == 7 * 86400 - 3600  # that week is an hour short


def test_daily_handoff_across_fall_back_in_new_york():
    daily = Rotation(name="d", users=["U0A", "U0B"], period="day", handoff="09:00")
    # New York falls back on Sun 1 Nov 2026: 09:00 EDT = 13:00 UTC, 09:00 EST = 14:00 UTC
    sat = shift_at(daily, NEW_YORK, utc(2026, 10, 31, 13, 0))
    sun = shift_at(daily, NEW_YORK, utc(2026, 11, 1, 14, 0))
    assert sat.ends_at == sun.starts_at
    assert sun.starts_at - sat.starts_at == 25 * 3600
    assert local(sun.starts_at, NEW_YORK).hour == 9
    assert shift_at(daily, NEW_YORK, utc(2026, 11, 1, 13, 30)).user == sat.user  # 08:30 EST


def test_handoff_in_the_spring_forward_gap_is_well_defined():
    daily = Rotation(name="d", users=["U0A", "U0B"], period="day", handoff="02:30")
    shifts = handoffs(daily, BERLIN, utc(2026, 3, 27, 12, 0), 5)
    for a, b in itertools.pairwise(shifts):
        assert a.ends_at == b.starts_at > a.starts_at
        assert a.user != b.user


def test_weekly_handoff_without_weekday_uses_the_start_date():
    rot = Rotation(
        name="r", users=["U0A", "U0B"], period="week", handoff="18:00", start="2026-02-04"
    )
    s = shift_at(rot, BERLIN, utc(2026, 2, 4, 17, 0))  # Wed 4 Feb 18:00 CET
    assert s.user == "U0A"
    assert local(s.starts_at, BERLIN).strftime("%a %H:%M") == "Wed 18:00"


def test_latest_active_override_wins_until_it_ends():
    now = utc(2026, 1, 6, 12, 0)
    overrides = [
        Override("primary", "U08", now - 60, now + 3600, created_at=now - 60),
        Override("primary", "U09", now - 30, now + 600, created_at=now - 30),
        Override("secondary", "U07", now - 30, now + 600, created_at=now - 30),
    ]
    who = on_call(WEEKLY, BERLIN, now, overrides)
    assert (who.user, who.until) == ("U09", now + 600)
    assert on_call(WEEKLY, BERLIN, now + 601, overrides).user == "U08"
    assert on_call(WEEKLY, BERLIN, now + 3601, overrides).user == "U01"


def test_policy_refuses_a_weekday_on_a_daily_rotation_and_a_bad_start():
    with pytest.raises(PolicyError, match="daily rotation"):
        parse_policy(
            {
                "oncall": {
                    "rotations": [
                        {"name": "r", "users": ["U0A"], "period": "day", "handoff": "mon 09:00"}
                    ]
                }
            }
        )
    with pytest.raises(PolicyError, match="start"):
        parse_policy({"oncall": {"rotations": [{"name": "r", "users": ["U0A"], "start": "soon"}]}})


@settings(max_examples=300, deadline=None)
@given(
    offset=st.floats(min_value=0, max_value=3 * 365 * 86400, allow_nan=False),
    tz=st.sampled_from([BERLIN, NEW_YORK, ZoneInfo("Australia/Sydney"), ZoneInfo("UTC")]),
    period=st.sampled_from(["day", "week"]),
    users=st.integers(min_value=1, max_value=5),
)
def test_every_instant_lies_in_exactly_one_shift_starting_at_the_local_handoff(
    offset, tz, period, users
):
    rot = Rotation(
        name="r",
        users=[f"U0{i}" for i in range(users)],
        period=period,
        handoff="mon 09:15" if period == "week" else "09:15",
    )
    now = utc(2026, 1, 1) + offset
    s = shift_at(rot, tz, now)
    assert s.starts_at <= now < s.ends_at
    start = local(s.starts_at, tz)
    assert (start.hour, start.minute) == (9, 15)
    if period == "week":
        assert start.weekday() == 0
    nxt = shift_at(rot, tz, s.ends_at)
    assert nxt.starts_at == s.ends_at
    assert nxt.index == s.index + 1
    assert abs((s.ends_at - s.starts_at) - (7 if period == "week" else 1) * 86400) <= 3600


def _policy(**alerts: Any) -> Policy:
    return Policy.model_validate(
        {
            "alerts": alerts,
            "oncall": {
                "rotations": [
                    {"name": "primary", "users": ["U01", "U02"]},
                    {"name": "secondary", "users": ["U04"]},
                ],
                "escalation": [
                    {"notify": "rotation:primary", "after": "0m"},
                    {"notify": "rotation:secondary", "after": "5m"},
                    {"notify": "channel", "after": "15m"},
                ],
            },
        }
    )


def test_chain_steps_gaps_and_repeats():
    chain = Chain.from_policy(_policy(repeat_escalation=1, repeat_escalation_after="10m"))
    assert chain.entry("P0") == 0 and chain.entry("P1") == 1 and chain.entry("P2") is None
    assert chain.following(0, entry=0) == (1, 300)
    assert chain.following(1, entry=0) == (2, 600)
    assert chain.following(2, entry=0) == (3, 600)  # round 2 from the entry step
    assert chain.following(2, entry=1) == (4, 600)  # a P1 repeats from the second step
    assert chain.following(5, entry=0) is None
    assert chain.describe(4) == "step 2 of 3, round 2"


def test_notify_targets_follow_the_rotation_and_overrides():
    policy = _policy()
    now = utc(2026, 1, 6, 12, 0)
    chain = Chain.from_policy(policy)

    def target(i: int, overrides: list[Override]) -> str | None:
        step = chain.steps[i]
        return notify_target(
            step, oncall=policy.oncall, tz=ZoneInfo("UTC"), now=now, overrides=overrides
        )

    assert (target(0, []), target(1, []), target(2, [])) == ("U01", "U04", None)
    assert target(0, [Override("primary", "U09", now - 1, now + 60)]) == "U09"


def test_without_escalation_a_policy_with_rotations_pages_the_first():
    policy = Policy.model_validate({"oncall": {"rotations": [{"name": "ops", "users": ["U01"]}]}})
    chain = Chain.from_policy(policy)
    assert [s.notify for s in chain.steps] == ["rotation:ops"]
    assert Chain.from_policy(Policy()).entry("P0") is None


def test_next_handoffs_preview():
    shifts = handoffs(WEEKLY, BERLIN, utc(2026, 1, 7, 0, 0), 3)
    assert [s.user for s in shifts] == ["U01", "U02", "U03"]
    assert shifts[1].starts_at - shifts[0].starts_at == timedelta(days=7).total_seconds()
