"""Alert words that carry money or time: exact when rounding would hide the point."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.alerts.render_summary import summary
from bot.alerts.render_time import duration

UTC = ZoneInfo("UTC")


def test_an_overrun_under_a_cent_is_shown_exactly_not_as_zero():
    facts = {
        "reservation_id": "res_1",
        "charged_micros": 52_000,
        "held_micros": 50_000,
        "overrun_micros": 2_000,
    }
    assert summary("overrun", facts, UTC) == "res_1 charged $0.052 on a $0.05 hold: $0.002 over"
    whole = {**facts, "charged_micros": 1_500_000, "held_micros": 1_000_000}
    whole["overrun_micros"] = 500_000
    assert summary("overrun", whole, UTC).endswith("$1.50 on a $1.00 hold: $0.50 over")


def test_durations_under_an_hour_keep_their_seconds():
    assert [duration(s) for s in (45, 60, 90, 719, 3600, 3660)] == [
        "45s",
        "1m",
        "1m 30s",
        "11m 59s",
        "1h",
        "1h 1m",
    ]


def test_money_after_a_trip_below_a_cent_is_not_shown_as_nothing():
    """audit21 guards F4: "since then $0.00 more from 2 calls" when money was charged."""
    facts = {"reason": "r", "after_trip_micros": 4_000, "after_trip_calls": 2}
    assert summary("breaker_opened_spend", facts, UTC).endswith(
        "since then $0.004 more from 2 calls granted before it opened"
    )
    facts["after_trip_micros"] = 1_234_000
    assert "since then $1.23 more" in summary("breaker_opened_spend", facts, UTC)


def test_counts_agree_with_their_nouns():
    """audit24 C L1: "job j-cap ran 1 times this hour (cap 1)"."""
    cap = {"job": "j-cap", "runs": 1, "limit": 1}
    assert summary("job_run_cap", cap, UTC) == (
        "job j-cap ran 1 time this hour (cap 1); further runs are skipped"
    )
    assert "ran 2 times this hour (cap 2)" in summary(
        "job_run_cap", {**cap, "runs": 2, "limit": 2}, UTC
    )
    assert "ran ? times" in summary("job_run_cap", {"job": "j"}, UTC)  # the event did not say
    runaway = {"stream": "posts", "count": 3, "expected_count": 1, "scope": "a/b/c"}
    assert summary("runaway", runaway, UTC).startswith(
        "stream posts: 3 items where about 1 was expected; the whole batch was rejected"
    )
    many = summary("runaway", {**runaway, "count": 12, "expected_count": 4}, UTC)
    assert many.startswith("stream posts: 12 items where about 4 were expected;")
    burst = {"stream": "posts", "rejected": 1, "window_seconds": 3600, "scope": "a/b/c"}
    assert summary("duplicate_burst", burst, UTC).startswith(
        "stream posts: 1 duplicate rejected in 1h"
    )
    one = {**burst, "stream_counts": {"posts": 1}}  # one stream: as before
    assert summary("duplicate_burst", one, UTC).startswith("stream posts: 1 duplicate rejected")
    several = {**burst, "stream_counts": {"<!here>": 2, "posts": 1, "bad": "x"}}
    assert summary("duplicate_burst", several, UTC).startswith(
        "3 duplicates in 2 streams (&lt;!here&gt; 2, posts 1) rejected in 1h"
    )
