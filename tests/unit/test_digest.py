"""The digest's pure parts: figures from rows, the words, the chart, when it is due."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.digest.chart import PALETTE, spend_chart
from bot.digest.compute import breaker_figures, compute
from bot.digest.model_outages import outages
from bot.digest.poster import due_day
from bot.digest.queries import RawDay, day_bounds
from bot.digest.render import render
from guards.config import Policy
from guards.prices import PriceTable

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 1, 5)
START, END = day_bounds(DAY, BERLIN)
H = 3600.0


def raw(**kw) -> RawDay:
    r = RawDay("acme", DAY, "Europe/Berlin", START, END, END + 9 * H)
    r.chart_days = [date(2025, 12, 30 + i) if i < 2 else date(2026, 1, i - 1) for i in range(7)]
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def digest(r: RawDay, **kw):
    return compute(r, policy=Policy(), prices=PriceTable(), limits=kw.pop("limits", {}), **kw)


def test_an_empty_day_degrades_section_by_section():
    d = digest(raw())
    text, blocks = render(d)
    assert "*Spend* $0.00 (no day budget for acme)" in text
    assert "no agent spent anything" in text
    assert "*By model* no charges" in text
    assert "*Model mix* no calls" in text
    assert "*Breakers* no trips" in text
    assert "*Validation* no rejections" in text
    assert "*Overruns* none" in text
    assert "Heartbeats" not in text and "Jobs" not in text and "Alerts" not in text
    assert "Chart" not in text and d.chart_series == []
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == "Nightshift digest · acme · Mon 2026-01-05 (Europe/Berlin)"


def test_spend_models_mix_and_savings_against_the_largest_tier():
    r = raw(
        namespace_spent=7_000_000,
        agent_spent={"acme/alice/rss-bot": 2_500_000, "acme/bob/ops-bot": 4_500_000},
        chart={
            "acme/alice/rss-bot": {"2026-01-05": 2_500_000, "2026-01-04": 1_000_000},
            "acme/bob/ops-bot": {"2026-01-05": 4_500_000},
        },
        models=[
            ("claude-haiku-4-5", 3, 2_500_000, 1, 0, 0),
            ("claude-sonnet-4-5", 2, 4_500_000, 0, 1, 500_000),
        ],
    )
    d = digest(r, limits={"acme": 200_000_000, "acme/bob/ops-bot": 10_000_000})
    # blended per MTok at 75% input: haiku $2, sonnet $6, opus-4-5 (the large tier) $10
    assert [m.micros_per_mtok for m in d.models] == [6_000_000, 2_000_000]
    assert d.would_cost_micros == 2_500_000 * 5 + 4_500_000 * 10 // 6  # $20.00
    assert d.saved_micros == 13_000_000
    assert d.tier_shares == {"small": 0.6, "medium": 0.4}
    # per token (audit27 B3 L3; it was per call, $3.60): $7.00 for the 1.25 + 0.75 MTok
    # the charges bought at haiku's $2 and sonnet's $6, so $10.00 is 20.00 / 7.00 = 2.9x
    assert d.blended_micros_per_mtok == 3_500_000
    text, _ = render(d)
    assert "*Spend* $7.00 of $200.00 day budget (4%)" in text
    # colours follow the 7-day totals: ops-bot $4.50, rss-bot $3.50
    assert "🟦 `▓▓▓▓░░░░░░` `acme/bob/ops-bot` $4.50 of $10.00 (45%)" in text
    assert "🟧 `▓▓▓▓▓▓░░░░` `acme/alice/rss-bot` $2.50" in text
    assert "*By model* claude-sonnet-4-5 $4.50 (2 calls) · claude-haiku-4-5 $2.50 (3 calls)" in text
    assert "1 of 5 calls failed or timed out" in text
    assert "*Model mix* small 60% · medium 40% of 5 calls" in text
    assert "blended $3.50 per million tokens; always claude-opus-4-5: $10.00 (2.9x)" in text
    assert "saved $13.00 against always using claude-opus-4-5 (it would have cost $20.00)" in text
    assert "*Overruns* 1 settle charged $0.50 beyond its hold" in text
    assert text.endswith(
        "Chart: spend by agent, last 7 days — 🟦 acme/bob/ops-bot · 🟧 acme/alice/rss-bot"
    )


def test_breaker_trips_and_the_longest_open():
    t = [
        ("acme/a/x", "closed", "open", "5 failures", "failures", START - 2 * H, "breaker"),
        ("acme/a/x", "open", "half_open", "trial", None, START - 1 * H, "breaker"),
        ("acme/a/x", "half_open", "closed", "trial ok", None, START + 1 * H, "breaker"),  # 3h
        ("acme/b/y", "closed", "forced_open", "kill", "manual", START + 2 * H, "U0DANA"),
        ("acme/b/y", "forced_open", "closed", "ok", None, START + 2.5 * H, "U0DANA"),
        ("acme/c/z", "closed", "open", "spend", "spend", END - 0.5 * H, "breaker"),  # still open
    ]
    b = breaker_figures(t, start=START, end=END, now=END + 9 * H)
    assert b.trips == 2  # y and z tripped during the day; x before it
    assert (b.longest_scope, b.longest_seconds, b.longest_still_open) == ("acme/a/x", 3 * H, False)
    assert b.longest_forced_by is None
    assert b.open_now == ["acme/c/z"]
    text, _ = render(digest(raw(transitions=t)))
    assert "*Breakers* 2 trips; longest open: acme/a/x 3h\n" in text
    assert "not closed now: acme/c/z" in text


def test_a_kill_switch_a_person_set_is_not_read_as_a_stuck_breaker():
    """audit23 forensics L9: a breaker tripped, then forced open by Dana, read as
    "longest open: acme/bob/big-bot 17h 36m (still open)"."""
    t = [
        ("acme/b/big", "closed", "open", "spent $0.60", "spend", START + 6 * H, "breaker"),
        ("acme/b/big", "open", "forced_open", "kill", "manual", START + 6.1 * H, "U0DANA"),
        ("acme/a/x", "closed", "open", "5 failures", "failures", START + 1 * H, "breaker"),
        ("acme/a/x", "open", "closed", "ok", None, START + 2 * H, "breaker"),
    ]
    text, _ = render(digest(raw(transitions=t)))
    assert "longest open: acme/b/big 18h (forced open by <@U0DANA>, still open)" in text
    closed = [*t, ("acme/b/big", "forced_open", "closed", "done", None, START + 9 * H, "U0ERIN")]
    text, _ = render(digest(raw(transitions=closed)))
    assert "longest open: acme/b/big 3h (forced open by <@U0DANA>)\n" in text


def test_rejections_alerts_uptime_and_jobs_in_words():
    r = raw(
        rejections={"duplicate": 40, "runaway": 1},
        rejected_items=52,
        streams=[("acme/alice/rss-bot", "posts", 38), ("acme/bob/ops-bot", "replies", 3)],
        jobs=[
            ("rss-hourly", "succeeded", None, 22),
            ("rss-hourly", "failed", None, 1),
            ("rss-hourly", "skipped", "paused", 1),
        ],
    )
    alerts = {
        "P0": {"alerts": 1, "acked": 1, "mtta_seconds": 240.0},
        "P1": {"alerts": 3, "acked": 2, "mtta_seconds": 750.0},
        "P2": {"alerts": 0, "acked": 0, "mtta_seconds": None},
    }
    quiet = {
        **alerts,
        "P0": {
            "alerts": 3,
            "acked": 1,
            "mtta_seconds": 60.0,
            "silenced": 2,
            "acked_silenced": 1,
            "silenced_unanswered": 1,
        },
    }
    text, _ = render(digest(raw(), alerts=quiet))  # audit14 acceptance F1
    assert (
        "*Alerts* P0 3: 1 acknowledged (MTTA 1m; also silenced), 1 silenced,"
        " 1 not acknowledged (still open) · P1 3" in text
    )
    uptime = {"acme/alice/rss-bot": 1.0, "acme/bob/ops-bot": 0.979}
    text, _ = render(digest(r, alerts=alerts, uptime=uptime))
    assert (
        "*Validation* 41 rejections (duplicates 40, runaway batches 1); 52 items kept out" in text
    )
    assert "top streams: acme/alice/rss-bot `posts` 38 · acme/bob/ops-bot `replies` 3" in text
    assert (
        "*Alerts* P0 1: 1 acknowledged (MTTA 4m)"
        " · P1 3: 2 acknowledged (MTTA 12m 30s), 1 not acknowledged (still open)\n" in text
    )
    assert "*Heartbeats* uptime acme/bob/ops-bot 97.9% · acme/alice/rss-bot 100.0%" in text
    assert "*Jobs* rss-hourly: 23 runs (1 failed), 1 skipped (paused 1)" in text


def test_alerts_a_person_answered_are_not_unanswered_and_p2s_are_a_count():
    """audit23 forensics M2: "P1 5 (5 not acknowledged) · P2 2 (2 not acknowledged)"."""
    alerts = {
        "P0": {"alerts": 3, "acked": 3, "acked_silenced": 1, "mtta_seconds": 103.0},
        "P1": {"alerts": 5, "resolved_by_person": 3, "unanswered_resolved": 2},
        "P2": {"alerts": 2, "acked": 0, "silenced": 0},
    }
    text, _ = render(digest(raw(), alerts=alerts))
    assert (
        "*Alerts* P0 3: 3 acknowledged (MTTA 1m 43s; 1 also silenced)"
        " · P1 5: 3 resolved by a person, 2 not acknowledged (resolved on their own) · P2 2\n"
    ) in text + "\n"
    alerts["P1"] = {"alerts": 4, "unanswered_resolved": 1}
    text, _ = render(digest(raw(), alerts=alerts))
    assert "P1 4: 4 not acknowledged (1 resolved on its own, 3 still open) · P2 2" in text


def test_agent_money_reads_as_agent_budget_reads_it():
    """audit23 forensics L7: "$0.12 of $2.00 (6%)" beside /agent budget's "$0.115", and
    "$0.00 of $1.00 (<1%)" for $0.003 spent."""
    r = raw(
        namespace_spent=1_118_000,
        agent_spent={"acme/a/loop": 115_000, "acme/a/retry": 3_000, "acme/a/big": 1_000_000},
    )
    limits = {"acme/a/loop": 2_000_000, "acme/a/retry": 1_000_000}
    text, _ = render(digest(r, limits={"acme": 5_000_000, **limits}))
    # the total is the sum of the lines as shown (audit24 agreement F1: it said "$1.12")
    assert "*Spend* $1.118 of $5.00 day budget (22%)" in text
    assert "`acme/a/loop` $0.115 of $2.00 (6%)" in text
    assert "`acme/a/retry` $0.003 of $1.00 (<1%)" in text
    assert "`acme/a/big` $1.00\n" in text


def test_the_chart_folds_agents_past_seven_into_one_series():
    chart = {f"acme/u/a{i}": {"2026-01-05": (i + 1) * 1_000_000} for i in range(10)}
    d = digest(raw(chart=chart))
    names = [n for n, _ in d.chart_series]
    assert names[:7] == [f"acme/u/a{i}" for i in (9, 8, 7, 6, 5, 4, 3)]
    assert names[7] == "3 more"
    assert d.chart_series[7][1][-1] == 6_000_000  # a0 + a1 + a2
    assert d.chart_labels == ["12-30", "12-31", "01-01", "01-02", "01-03", "01-04", "01-05"]


def _decode_png(png: bytes) -> tuple[int, int, bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data)
        if kind == b"IHDR":
            size = struct.unpack(">II", data[:8])
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    return size[0], size[1], zlib.decompress(idat)


def test_the_chart_is_a_valid_png_with_each_agent_colour():
    png = spend_chart(["01-04", "01-05"], [("a", [1_000_000, 2_000_000]), ("b", [0, 500_000])])
    width, height, pixels = _decode_png(png)
    assert (width, height) == (640, 320)
    assert len(pixels) == height * (1 + width * 3)
    assert bytes(PALETTE[0][1]) in pixels and bytes(PALETTE[1][1]) in pixels
    assert bytes(PALETTE[2][1]) not in pixels


def test_the_digest_of_a_day_is_due_at_digest_time_the_next_day():
    at_0859 = day_bounds(date(2026, 1, 6), BERLIN)[0] + 8 * H + 59 * 60
    assert due_day(at_0859, BERLIN, "09:00") == date(2026, 1, 4)
    assert due_day(at_0859 + 60, BERLIN, "09:00") == date(2026, 1, 5)
    # the same instant in Tokyo is already the afternoon of the 6th
    assert due_day(at_0859, ZoneInfo("Asia/Tokyo"), "09:00") == date(2026, 1, 5)


def test_a_dst_day_has_23_or_25_hours():
    spring = day_bounds(date(2026, 3, 29), BERLIN)
    autumn = day_bounds(date(2026, 10, 25), BERLIN)
    assert spring[1] - spring[0] == 23 * H
    assert autumn[1] - autumn[0] == 25 * H


def test_open_breakers_past_five_are_counted_and_overruns_are_exact():
    t = [
        (f"acme/a/b{i}", "closed", "open", "spend", "spend", START + i * H, "breaker")
        for i in range(7)
    ]
    text, _ = render(digest(raw(transitions=t)))
    assert "not closed now: acme/a/b0, acme/a/b1, acme/a/b2, acme/a/b3, acme/a/b4" in text
    assert "… and 2 more (`/agent breakers`)" in text
    d = digest(raw())
    d.overruns, d.overrun_micros = 1, 4_000
    text, _ = render(d)
    assert "*Overruns* 1 settle charged $0.004 beyond its hold" in text
    d.overruns = 2
    assert "*Overruns* 2 settles charged $0.004 beyond their holds" in render(d)[0]


def test_the_repeated_hour_of_the_fall_back_night_is_after_that_night_s_digest():
    """audit17 time L5: at 01:29 EST, the hour after a 01:30 EDT digest, the day due went
    back to the day before (a second, bogus "so far" digest of a finished day)."""
    new_york = ZoneInfo("America/New_York")
    first_0130 = datetime(2027, 11, 7, 5, 30, tzinfo=UTC).timestamp()  # 01:30 EDT
    assert due_day(first_0130 - 60, new_york, "01:30") == date(2027, 11, 5)
    assert due_day(first_0130, new_york, "01:30") == date(2027, 11, 6)
    second_0129 = datetime(2027, 11, 7, 6, 29, tzinfo=UTC).timestamp()  # 01:29 EST
    assert due_day(second_0129, new_york, "01:30") == date(2027, 11, 6)
    # spring forward: 02:30 does not exist that night; the digest is due at 03:30 EDT
    three_thirty = datetime(2027, 3, 14, 7, 30, tzinfo=UTC).timestamp()
    assert due_day(three_thirty - 60, new_york, "02:30") == date(2027, 3, 12)
    assert due_day(three_thirty, new_york, "02:30") == date(2027, 3, 13)


def test_one_of_a_thing_is_said_in_the_singular():
    """audit24 C L10: "*Refused* 1 time before a call started (their ceilings $0.00035 in
    all)", "1 settle charged $0.01 beyond their holds", and their neighbours."""
    r = raw(
        refusals=[("acme/a/loop", "breaker", 1, 350)],
        late=[("acme/a/loop", 1, 1_500_000)],
        agent_spent={"acme/a/loop": 1_500_000},
        namespace_spent=1_500_000,
        jobs=[(f"job-{i:02d}", "succeeded", None, 1) for i in range(9)],
    )
    d = digest(r)
    d.agent_count = len(d.agents) + 1  # as a long list is cut: one left out
    text, _ = render(d)
    assert (
        "*Refused* 1 time before a call started (its ceiling $0.00035): 1 by a breaker;"
        " most: acme/a/loop 1"
    ) in text
    assert (
        "*Charged to earlier days* $1.50 from 1 settle that came after its day's digest"
        " (acme/a/loop $1.50)"
    ) in text
    assert "… and 1 more agent\n" in text
    assert text.split("*Jobs* ", 1)[1].split("\n")[0].endswith(" · 1 more job")


