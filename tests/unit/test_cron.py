"""Cron expressions: parsing, words, fire times across DST, and the lint that refuses runaways."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.jobs.cron import CronError, fire_times, parse_cron
from bot.jobs.cron_words import describe, dst_notes, format_local
from bot.jobs.guard import due
from bot.jobs.lint import check_jobs, lint_jobs
from guards.config import Policy, PolicyError

BERLIN = ZoneInfo("Europe/Berlin")
UTC_TZ = ZoneInfo("UTC")


def ts(y, mo, d, h=0, mi=0, tz=UTC_TZ) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


def local(t: float, tz=BERLIN) -> str:
    return format_local(t, tz)


def policy(*jobs, **top) -> Policy:
    base = {"url": "http://127.0.0.1:9/run", "scope": "acme/alice/rss-bot"}
    return Policy.model_validate({**top, "jobs": [{**base, **j} for j in jobs]})


# -- words --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("* 8 * * *", "every minute from 08:00 to 08:59, 60 runs a day"),
        ("0 8 * * *", "at 08:00, 1 run a day"),
        ("0 * * * *", "every hour at :00, 24 runs a day"),
        ("*/5 * * * *", "every 5 minutes, 288 runs a day"),
        ("*/15 8-17 * * *", "every 15 minutes from 08:00 to 17:45, 40 runs a day"),
        ("30 9 * * 1-5", "at 09:30, on Monday to Friday, 5 runs a week"),
        ("0 9,17 * * *", "at 09:00 and 17:00, 2 runs a day"),
        ("0 0 1 * *", "at 00:00, on day 1 of the month, 1 run a month"),
        ("@daily", "at 00:00, 1 run a day"),
        ("0 6 * * sat,sun", "at 06:00, on Saturday and Sunday, 2 runs a week"),
        # counts read as the digest writes them (one plural for all: audit27 style L2)
        ("* * * * *", "every minute, 1,440 runs a day"),
    ],
)
def test_expressions_in_words(expr, words):
    assert describe(parse_cron(expr)) == words


@pytest.mark.parametrize(
    ("expr", "count"),
    [
        # audit24 claims C1: a yearly job read "1 run a month"
        ("@yearly", "on day 1 of the month in January, 1 run a year"),
        ("@annually", "on day 1 of the month in January, 1 run a year"),
        ("0 0 1 1 *", "on day 1 of the month in January, 1 run a year"),
        ("0 0 1 */3 *", "in January, April, July and October, 4 runs a year"),
        ("0 0 1 1,7 *", "in January and July, 2 runs a year"),
        ("0 9,17 1,15 6 *", "on days 1 and 15 of the month in June, 4 runs a year"),
        ("0 0 31 1-6 *", "in January to June, 3 runs a year"),  # no 31st in Feb, Apr, Jun
        ("0 0 29 2 *", "in February, 1 run a year, only in leap years"),
        ("0 0 29 1,2 *", "in January and February, 1 run a year (2 in a leap year)"),
        ("* * 29 1,2 *", "in January and February, 1,440 runs a year (2,880 in a leap year)"),
        ("0 0 1 1 1", "if it is also on day 1 of the month in January, at most 1 run a year"),
        ("0 0 31 * *", "on day 31 of the month, at most 1 run a month"),  # 7 months have one
    ],
)
def test_a_limited_month_counts_runs_a_year(expr, count):
    assert describe(parse_cron(expr)).endswith(count)


def test_a_limited_month_without_a_day_keeps_the_rate_within_those_months():
    assert describe(parse_cron("0 8 * 6-8 *")) == "at 08:00, in June to August, 1 run a day"
    assert describe(parse_cron("0 8 * 1 1")) == "at 08:00, on Monday in January, 1 run a week"


@pytest.mark.parametrize(
    ("expr", "needle"),
    [
        ("* * *", "has 3 fields"),
        ("60 * * * *", "minute field: 60 is out of range 0-59"),
        ("0 24 * * *", "hour field: 24 is out of range 0-23"),
        ("*/0 * * * *", "a step of 0"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 * * L", "not a number or a name"),
        ("@reboot", "unknown macro"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expr, needle):
    with pytest.raises(CronError, match=needle):
        parse_cron(expr)


def test_weekday_numbers_follow_crontab_not_apscheduler():
    # crontab: 0 and 7 are Sunday, 1 is Monday (APScheduler 3.x would say 0 = Monday)
    after = ts(2026, 1, 1)  # a Thursday
    for expr in ("0 9 * * 0", "0 9 * * 7", "0 9 * * sun"):
        first = fire_times(parse_cron(expr), UTC_TZ, after=after, limit=1)[0]
        assert datetime.fromtimestamp(first, UTC).strftime("%A %H:%M") == "Sunday 09:00"
    monday = fire_times(parse_cron("0 9 * * 1"), UTC_TZ, after=after, limit=1)[0]
    assert datetime.fromtimestamp(monday, UTC).strftime("%a %d") == "Mon 05"


def test_next_three_fires_in_the_job_time_zone():
    spec = parse_cron("0 8 * * *")
    fires = fire_times(spec, BERLIN, after=ts(2026, 1, 1, 12))
    assert [local(t) for t in fires] == [
        "Fri 2026-01-02 08:00 CET",
        "Sat 2026-01-03 08:00 CET",
        "Sun 2026-01-04 08:00 CET",
    ]
    assert datetime.fromtimestamp(fires[0], UTC).hour == 7  # 08:00 CET is 07:00 UTC


# -- DST ----------------------------------------------------------------------------------


def test_spring_forward_moves_a_missing_time_and_skips_the_missing_hour():
    before = ts(2026, 3, 28, 12, tz=BERLIN)
    daily = fire_times(parse_cron("30 2 * * *"), BERLIN, after=before, limit=2)
    # 02:30 does not exist on 2026-03-29: the run happens once, an hour later
    assert [local(t) for t in daily] == ["Sun 2026-03-29 03:30 CEST", "Mon 2026-03-30 02:30 CEST"]
    day = (ts(2026, 3, 29, 0, tz=BERLIN), ts(2026, 3, 30, 0, tz=BERLIN))
    hourly = fire_times(
        parse_cron("0 * * * *"), BERLIN, after=day[0] - 1, until=day[1] - 1, limit=99
    )
    assert len(hourly) == 23  # a 23-hour day: the 02:00 run does not exist
    notes = dst_notes(parse_cron("30 2 * * *"), BERLIN, now=before)
    assert notes[0] == (
        "on Sun 2026-03-29 clocks go forward in Europe/Berlin: 02:30 does not exist, "
        "so the job runs once at 03:30 instead"
    )


def test_fall_back_runs_a_fixed_time_once_and_a_wildcard_hour_in_both_passes():
    before = ts(2026, 10, 24, 12, tz=BERLIN)
    daily = fire_times(parse_cron("30 2 * * *"), BERLIN, after=before, limit=2)
    assert [local(t) for t in daily] == ["Sun 2026-10-25 02:30 CEST", "Mon 2026-10-26 02:30 CET"]
    day = (ts(2026, 10, 25, 0, tz=BERLIN), ts(2026, 10, 26, 0, tz=BERLIN))
    hourly = fire_times(
        parse_cron("0 * * * *"), BERLIN, after=day[0] - 1, until=day[1] - 1, limit=99
    )
    assert len(hourly) == 25  # a 25-hour day: 02:00 CEST and 02:00 CET both run
    notes = dst_notes(parse_cron("30 2 * * *"), BERLIN, now=before)
    assert notes[0] == (
        "on Sun 2026-10-25 clocks go back in Europe/Berlin: 02:30 happens twice; "
        "the job runs only the first time"
    )


@pytest.mark.parametrize(
    ("expr", "said", "runs"),
    [
        ("0,30 2 * * *", "02:00 and 02:30 do not exist, so the job runs at 03:00 and 03:30", 2),
        (
            "*/20 2 * * *",
            "02:00, 02:20 and 02:40 do not exist, so the job runs at 03:00, 03:20 and 03:40",
            3,
        ),
        ("0 2,3 * * *", "02:00 does not exist, so its run at 03:00 is the only one", 1),
        (
            "0,30 2,3 * * *",
            "02:00 and 02:30 do not exist, so its runs at 03:00 and 03:30 are the only ones",
            2,
        ),
    ],
)
def test_the_spring_forward_note_says_what_the_schedule_runs(expr, said, runs):
    """audit19 cron 1: every fixed-time job with a fire in the missing hour was said to
    run "once at 03:00", while `0,30 2` ran at 03:00 and 03:30."""
    before = ts(2027, 3, 27, 12, tz=BERLIN)
    notes = dst_notes(parse_cron(expr), BERLIN, now=before)
    assert said in notes[0], notes
    night = (ts(2027, 3, 28, 2, tz=BERLIN), ts(2027, 3, 28, 4, tz=BERLIN))
    fires = fire_times(parse_cron(expr), BERLIN, after=night[0] - 1, until=night[1] - 1, limit=9)
    assert len(fires) == runs


def test_the_fall_back_note_names_every_time_that_happens_twice():
    notes = dst_notes(parse_cron("0,30 2 * * *"), BERLIN, now=ts(2027, 10, 30, 12, tz=BERLIN))
    assert "02:00 and 02:30 happen twice; the job runs only the first time" in notes[0]


def test_a_midnight_that_does_not_exist_runs_at_the_end_of_the_jump():
    """audit14 time M1: Santiago's clocks go from 00:00 to 01:00 on 2026-09-06; a
    `0 0 * * *` job skipped that day (APScheduler's next fire), while the preview said it
    runs at 01:00."""
    santiago = ZoneInfo("America/Santiago")
    before = ts(2026, 9, 5, 12, tz=santiago)
    for expr in ("0 0 * * *", "@daily"):
        daily = fire_times(parse_cron(expr), santiago, after=before, limit=3)
        assert [local(t, santiago) for t in daily] == [
            "Sun 2026-09-06 01:00 -03",
            "Mon 2026-09-07 00:00 -03",
            "Tue 2026-09-08 00:00 -03",
        ]
    notes = dst_notes(parse_cron("0 0 * * *"), santiago, now=before)
    assert "00:00 does not exist, so the job runs once at 01:00 instead" in notes[0]


def test_fixed_times_inside_and_after_a_jump_run_once_each_in_order():
    fires = fire_times(
        parse_cron("0,30 2,3 * * *"), BERLIN, after=ts(2026, 3, 29, 0, tz=BERLIN), limit=4
    )
    # 02:00 and 02:30 do not exist: they run at 03:00 and 03:30, once with their namesakes
    assert [local(t) for t in fires] == [
        "Sun 2026-03-29 03:00 CEST",
        "Sun 2026-03-29 03:30 CEST",
        "Mon 2026-03-30 02:00 CEST",
        "Mon 2026-03-30 02:30 CEST",
    ]


def test_notes_name_the_span_a_change_that_is_not_an_hour_on_the_hour_skips():
    """audit14 time L1: the notes said "the hour from 02:00" wherever the clocks moved."""
    every = parse_cron("*/15 * * * *")
    chatham, lord_howe = ZoneInfo("Pacific/Chatham"), ZoneInfo("Australia/Lord_Howe")
    forward = dst_notes(every, chatham, now=ts(2026, 9, 1, tz=chatham))[0]
    assert forward == (
        "on Sun 2026-09-27 clocks go forward in Pacific/Chatham: 02:45 to 03:45 does not"
        " exist, so its 4 runs are skipped"
    )
    back = dst_notes(every, lord_howe, now=ts(2026, 3, 1, tz=lord_howe))[0]
    assert back.startswith(
        "on Sun 2026-04-05 clocks go back in Australia/Lord_Howe: 01:30 to 02:00"
    )
    berlin = dst_notes(every, BERLIN, now=ts(2026, 3, 1, tz=BERLIN))[0]
    assert "the hour from 02:00 does not exist" in berlin


def test_a_wildcard_hour_job_runs_in_real_time_across_odd_clock_changes():
    """audit14 time M3: on Chatham's fall-back night (03:45 +13:45 -> 02:45 +12:45) the
    trigger dropped the repeated 02:45-03:45: a */15 job had no run for 75 real minutes."""
    every = parse_cron("*/15 * * * *")
    chatham, lord_howe = ZoneInfo("Pacific/Chatham"), ZoneInfo("Australia/Lord_Howe")
    start = datetime(2026, 4, 4, 13, 20, tzinfo=UTC).timestamp()  # 03:05 +1345
    fires = fire_times(every, chatham, after=start, until=start + 2 * 3600, limit=99)
    assert [t - start for t in fires] == [600 + 900 * i for i in range(8)]  # every 15 min
    assert [local(t, chatham)[15:] for t in fires[:4]] == [
        "03:15 +1345",
        "03:30 +1345",
        "02:45 +1245",  # the repeated 02:45 to 03:45 runs again
        "03:00 +1245",
    ]
    start = datetime(2026, 10, 3, 14, 40, tzinfo=UTC).timestamp()  # 01:10 +1030
    fires = fire_times(every, lord_howe, after=start, until=start + 5400, limit=99)
    # 02:00 to 02:30 does not exist: its two runs are skipped, nothing else
    assert [local(t, lord_howe)[15:] for t in fires] == [
        "01:15 +1030",
        "01:30 +1030",
        "01:45 +1030",
        "02:30 +11",
        "02:45 +11",
        "03:00 +11",
    ]


def test_a_time_zone_without_dst_has_no_notes():
    assert dst_notes(parse_cron("30 2 * * *"), UTC_TZ, now=ts(2026, 1, 1)) == []


# -- lint ---------------------------------------------------------------------------------


def test_every_minute_of_8am_in_a_daily_job_is_refused_with_a_suggestion():
    plan = lint_jobs(policy({"name": "report-daily", "cron": "* 8 * * *"}), now=ts(2026, 1, 1))[0]
    assert plan.refused
    assert plan.refusal == (
        "every minute from 08:00 to 08:59, 60 runs a day; did you mean `0 8 * * *`?"
    )
    assert "its name says daily but it runs 60 times a day" in plan.problems
    with pytest.raises(PolicyError) as err:
        check_jobs(policy({"name": "report-daily", "cron": "* 8 * * *"}), now=ts(2026, 1, 1))
    message = str(err.value)
    assert "jobs.0 (report-daily)" in message
    assert ": 1 job refused:\n" in message  # not "1 job(s) refused"
    assert "did you mean `0 8 * * *`?" in message


def test_the_classic_slip_is_refused_even_without_a_telling_name():
    plan = lint_jobs(policy({"name": "report", "cron": "* 8 * * *"}), now=ts(2026, 1, 1))[0]
    assert plan.refused and plan.suggestion == "0 8 * * *"


@pytest.mark.parametrize("name", ["report", "morning-report", "Evening_Summary", "standup"])
def test_a_daily_sounding_job_with_minute_and_hour_swapped_gets_a_note(name):
    """audit13 incidents L1: `8 * * * *` named like a daily job runs 24 times a day."""
    plan = lint_jobs(policy({"name": name, "cron": "8 * * * *"}), now=ts(2026, 1, 1))[0]
    assert not plan.refused  # 24 runs a day is no runaway: said, not stopped
    assert plan.notes == [
        "its name reads like a daily job, but it runs every hour at :08 (24 runs a day);"
        " for 08:00 each day write `0 8 * * *`"
    ]
    assert "  note: its name reads like a daily job" in "\n".join(plan.lines())


def test_the_swap_note_on_weekdays_says_on_those_days():
    plan = lint_jobs(policy({"name": "standup", "cron": "9 * * * 1-5"}), now=ts(2026, 1, 1))[0]
    assert plan.notes[-1].endswith("for 09:00 on those days write `0 9 * * 1-5`")


@pytest.mark.parametrize(
    ("name", "cron"),
    [
        ("rss-poll", "8 * * * *"),  # nothing in the name says once a day
        ("report", "0 * * * *"),  # :00 reads as no hour
        ("report", "30 * * * *"),  # :30 is no hour
        ("report", "8 9 * * *"),  # the hour is set
        ("report", "8 */2 * * *"),
        ("report", "8,20 * * * *"),
    ],
)
def test_hourly_jobs_that_do_not_look_swapped_get_no_such_note(name, cron):
    plan = lint_jobs(policy({"name": name, "cron": cron}), now=ts(2026, 1, 1))[0]
    assert not any("reads like a daily job" in n for n in plan.notes)


def test_hourly_on_the_hour_is_fine():
    plan = lint_jobs(
        policy({"name": "rss-hourly", "cron": "0 * * * *", "max_runs_per_hour": 2}),
        now=ts(2026, 1, 1),
    )[0]
    assert not plan.refused and plan.problems == []
    assert plan.words == "every hour at :00, 24 runs a day"


def test_every_five_minutes_needs_allow_frequent():
    job = {"name": "health-sweep", "cron": "*/5 * * * *", "max_runs_per_hour": 12}
    refused = lint_jobs(policy(job), now=ts(2026, 1, 1))[0]
    assert refused.refused
    assert refused.problems == [
        "it fires 12 times an hour (more than 4 needs allow_frequent: true)"
    ]
    allowed = lint_jobs(policy({**job, "allow_frequent": True}), now=ts(2026, 1, 1))[0]
    assert not allowed.refused
    assert allowed.problems == ["it fires 12 times an hour"]  # not told it needs the key
    assert any("allowed by allow_frequent" in line for line in allowed.lines())
    assert check_jobs(policy({**job, "allow_frequent": True}), now=ts(2026, 1, 1))


def test_a_cap_below_the_schedule_is_refused():
    plan = lint_jobs(
        policy({"name": "sync", "cron": "*/15 * * * *", "max_runs_per_hour": 2}), now=ts(2026, 1, 1)
    )[0]
    assert plan.refused
    assert "max_runs_per_hour is 2, so runs would be skipped every hour" in plan.problems[0]


def test_a_weekly_name_on_weekdays_is_refused():
    plan = lint_jobs(policy({"name": "weekly-report", "cron": "0 9 * * 1-5"}), now=ts(2026, 1, 1))[
        0
    ]
    assert plan.problems == ["its name says weekly but it runs 5 times a week"]
    assert plan.suggestion == "0 9 * * 1"


def test_time_zone_is_the_job_s_then_the_namespace_s_then_the_policy_s():
    p = policy(
        {"name": "a", "cron": "0 8 * * *", "timezone": "America/New_York"},
        {"name": "b", "cron": "0 8 * * *"},
        {"name": "c", "cron": "0 8 * * *", "scope": "other/x/y"},
        timezone="Europe/Berlin",
        budgets={"scopes": {"acme": {"timezone": "Asia/Tokyo"}}},
    )
    plans = lint_jobs(p, now=ts(2026, 1, 1))
    assert [pl.timezone for pl in plans] == ["America/New_York", "Asia/Tokyo", "Europe/Berlin"]
    assert plans[0].lines()[0] == "a  `0 8 * * *`  (America/New_York)"
    assert plans[0].lines()[2].startswith("  next: Thu 2026-01-01 08:00 EST")


def test_a_zone_with_no_summer_time_that_reads_like_a_region_s_gets_a_note():
    """audit13 jobs J9: `EST` is New York's winter offset all year (an hour off in summer)."""
    plan = lint_jobs(
        policy({"name": "report", "cron": "0 8 * * *", "timezone": "EST"}), now=ts(2026, 1, 1)
    )[0]
    assert not plan.refused
    assert (
        "EST is a fixed offset with no daylight saving time: for the clock people keep"
        " there write America/New_York"
    ) in plan.notes
    plain = lint_jobs(
        policy({"name": "r", "cron": "0 8 * * *", "timezone": "America/New_York"}),
        now=ts(2026, 1, 1),
    )[0]
    assert not any("fixed offset" in n for n in plain.notes)


def test_a_bad_expression_and_a_repeated_name_are_refused():
    plans = lint_jobs(
        policy(
            {"name": "x", "cron": "0 25 * * *"},
            {"name": "y", "cron": "0 1 * * *"},
            {"name": "y", "cron": "0 2 * * *"},
        ),
        now=ts(2026, 1, 1),
    )
    assert plans[0].refusal == "hour field: 25 is out of range 0-23"
    assert not plans[1].refused
    assert "names must be unique" in (plans[2].refusal or "")


# -- due fires ----------------------------------------------------------------------------


def test_nothing_due_before_the_next_fire():
    d = due(
        parse_cron("0 * * * *"),
        UTC_TZ,
        last=ts(2026, 1, 1, 8),
        now=ts(2026, 1, 1, 8, 59),
        grace=3600,
    )
    assert d.fire is None and d.missed == 0


def test_missed_fires_within_the_grace_coalesce_into_one():
    d = due(
        parse_cron("*/15 * * * *"),
        UTC_TZ,
        last=ts(2026, 1, 1, 8),
        now=ts(2026, 1, 1, 9, 5),
        grace=3600,
    )
    # 08:15, 08:30, 08:45 and 09:00 were due: one run (for 09:00) stands for all four
    assert d.fire == ts(2026, 1, 1, 9) and d.coalesced == 3


def test_fires_older_than_the_grace_are_missed_not_run():
    d = due(
        parse_cron("0 8 * * *"), UTC_TZ, last=ts(2026, 1, 1, 7), now=ts(2026, 1, 1, 10), grace=3600
    )
    assert d.fire is None and d.missed == 1 and d.last_missed == ts(2026, 1, 1, 8)


# -- invariants ---------------------------------------------------------------------------

minute_lists = st.sets(st.integers(0, 59), min_size=1, max_size=6)
hour_lists = st.one_of(st.just(None), st.sets(st.integers(0, 23), min_size=1, max_size=5))


@settings(max_examples=60, deadline=None)
@given(minutes=minute_lists, hours=hour_lists, day=st.integers(0, 364))
def test_fires_of_a_day_match_the_count_and_the_fields(minutes, hours, day):
    expr = (
        ",".join(map(str, sorted(minutes)))
        + " "
        + ("*" if hours is None else ",".join(map(str, sorted(hours))))
        + " * * *"
    )
    spec = parse_cron(expr)
    start = ts(2026, 1, 1) + day * 86400
    fires = fire_times(spec, UTC_TZ, after=start - 1, until=start + 86400 - 1, limit=2000)
    assert len(fires) == spec.per_day
    for t in fires:
        at = datetime.fromtimestamp(t, UTC)
        assert at.minute in minutes and (hours is None or at.hour in hours)
        assert at.second == 0
    assert fires == sorted(set(fires))
