"""Follow-the-sun rotations (audit27 parity #6): a rotation on call only in its hours and
days, in its own time zone; a step whose rotation is off hours is passed over."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.alerts.escalation import nobody_reason, notify_target
from bot.alerts.oncall import Override, on_call, on_hours, shift_at
from guards.config import PolicyError, Rotation, parse_policy

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def rotation(**keys: Any) -> Rotation:
    return Rotation.model_validate({"name": "eu", "users": ["U0DANA"], **keys})


EU = rotation(timezone="Europe/Berlin", hours="08:00-20:00")
US = Rotation.model_validate(
    {"name": "us", "users": ["U0SAM"], "timezone": "America/Los_Angeles", "hours": "08:00-20:00"}
)


def two_teams(**oncall: Any) -> Any:
    return parse_policy(
        {
            "oncall": {
                "rotations": [EU.model_dump(exclude_none=True), US.model_dump(exclude_none=True)],
                "escalation": [
                    {"notify": "rotation:eu", "after": "0m"},
                    {"notify": "rotation:us", "after": "5m"},
                ],
                **oncall,
            }
        }
    ).oncall


def test_hours_are_read_in_the_rotations_own_zone():
    # Thu 01 Jan 2026 03:00 in Berlin is Wed 18:00 in San Francisco
    assert not on_hours(EU, UTC_ZONE, utc(2026, 1, 1, 2))
    assert on_hours(US, UTC_ZONE, utc(2026, 1, 1, 2))
    # 10:00 in Berlin is 01:00 in San Francisco
    assert on_hours(EU, UTC_ZONE, utc(2026, 1, 1, 9))
    assert not on_hours(US, UTC_ZONE, utc(2026, 1, 1, 9))
    assert on_hours(EU, UTC_ZONE, utc(2026, 1, 1, 7))  # 08:00 sharp: on
    assert not on_hours(EU, UTC_ZONE, utc(2026, 1, 1, 19))  # 20:00 sharp: off


def test_without_hours_a_rotation_is_always_on():
    plain = rotation()
    assert all(on_hours(plain, BERLIN, utc(2026, 1, 1, h)) for h in range(24))
    assert on_call(plain, BERLIN, utc(2026, 1, 1, 2)).resumes_at is None


def test_a_range_across_midnight_belongs_to_the_day_it_starts():
    nights = rotation(timezone="Europe/Berlin", hours="22:00-06:00", days=["mon-fri"])
    # Fri 02 Jan 2026 23:00 Berlin: on; Sat 03:00 (Friday's night): on; Sat 23:00: off
    assert on_hours(nights, UTC_ZONE, utc(2026, 1, 2, 22))
    assert on_hours(nights, UTC_ZONE, utc(2026, 1, 3, 2))
    assert not on_hours(nights, UTC_ZONE, utc(2026, 1, 3, 22))
    assert not on_hours(nights, UTC_ZONE, utc(2026, 1, 2, 12))  # noon: off
    # Monday 03:00 is Sunday's night: off; Monday 23:00: on
    assert not on_hours(nights, UTC_ZONE, utc(2026, 1, 5, 2))
    assert on_hours(nights, UTC_ZONE, utc(2026, 1, 5, 22))


def test_days_leave_the_weekend_off_and_say_when_it_is_back():
    weekdays = rotation(
        timezone="Europe/Berlin", hours=["09:00-12:00", "13:00-17:00"], days="mon-fri"
    )
    sat_10 = utc(2026, 1, 3, 9)
    assert not on_hours(weekdays, UTC_ZONE, sat_10)
    who = on_call(weekdays, UTC_ZONE, sat_10)
    assert who.user == "U0DANA"
    assert who.resumes_at == utc(2026, 1, 5, 8)  # Mon 09:00 Berlin
    lunch = utc(2026, 1, 5, 11, 30)  # Mon 12:30
    assert on_call(weekdays, UTC_ZONE, lunch).resumes_at == utc(2026, 1, 5, 12)
    listed = rotation(hours="09:00-17:00", days=["sat", "sun"])
    assert on_hours(listed, UTC_ZONE, utc(2026, 1, 3, 9)) and not on_hours(
        listed, UTC_ZONE, utc(2026, 1, 5, 9)
    )


def test_hours_keep_to_the_wall_clock_across_spring_forward():
    # Berlin goes from CET to CEST on Sun 29 Mar 2026: 08:00 is 07:00 UTC the day before,
    # 06:00 UTC the day after
    assert not on_hours(EU, UTC_ZONE, utc(2026, 3, 28, 6, 30))
    assert on_hours(EU, UTC_ZONE, utc(2026, 3, 28, 7))
    assert on_hours(EU, UTC_ZONE, utc(2026, 3, 30, 6))
    assert on_call(EU, UTC_ZONE, utc(2026, 3, 30, 5)).resumes_at == utc(2026, 3, 30, 6)
    # an hour the clocks skip (02:30) starts as a hand-off there does: at 03:30 CEST
    skipped = rotation(timezone="Europe/Berlin", hours="02:30-05:00")
    assert on_call(skipped, UTC_ZONE, utc(2026, 3, 29, 0)).resumes_at == utc(2026, 3, 29, 1, 30)


def test_hours_keep_to_the_wall_clock_across_fall_back():
    # Berlin goes back on Sun 25 Oct 2026 at 03:00 CEST (01:00 UTC): 02:00-03:00 twice.
    # A range ends at the last time the clock reads its end: 22:00-02:00 lasts 5 hours
    night = rotation(timezone="Europe/Berlin", hours="22:00-02:00")
    assert on_hours(night, UTC_ZONE, utc(2026, 10, 24, 20))  # 22:00 CEST
    assert on_hours(night, UTC_ZONE, utc(2026, 10, 25, 0, 30))  # the first 02:30
    assert not on_hours(night, UTC_ZONE, utc(2026, 10, 25, 1))  # 02:00 CET: over
    assert on_call(night, UTC_ZONE, utc(2026, 10, 25, 1)).resumes_at == utc(2026, 10, 25, 21)
    # a range beginning in the repeated hour begins at the first one, once
    early = rotation(timezone="Europe/Berlin", hours="02:30-08:00")
    assert on_call(early, UTC_ZONE, utc(2026, 10, 25, 0)).resumes_at == utc(2026, 10, 25, 0, 30)
    assert on_hours(early, UTC_ZONE, utc(2026, 10, 25, 1, 15))  # the second 02:15: still on
    # the spring-forward night keeps its rule for an end the clocks skip: 03:30 CEST
    spring = rotation(timezone="Europe/Berlin", hours="22:00-02:30")
    assert on_hours(spring, UTC_ZONE, utc(2026, 3, 29, 1, 15))  # 03:15 CEST
    assert not on_hours(spring, UTC_ZONE, utc(2026, 3, 29, 1, 30))  # 03:30 CEST


def test_handoffs_follow_the_rotations_own_zone():
    # the policy's zone is UTC; the rotation hands off at Mon 09:00 Berlin = 08:00 UTC
    weekly = Rotation(
        name="eu", users=["U01", "U02"], handoff="mon 09:00", timezone="Europe/Berlin"
    )
    assert shift_at(weekly, UTC_ZONE, utc(2026, 1, 5, 8)).user == "U01"
    assert shift_at(weekly, UTC_ZONE, utc(2026, 1, 5, 7, 59)).user == "U02"
    # after spring forward, still 09:00 Berlin: 07:00 UTC
    after = shift_at(weekly, UTC_ZONE, utc(2026, 3, 30, 7))
    assert after.starts_at == utc(2026, 3, 30, 7)


def test_an_off_hours_step_is_passed_over_and_the_next_team_paged():
    oncall = two_teams()
    eu, us = oncall.escalation
    at_3_berlin = utc(2026, 1, 1, 2)
    assert notify_target(eu, oncall=oncall, tz=UTC_ZONE, now=at_3_berlin, overrides=()) is None
    assert notify_target(us, oncall=oncall, tz=UTC_ZONE, now=at_3_berlin, overrides=()) == "U0SAM"
    assert nobody_reason(eu, oncall, tz=UTC_ZONE, now=at_3_berlin) == (
        "rotation eu is off hours until 08:00 (Europe/Berlin): passed over"
    )
    # without the instant, its hours
    assert nobody_reason(eu, oncall) == (
        "rotation eu is off hours (on call 08:00-20:00, Europe/Berlin): passed over"
    )
    at_10_berlin = utc(2026, 1, 1, 9)
    assert notify_target(eu, oncall=oncall, tz=UTC_ZONE, now=at_10_berlin, overrides=()) == "U0DANA"
    assert notify_target(us, oncall=oncall, tz=UTC_ZONE, now=at_10_berlin, overrides=()) is None


def test_nobody_on_hours_pages_the_first_steps_person():
    oncall = two_teams()
    eu, us = oncall.escalation
    at_7_berlin = utc(2026, 1, 1, 6)  # 22:00 in San Francisco: both off
    for step in (eu, us):  # a P1 enters at the second step: it is not lost either
        assert notify_target(step, oncall=oncall, tz=UTC_ZONE, now=at_7_berlin, overrides=()) == (
            "U0DANA"
        )


def test_an_override_is_on_call_whatever_the_hours():
    oncall = two_teams()
    eu = oncall.escalation[0]
    at_3_berlin = utc(2026, 1, 1, 2)
    cover = Override("eu", "U0COVER", at_3_berlin - 60, at_3_berlin + 3600)
    assert on_call(EU, UTC_ZONE, at_3_berlin, [cover]).resumes_at is None
    assert notify_target(eu, oncall=oncall, tz=UTC_ZONE, now=at_3_berlin, overrides=[cover]) == (
        "U0COVER"
    )


@pytest.mark.parametrize(
    ("keys", "said"),
    [
        ({"hours": "9-17"}, "oncall.rotations.0.hours.0: '9-17': write hours as '09:00-17:00'"),
        ({"hours": "09:00-09:00"}, "oncall.rotations.0.hours.0: '09:00-09:00' is no time"),
        ({"hours": "25:00-06:00"}, "oncall.rotations.0.hours.0"),
        ({"hours": ["08:00-12:00", "1pm-5pm"]}, "oncall.rotations.0.hours.1: '1pm-5pm'"),
        ({"hours": []}, "oncall.rotations.0.hours: an empty list"),
        ({"days": ["mon", "fry"]}, "oncall.rotations.0.days.1: 'fry' is not a day"),
        ({"days": "weekdays"}, "oncall.rotations.0.days.0: 'weekdays' is not a day"),
        ({"days": []}, "oncall.rotations.0.days: an empty list"),
        ({"timezone": "Berlin"}, "oncall.rotations.0.timezone"),
        ({"hours": 9}, "oncall.rotations.0.hours"),
    ],
)
def test_bad_hours_days_and_zones_are_refused_naming_the_key(keys, said):
    with pytest.raises(PolicyError) as refused:
        parse_policy({"oncall": {"rotations": [{"name": "eu", "users": ["U0DANA"], **keys}]}})
    assert said in str(refused.value), str(refused.value)


def test_days_read_ranges_and_lists():
    assert rotation(days="mon-fri").days == ["mon", "tue", "wed", "thu", "fri"]
    assert rotation(days=["sat", "Sun"]).days == ["sat", "sun"]
    assert rotation(days="fri-mon").days == ["mon", "fri", "sat", "sun"]
    assert rotation(hours="20:00-24:00").hours == ["20:00-24:00"]