def test_a_run_a_restart_cut_off_is_abandoned_not_failed():
    """audit24 C L4: "j-slow: 4 runs (1 failed)" for a run cut off by kill -9, which
    `/agent jobs` rightly shows as abandoned (README: "not as failing")."""
    jobs = [
        ("j-slow", "succeeded", None, 3),
        ("j-slow", "abandoned", None, 1),
        ("j-flaky", "succeeded", None, 1),
        ("j-flaky", "failed", None, 1),
        ("j-flaky", "timeout", None, 1),
        ("j-flaky", "abandoned", None, 2),
        ("j-flaky", "running", None, 1),
    ]
    text, _ = render(digest(raw(jobs=jobs)))
    assert "j-slow: 4 runs (1 abandoned)" in text
    assert "j-flaky: 6 runs (2 failed, 2 abandoned)" in text  # a timeout is a failure


def test_a_failed_trial_is_a_trip_and_a_model_outage_met_is_counted_and_named():
    """audit27 B3 M1: the demo's haiku outage (tripped 13:15, its trial failed 13:30) was
    missing from acme's digest; "opened 2x" in the demo's table, 2 trips here."""
    model = "model:claude-haiku-4-5"
    t = [
        (model, "closed", "open", "10 failures", "failures", START + 13.25 * H, "breaker"),
        (model, "open", "half_open", "auto", None, START + 13.4 * H, "breaker"),
        (model, "half_open", "open", "trial failed", "trial", START + 13.5 * H, "breaker"),
        (model, "open", "half_open", "auto", None, START + 13.75 * H, "breaker"),
        (model, "half_open", "closed", "trial ok", None, START + 14 * H, "breaker"),
    ]
    own = [
        ("acme/c/looper", "closed", "open", "spend", "spend", START + 3 * H, "breaker"),
        ("acme/c/looper", "open", "half_open", "ok", None, START + 3.5 * H, "U0DANA"),
        ("acme/c/looper", "half_open", "open", "trial failed", "trial", START + 3.6 * H, "breaker"),
        ("acme/c/looper", "open", "forced_open", "kill", "manual", START + 3.7 * H, "U0DANA"),
        ("acme/c/looper", "forced_open", "closed", "ok", None, START + 4 * H, "U0DANA"),
    ]
    d = digest(raw(transitions=own, model_outages=outages(t)))
    assert d.breakers.trips == 4  # looper 2 (the kill switch on it open is none), haiku 2
    text, _ = render(d)
    assert "*Breakers* 4 trips; longest open: acme/c/looper 1h (forced open by <@U0DANA>)\n" in (
        text
    )
    met = "model breakers acme's calls met: claude-haiku-4-5 2 trips (open from 13:15 to 14:00)"
    assert met in text


