"""A window's reset is the instant the ledger's period turns (guards.window_resets).

The ledger names an instant's periods with :func:`guards.usage.periods_at`; the reset
found from a period's name alone must be exactly the first instant whose period differs,
in zones whose clocks change at 02:00, at midnight itself (Havana, Santiago), by half an
hour (Lord Howe), and at odd offsets (Chatham, Kolkata).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from guards.usage import periods_at
from guards.window_resets import reset_words, resets_at, span, window_end

ZONES = [
    "UTC",
    "America/New_York",
    "America/Havana",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Europe/London",
]
WINDOWS = {"day": 0, "week": 1, "month": 2}


def _turn(ts: float, tz: ZoneInfo, index: int) -> float:
    """The first whole second after ``ts`` whose period (``index``) differs, by bisection."""
    here = periods_at(ts, tz)[index]
    low, high = int(ts), int(ts) + 32 * 86_400  # no period is longer than 31 days
    while high - low > 1:
        mid = (low + high) // 2
        if periods_at(mid, tz)[index] == here:
            low = mid
        else:
            high = mid
    return float(high)


@settings(max_examples=300, deadline=None)
@given(
    ts=st.integers(min_value=1_735_689_600, max_value=1_893_456_000),  # 2025 to 2030
    zone=st.sampled_from(ZONES),
    window=st.sampled_from(sorted(WINDOWS)),
)
def test_the_reset_is_the_instant_the_period_turns(ts: int, zone: str, window: str) -> None:
    tz = ZoneInfo(zone)
    index = WINDOWS[window]
    end = window_end(window, periods_at(ts, tz)[index], tz)
    assert end is not None
    assert end.timestamp() == _turn(ts, tz, index)
    assert end.utcoffset() == datetime.fromtimestamp(end.timestamp(), tz).utcoffset()


def test_the_days_the_clocks_change() -> None:
    ny, havana = ZoneInfo("America/New_York"), ZoneInfo("America/Havana")
    assert resets_at("day", "2027-03-13", ny) == "2027-03-14T00:00:00-05:00"
    assert resets_at("day", "2027-03-14", ny) == "2027-03-15T00:00:00-04:00"  # 23 h
    assert resets_at("day", "2027-11-07", ny) == "2027-11-08T00:00:00-05:00"  # 25 h
    # Havana skips its midnight in March: the day begins at 01:00
    assert resets_at("day", "2027-03-13", havana) == "2027-03-14T01:00:00-04:00"


def test_weeks_months_and_total() -> None:
    utc = ZoneInfo("UTC")
    assert resets_at("week", "2026-W53", utc) == "2027-01-04T00:00:00+00:00"
    assert resets_at("month", "2026-12", utc) == "2027-01-01T00:00:00+00:00"
    assert resets_at("month", "2027-02", utc) == "2027-03-01T00:00:00+00:00"
    assert resets_at("total", "all", utc) is None
    assert resets_at("day", "not-a-day", utc) is None


def test_the_words() -> None:
    ny = ZoneInfo("America/New_York")
    now = datetime(2026, 11, 27, 9, 30, tzinfo=ny).timestamp()  # Friday 09:30
    week = "2026-11-30T00:00:00-05:00"
    assert reset_words(week, window="week", zone=ny, now=now) == (
        "on Mon 30 Nov at 00:00 America/New_York (in 2d 14h)"
    )
    assert reset_words(week, window="day", zone=None, now=None) == "at 00:00 UTC-05:00"
    assert (span(0), span(61), span(3600), span(172_800)) == ("0s", "1m", "1h", "2d")
