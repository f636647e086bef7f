"""``from <when>`` of ``oncall override``: the instant a booked override starts."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.alerts.oncall import MAX_AHEAD_DAYS, WhenError, start_at

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


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