def test_the_blended_price_is_per_token_and_agrees_with_the_saving():
    """audit27 B3 L3: many tiny small-tier calls and a few long large-tier ones read as
    "$2.80 per million tokens (3.6x)" by calls while the saving said 1.8x."""
    r = raw(
        models=[
            ("claude-haiku-4-5", 12, 24_000, 0, 0, 0),  # 12 tiny calls: 0.012 MTok at $2
            ("claude-opus-4-5", 3, 42_000, 0, 0, 0),  # 3 long ones: 0.0042 MTok at $10
        ],
    )
    d = digest(r)
    assert d.would_cost_micros == 24_000 * 5 + 42_000 and d.saved_micros == 96_000
    assert d.blended_micros_per_mtok == 4_074_074  # $0.066 over 0.0162 MTok
    text, _ = render(d)
    assert "blended $4.07 per million tokens; always claude-opus-4-5: $10.00 (2.5x)" in text
    # the multiple is the saving's: what always using opus would have cost over the spend
    assert "saved $0.096 against always using claude-opus-4-5 (it would have cost $0.162)" in text


def test_a_fleet_dearer_than_the_large_tier_is_told_plainly():
    """audit27 B3 L6: "saved -$0.06 ... (0.3x)" for a day on claude-opus-4-1 ($30/MTok)
    when the large tier is claude-opus-4-5 ($10/MTok)."""
    d = digest(raw(models=[("claude-opus-4-1", 1, 90_000, 0, 0, 0)]))
    assert d.saved_micros == -60_000
    text, _ = render(d)
    assert "blended $30.00 per million tokens; always claude-opus-4-5: $10.00\n" in text
    assert "x)" not in text and "saved" not in text
    assert "cost $0.06 more than always using claude-opus-4-5 (it would have cost $0.03)" in text


