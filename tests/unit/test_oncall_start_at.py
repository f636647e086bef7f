"""``from <when>`` of ``oncall override``: the instant a booked override starts."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.alerts.when import MAX_AHEAD_DAYS, START_GRACE, WhenError, start_at

BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")


def at(text: str, zone: ZoneInfo = BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


NOW = at("2026-01-01T01:00")  # a Thursday


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("09:00", "2026-01-01T09:00"),  # later today
        ("01:00", "2026-01-02T01:00"),  # now is not later than now: tomorrow's
        ("0:30", "2026-01-02T00:30"),
        ("tomorrow 09:00", "2026-01-02T09:00"),
        ("Tomorrow 00:00", "2026-01-02T00:00"),
        ("thu 09:00", "2026-01-01T09:00"),  # today's is still ahead
        ("thursday 00:59", "2026-01-08T00:59"),  # today's is past: next week's
        ("SAT 09:00", "2026-01-03T09:00"),
        ("monday 09:00", "2026-01-05T09:00"),
        ("2026-04-02 01:00", "2026-04-02T01:00"),  # 91 days ahead, summer time
    ],
)
def test_a_start_is_the_next_such_time(words: str, expected: str) -> None:
    assert start_at(words.split(), BERLIN, NOW) == at(expected)


def test_a_time_the_clocks_skip_is_taken_as_a_hand_off_is() -> None:
    # Sun 29 Mar 2026: Berlin goes from 02:00 to 03:00; 02:30 is 03:30 summer time
    now = at("2026-03-28T12:00")
    assert start_at(["sun", "02:30"], BERLIN, now) == at("2026-03-29T03:30")


@pytest.mark.parametrize(
    ("words", "why"),
    [
        ("24:00", "`24:00` is not a time"),
        ("9h", "`9h` is not a time"),
        ("2026-02-29 09:00", "`2026-02-29` is not a date"),
        ("2026-01-01 00:59", "is past"),
        ("2026-04-03 01:01", f"at most {MAX_AHEAD_DAYS} days ahead"),
        ("next sat 09:00", "is not a start"),
        ("noon 12:00", "is not a start"),
    ],
)
def test_what_is_not_a_start_says_why(words: str, why: str) -> None:
    with pytest.raises(WhenError) as caught:
        start_at(words.split(), BERLIN, NOW)
    said = caught.value.why if caught.value.typed is None else str(caught.value)
    assert why.replace("`", "") in said.replace("`", "")


@pytest.mark.parametrize(
    ("typed_at", "words", "expected"),
    [
        ("2026-01-01T23:30:20", "23:30", "2026-01-01T23:30"),  # within the minute: now
        ("2026-01-01T23:30:59", "23:30", "2026-01-01T23:30"),
        ("2026-01-01T23:31:00", "23:30", "2026-01-02T23:30"),  # the minute is over: the next
        ("2026-01-01T23:30:20", "today 23:30", "2026-01-01T23:30"),
        ("2026-01-01T23:30:20", "thu 23:30", "2026-01-01T23:30"),
        ("2026-01-01T23:30:20", "2026-01-01 23:30", "2026-01-01T23:30"),
        # around midnight: "today" and "tomorrow" are of the instant typed
        ("2026-01-02T00:00:20", "00:00", "2026-01-02T00:00"),
        ("2026-01-02T00:00:20", "today 00:00", "2026-01-02T00:00"),
        ("2026-01-02T00:00:20", "tomorrow 00:05", "2026-01-03T00:05"),
        ("2026-01-02T00:00:20", "23:59", "2026-01-02T23:59"),  # last night's is long past
        ("2026-01-01T23:59:40", "00:00", "2026-01-02T00:00"),  # ahead: in 20 seconds
    ],
)
def test_a_start_within_the_last_minute_is_kept_for_the_caller_to_start_now(
    typed_at: str, words: str, expected: str
) -> None:
    assert start_at(words.split(), BERLIN, at(typed_at), grace=START_GRACE) == at(expected)


@pytest.mark.parametrize(
    ("typed_at", "words"),
    [
        ("2026-01-01T23:31:00", "today 23:30"),  # past beyond the minute: refused
        ("2026-01-01T23:31:00", "2026-01-01 23:30"),
        ("2026-01-02T00:01:00", "today 00:00"),
    ],
)
def test_a_start_past_beyond_the_minute_is_refused(typed_at: str, words: str) -> None:
    with pytest.raises(WhenError) as caught:
        start_at(words.split(), BERLIN, at(typed_at), grace=START_GRACE)
    assert "is past" in str(caught.value)


def test_a_time_the_clocks_show_twice_is_the_first_unless_it_is_past() -> None:
    # New York goes back on Sun 01 Nov 2026 at 02:00 EDT: 01:00-02:00 is shown twice
    ny = ZoneInfo("America/New_York")
    first, second = at("2026-11-01T05:30", UTC_ZONE), at("2026-11-01T06:30", UTC_ZONE)
    assert start_at(["sun", "01:30"], ny, at("2026-10-31T12:00", ny)) == first
    assert start_at(["01:30"], ny, at("2026-10-31T12:00", ny)) == first
    after_first = at("2026-11-01T05:45", UTC_ZONE)  # 01:45 EDT: the clock reads 01:30 again
    assert start_at(["01:30"], ny, after_first) == second
    assert start_at(["today", "01:30"], ny, after_first) == second
