"""The policy's ``retention:`` section: defaults that keep the old behaviour, durations
as everywhere else in the file, and refusals that name the key and stop start-up."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.cli import main
from guards.breaker_attempts import ATTEMPTS_RETENTION_SECONDS
from guards.config import RetentionPeriods, load_policy, parse_policy
from tests.unit.test_config_strict import refusal

DAY = 86400
KEYS = ("events", "outbox_delivered", "outbox_failed", "breaker_attempts", "job_runs")
# the floors: the digest reads the day before's job runs, alerts and heartbeat gaps
FLOORS = {key: DAY for key in KEYS} | {"job_runs": 3 * DAY, "alerts_resolved": 3 * DAY}


def test_the_defaults_are_what_retention_kept_before_the_section_existed():
    keep = parse_policy({}).retention
    assert keep == RetentionPeriods()
    assert keep.events == 30 * DAY  # bot/retention.py's EVENTS_RETENTION_DAYS
    assert keep.outbox_delivered == 7 * DAY  # OUTBOX_DELIVERED_DAYS
    assert keep.outbox_failed == 30 * DAY  # OUTBOX_FAILED_DAYS
    assert keep.breaker_attempts == 7 * DAY == ATTEMPTS_RETENTION_SECONDS
    assert keep.job_runs == 90 * DAY  # bot/jobs/runner.py's RETENTION_SECONDS
    assert keep.alerts_resolved == 90 * DAY  # new: alerts were kept forever


def test_an_empty_section_is_the_defaults():
    assert parse_policy({"retention": {}}).retention == RetentionPeriods()


def test_periods_are_written_as_durations_like_the_rest_of_the_file():
    keep = parse_policy(
        {
            "retention": {
                "events": "14d",
                "outbox_delivered": "36h",
                "outbox_failed": "2w",
                "breaker_attempts": 86400,
                "job_runs": "180d",
                "alerts_resolved": "72h",
            }
        }
    ).retention
    assert (
        keep.events,
        keep.outbox_delivered,
        keep.outbox_failed,
        keep.breaker_attempts,
        keep.job_runs,
        keep.alerts_resolved,
    ) == (14 * DAY, 36 * 3600, 14 * DAY, DAY, 180 * DAY, 3 * DAY)


@pytest.mark.parametrize("key", sorted(FLOORS))
def test_history_may_be_kept_for_years(key):
    """Unlike the file's other durations (a year at most): two years of alerts, say."""
    assert getattr(parse_policy({"retention": {key: "730d"}}).retention, key) == 730 * DAY


@pytest.mark.parametrize("key", sorted(FLOORS))
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0d", "0s is too short: keep at least"),
        ("-1d", "'-1d' is not a duration (write 30s, 5m, 2h or 1d)"),
        ("abc", "'abc' is not a duration (write 30s, 5m, 2h or 1d)"),
        (True, "'true' is not a duration (write 30s, 5m, 2h or 1d)"),  # not 1 second
    ],
)
def test_a_bad_period_is_refused_naming_its_key(key, value, problem):
    message = refusal({"retention": {key: value}})
    assert f"  retention.{key}: {problem}" in message
    assert message.count("\n") == 1  # that key alone


@pytest.mark.parametrize("key", sorted(FLOORS))
@pytest.mark.parametrize("value", ["3700d", "4000d", 3651 * DAY, -5])
def test_a_period_out_of_range_is_refused_with_the_range_of_its_key(key, value):
    """audit24 claims C5: `events: 3700d` said "(0 to 3650 days)", though under 1d is
    refused (under 3d for job_runs and alerts_resolved)."""
    message = refusal({"retention": {key: value}})
    floor = f"{FLOORS[key] // DAY}d"
    assert (
        f"  retention.{key}: {value!r} is out of range: keep at least {floor} and at most 3650 days"
    ) in message
    assert message.count("\n") == 1  # that key alone


@pytest.mark.parametrize("key", sorted(FLOORS))
def test_a_period_under_its_floor_is_refused_saying_what_it_would_break(key):
    floor = FLOORS[key]
    assert getattr(parse_policy({"retention": {key: floor}}).retention, key) == floor
    message = refusal({"retention": {key: floor - 1}})
    days = floor // DAY
    assert f"retention.{key}: {floor - 1}s is too short: keep at least {days}d, " in message
    assert "(write e.g. 30d)" in message


def test_what_each_floor_protects_is_named():
    assert "the daily digest shows the alerts and uptime" in refusal(
        {"retention": {"alerts_resolved": "2d"}}
    )
    assert "the daily digest counts the runs" in refusal({"retention": {"job_runs": "1d"}})
    assert "point at these rows" in refusal({"retention": {"outbox_delivered": "12h"}})
    assert "fresh max_attempts_per_task" in refusal({"retention": {"breaker_attempts": "1h"}})


def test_an_unknown_key_under_retention_is_refused():
    message = refusal({"retention": {"alert_resolved": "30d", "events": "30d"}})
    assert (
        "  retention.alert_resolved: unknown key (did you mean 'alerts_resolved'?); the keys"
        " here: events, outbox_delivered, outbox_failed, breaker_attempts, job_runs,"
        " alerts_resolved"
    ) in message
    assert "retention.events" not in message


def test_the_section_must_be_a_mapping():
    assert "  retention: " in refusal({"retention": "30d"})


def test_validation_and_routing_keep_their_own_keys():
    for key in ("window_days", "rejections_retention_days", "retention_days"):
        assert f"retention.{key}: unknown key" in refusal({"retention": {key: 7}})


def write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "nightshift.yml"
    file.write_text(textwrap.dedent(text), encoding="utf-8")
    return file


def test_a_bad_period_in_the_file_stops_start_up_before_the_database(
    tmp_path, capsys, keep_logging, monkeypatch
):
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    file = write(
        tmp_path,
        """\
        retention:
          events: 0d
          outbox_failed: 45d
          heartbeats: 30d
        """,
    )
    db = tmp_path / "nightshift.db"
    assert main(["run", "--config", str(file), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"{file}: the policy is not valid:" in err
    assert "retention.events: 0s is too short: keep at least 1d" in err
    assert "retention.heartbeats: unknown key" in err
    assert "outbox_failed" not in err
    assert not db.exists()
    # the same file with good values loads
    good = write(tmp_path, "retention: {events: 14d, outbox_failed: 45d}\n")
    keep = load_policy(good).retention
    assert (keep.events, keep.outbox_failed, keep.job_runs) == (14 * DAY, 45 * DAY, 90 * DAY)