def test_a_day_of_no_charges_says_no_saving():
    """recheck27 Kc L3: a day whose calls were charged $0 read "saved $0.00 against always
    using claude-opus-4-5 (it would have cost $0.00)": there is nothing to compare."""
    d = digest(raw(models=[("claude-haiku-4-5", 1, 0, 1, 0, 0)]))
    assert d.would_cost_micros is None and d.saved_micros is None
    text, _ = render(d)
    assert "*Model mix* small 100% of 1 call" in text
    assert "saved" not in text and "would have cost" not in text and "blended" not in text
    # a $0 model beside a charged one: the saving is the charged one's
    d = digest(
        raw(models=[("claude-haiku-4-5", 1, 0, 1, 0, 0), ("claude-sonnet-4-5", 1, 6, 0, 0, 0)])
    )
    assert (d.would_cost_micros, d.saved_micros) == (10, 4)


def test_a_dated_model_name_counts_in_its_model_s_tier():
    """recheck27 Kc L4: SDKs report the snapshot's name (claude-haiku-4-5-20251001); the
    mix read it as "other" though it is priced, broken and routed as haiku."""
    d = digest(
        raw(
            models=[
                ("claude-haiku-4-5-20251001", 3, 6, 0, 0, 0),
                ("Claude-Sonnet-4-5", 1, 6, 0, 0, 0),
                ("gpt-4o-2024-08-06", 1, 6, 0, 0, 0),
                (None, 1, 0, 0, 0, 0),
            ]
        )
    )
    assert {m.model: m.tier for m in d.models} == {
        "claude-haiku-4-5-20251001": "small",
        "Claude-Sonnet-4-5": "medium",
        "gpt-4o-2024-08-06": "other",
        "(no model)": "other",
    }
    text, _ = render(d)
    assert "*Model mix* small 50% · medium 17% · other 33% of 6 calls" in text


def test_a_person_keeping_a_breaker_open_or_forcing_it_opens_nothing():
    """review27 R3 L1: "Keep open" during a running trial (half_open → open) counted as a
    trip, the same button on a waiting one (half_open_pending → open) did not, and a kill
    switch set during a trial counted too. A trip is the breaker's own opening: its trip,
    or its failed trial; a kill switch from closed opens it too."""
    t = [
        ("acme/a/x", "closed", "open", "5 failures", "failures", START + 1 * H, "breaker"),
        ("acme/a/x", "open", "half_open", "trial", None, START + 1.5 * H, "breaker"),
        ("acme/a/x", "half_open", "open", "kept open", "failures", START + 1.6 * H, "U0DANA"),
        ("acme/a/x", "open", "half_open_pending", "wait", None, START + 2 * H, "breaker"),
        ("acme/a/x", "half_open_pending", "open", "kept", "failures", START + 2.1 * H, "U0DANA"),
        ("acme/a/x", "open", "half_open", "trial", None, START + 3 * H, "breaker"),
        ("acme/a/x", "half_open", "open", "trial failed", "trial", START + 3.1 * H, "breaker"),
        ("acme/a/x", "open", "half_open", "trial", None, START + 4 * H, "breaker"),
        ("acme/a/x", "half_open", "forced_open", "kill", "manual", START + 4.1 * H, "U0DANA"),
        ("acme/a/x", "forced_open", "closed", "ok", None, START + 5 * H, "U0DANA"),
        ("acme/b/y", "closed", "forced_open", "kill", "manual", START + 6 * H, "U0DANA"),
    ]
    b = breaker_figures(t, start=START, end=END, now=END + 9 * H)
    assert b.trips == 3  # x's trip and failed trial, y's kill switch


def test_a_model_outage_is_said_once_on_its_own_line():
    """review27 R3 L2: a model outage was the longest open, on the model's line, and in
    "not closed now"; it is said on its line only, a kill switch's setter with it."""
    model = "model:claude-haiku-4-5"
    t = [
        (model, "closed", "open", "3 failures", "failures", START + 13 * H, "breaker"),
        (model, "open", "forced_open", "incident", "manual", START + 14 * H, "U0DANA"),
    ]
    own = [
        ("acme/a/x", "closed", "open", "5 failures", "failures", START + 20 * H, "breaker"),
        ("acme/a/x", "open", "closed", "trial ok", None, START + 21 * H, "breaker"),
    ]
    text, _ = render(digest(raw(transitions=own, model_outages=outages(t))))
    assert (
        "*Breakers* 2 trips; longest open: acme/a/x 1h\nmodel breakers acme's calls met:"
        " claude-haiku-4-5 1 trip (open since 13:00, forced open by <@U0DANA>, still open at"
        " the day's end)\n*Validation*"
    ) in text, text
    assert model not in text

    # open since the day before, and no breaker of acme's: no trip that day, still its line
    before = [(model, "closed", "open", "3 failures", "failures", START - 1 * H, "breaker")]
    text, _ = render(digest(raw(model_outages=outages(before))))
    assert (
        "*Breakers* no trips\nmodel breakers acme's calls met: claude-haiku-4-5 (open since"
        " Sun 04 Jan 23:00, still open at the day's end)\n"
    ) in text, text
