"""The policy file: DESIGN.md's example loads, amounts are exact, and every mistake is named."""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guards.config import PolicyError, load_policy, parse_duration, parse_policy
from guards.money import format_usd, parse_usd

ROOT = Path(__file__).resolve().parents[2]


def test_the_design_example_loads_with_exact_amounts():
    policy = load_policy(ROOT / "examples" / "nightshift.yml", missing_ok=False)
    assert policy.timezone == "Europe/Berlin"
    assert policy.budgets.defaults["agent"] == {"day": 10_000_000}
    assert policy.budgets.defaults["conversation"] == {"total": 2_000_000}
    assert policy.budgets.scopes["acme"].limits() == {"day": 200_000_000, "month": 4_000_000_000}
    assert policy.breakers.spend_rate is not None
    assert policy.breakers.spend_rate.max == 2_000_000
    assert policy.breakers.spend_rate.per_seconds == 600
    assert policy.breakers.half_open.trial_budget == 500_000
    assert [s.after for s in policy.oncall.escalation] == [0, 300, 900]
    assert policy.alerts.tier_of("breaker_opened_spend") == "P0"
    assert policy.alerts.tier_of("hold_expired") == "P2"
    assert policy.alerts.tier_of("hold_hanging") == "P1"
    assert policy.alerts.hanging_after == 300
    assert policy.validation.near_duplicate.method == "simhash"
    assert [j.name for j in policy.jobs] == ["rss-hourly", "health-sweep"]
    assert policy.routing.tiers["large"].model == "claude-opus-4-1"


def test_a_policy_path_that_cannot_be_read_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the policy file: Is a directory"):
        load_policy(tmp_path)


def test_an_absent_file_gives_the_defaults(tmp_path):
    policy = load_policy(tmp_path / "nope.yml")
    assert policy.timezone == "UTC" and policy.reservations.ttl_seconds == 600
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy(tmp_path / "nope.yml", missing_ok=False)


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"budgets": {"defaults": {"agent": {"dya": 5}}}}, ["budgets.defaults", "dya"]),
        ({"budgets": {"defaults": {"robot": {"day": 5}}}}, ["budgets.defaults", "robot"]),
        ({"budgets": {"scopes": {"acme/../x": {"day": 5}}}}, ["budgets.scopes", "acme/../x"]),
        ({"budgets": {"scopes": {"acme": {"day": -1}}}}, ["budgets.scopes.acme.day", "negative"]),
        ({"budgets": {"scopes": {"acme": {"day": "1.0000001"}}}}, ["six decimals"]),
        ({"budgets": {"scopes": {"acme": {"day": "lots"}}}}, ["acme.day", "not an amount"]),
        ({"breakers": {"cooldown_seconds": "soon"}}, ["breakers.cooldown_seconds", "duration"]),
        (
            {"breakers": {"spend_rate": {"max": "2.00", "per_second": 60}}},
            ["per_second", "unknown"],
        ),
        ({"timezone": "Mars/Olympus"}, ["timezone", "Mars/Olympus"]),
        ({"oncall": {"escalation": [{"notify": "rotation:ghost"}]}}, ["oncall", "ghost"]),
        ({"oncall": {"escalation": [{"notify": "pager"}]}}, ["notify", "pager"]),
        ({"digest": {"time": "25:00"}}, ["digest.time"]),
        ({"alerts": {"tiers": {"runaway": "P9"}}}, ["alerts.tiers.runaway"]),
        (
            {"jobs": [{"name": "x", "cron": "0 * * * *", "url": "ftp://x", "scope": "a/b/c"}]},
            ["jobs.0.url"],
        ),
        ({"wat": 1}, ["wat", "unknown key"]),
        # a section given a value (audit15 reload L2: "instance of Budgets")
        ({"budgets": 5}, ["budgets: a mapping of keys", "not int"]),
        ({"alerts": {"tiers": ["P0"]}}, ["alerts.tiers: a mapping of keys", "not list"]),
        # zeros that would switch a safety off (audit10 M4)
        ({"breakers": {"cooldown_seconds": 0}}, ["breakers.cooldown_seconds", "at least 1s"]),
        ({"alerts": {"auto_resolve_after": "0s"}}, ["alerts.auto_resolve_after", "at least 1s"]),
        # a hanging hold's alert (audit27 parity #5): a duration, 0 turns it off
        ({"alerts": {"hanging_after": "soon"}}, ["alerts.hanging_after", "not a duration"]),
        ({"alerts": {"hanging_after": "-5m"}}, ["alerts.hanging_after"]),
        ({"alerts": {"tiers": {"hold_hangin": "P0"}}}, ["alerts.tiers.hold_hangin", "hanging"]),
        ({"breakers": {"spend_rate": {"max": 0}}}, ["breakers.spend_rate.max", "more than $0"]),
        # limits per scope prefix (audit27 parity #4): each refusal names its key path
        (
            {"breakers": {"scopes": {"acme/alice": {"spend_rat": {"max": 5}}}}},
            ["breakers.scopes.acme/alice.spend_rat: unknown key (did you mean 'spend_rate'?)"],
        ),
        (
            {"breakers": {"scopes": {"model:gpt-4o": {"cooldown_seconds": "1h"}}}},
            ["breakers.scopes.model:gpt-4o: ", "breakers.model_failures"],
        ),
        ({"breakers": {"scopes": {"a//b": {}}}}, ["breakers.scopes.a//b: ", "bad: ''"]),
        (
            {"breakers": {"scopes": {"acme": {"spend_rate": {"max": "-1.00"}}}}},
            ["breakers.scopes.acme.spend_rate.max", "negative"],
        ),
        (
            {"breakers": {"scopes": {"acme/alice/bot/c1": {"max_attempts_per_task": 5}}}},
            ["breakers.scopes.acme/alice/bot/c1: ", "its agent's"],
        ),
        (
            {"breakers": {"scopes": {"acme/alice": {"namespace_spend_rate": {"max": 5}}}}},
            ["breakers.scopes.acme/alice.namespace_spend_rate: only a namespace"],
        ),
        (
            {"breakers": {"scopes": {"acme": {"cooldown_seconds": "5h"}}}},
            ["breakers.scopes.acme.cooldown_seconds: 5h is longer than max_cooldown_seconds"],
        ),
        (
            {"breakers": {"scopes": {"acme": {"failures": {"min_calls": 30}}}}},
            ["breakers.scopes.acme.failures.min_calls: cannot be larger than window_calls"],
        ),
        # a key with nothing after it is null in YAML: it crashed the breakers (review29 H1)
        *(
            (
                {"breakers": {"scopes": {"acme/alice": {key: None}}}},
                [f"breakers.scopes.acme/alice.{key}: has no value: leave the key out"],
            )
            for key in (
                "failures",
                "half_open",
                "cooldown_seconds",
                "max_cooldown_seconds",
                "max_attempts_per_task",
                "failures_half_open_mode",
            )
        ),
        # cross-checks name the key to change, not its section (audit10 L3)
        (
            {"budgets": {"scopes": {"acme/alice": {"day": 5, "timezone": "Europe/Berlin"}}}},
            ["budgets.scopes.acme/alice.timezone: only a namespace sets a timezone"],
        ),
        (
            {"breakers": {"cooldown_seconds": 100, "max_cooldown_seconds": 50}},
            ["breakers.max_cooldown_seconds: 50s is shorter than cooldown_seconds (1m40s)"],
        ),
        (
            {"breakers": {"failures": {"min_calls": 30, "window_calls": 20}}},
            ["breakers.failures.min_calls: cannot be larger"],
        ),
        (
            {
                "oncall": {
                    "rotations": [
                        {"name": "p", "users": ["U01"], "period": "day", "handoff": "mon 09:00"}
                    ]
                }
            },
            ["oncall.rotations.0.handoff: a daily rotation hands off every day"],
        ),
        # a boolean where a count goes would be read as 1 (audit10 L2)
        ({"breakers": {"failures": {"min_calls": True}}}, ["breakers.failures.min_calls"]),
        ({"validation": {"window_days": True}}, ["validation.window_days"]),
        ({"channels": {"alerts": False}}, ["channels.alerts"]),  # not a channel named 'false'
        ({"timezone": "localtime"}, ["timezone", "localtime", "IANA"]),  # the host's, not a place
        (
            {"jobs": [{"name": "all", "cron": "0 * * * *", "url": "http://h/r", "scope": "a/b/c"}]},
            ["jobs.0.name", "pause all"],
        ),
        (
            {"jobs": [{"name": "x", "cron": "0 * * * *", "url": "http:///run", "scope": "a/b/c"}]},
            ["jobs.0.url", "then a host"],
        ),
    ],
)
def test_a_bad_value_names_its_key(data, names):
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, source="nightshift.yml")
    message = str(caught.value)
    assert message.startswith("nightshift.yml")
    for name in names:
        assert name in message, message


def test_not_yaml_and_not_a_mapping_are_refused(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("budgets: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(PolicyError, match="mapping"):
        load_policy(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        *[("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("0m", 0), (90, 90)],
        *[("1.5h", 5400), ("2H", 7200), (" 30 S ", 30)],  # typed at 3 a.m.: any case, spaces
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "5 minutes", "-5m", "1y", True, None, "400d", "1.5s", 0.5, float("nan"), "\u0665m"],
)
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False))
def test_usd_amounts_are_exact_micros(amount):
    micros = parse_usd(str(amount))
    assert Decimal(micros) == amount * 1_000_000
    assert parse_usd(f"${amount:,}") == micros


@pytest.mark.parametrize(
    "value",
    [
        *["NaN", "Infinity", "-0.01", "1e30", "abc", True, [], "0.0000001"],
        # what a person types is digits and a point: no exponent, no "_", no other scripts' digits
        *["$1e9", "1e3", "1_000", "\uff15", "\u0665", "+5", "5.", "$-5"],
        # a minus sign says something else was meant, even on nothing (audit13 Slack L5)
        *["-0", "$-0.00", -0.0],
        # a comma only separates thousands: a decimal comma is not read as 150 or 1.50
        *["1,50", "5,0,0", "1,5000"],
    ],
)
def test_bad_amounts(value):
    with pytest.raises(ValueError):
        parse_usd(value)


def test_amounts_render_in_cents_or_exactly():
    assert format_usd(1_234_567) == "$1.23"
    assert format_usd(4_000_000_000) == "$4,000.00"
    assert format_usd(1_500, exact=True) == "$0.0015"
    # to the nearest cent, half a cent up (audit27 mutation F8): $0.995 is not "$0.99"
    assert format_usd(995_000) == "$1.00"
    assert format_usd(1_234_999) == "$1.23" and format_usd(1_235_000) == "$1.24"
    assert format_usd(-995_000) == "-$1.00"
    assert parse_usd(0.1) == 100_000  # a YAML float is read by its shortest repr


def test_model_breakers_keep_their_own_defaults_for_the_keys_left_out():
    model = parse_policy({"breakers": {"model_failures": {"consecutive": 7}}}).breakers
    assert model.model_failures.model_dump() == {
        "consecutive": 7,
        "rate": 0.5,
        "window_calls": 40,
        "min_calls": 20,
        "slow_after": 0,
    }
    assert parse_policy({}).breakers.model_failures.consecutive == 10


def test_a_breaker_prefix_inherits_the_keys_it_leaves_out_field_by_field():
    breakers = parse_policy(
        {
            "breakers": {
                "failures": {"consecutive": 4, "window_calls": 30},
                "half_open": {"trial_calls": 5},
                "spend_rate": {"max": "2.00", "per_seconds": "5m"},
                "scopes": {
                    "acme": {
                        "failures": {"consecutive": 2},
                        "half_open": {"mode": "auto"},
                        "spend_rate": {"max": "5.00"},
                    },
                    "globex": {"spend_rate": None, "cooldown_seconds": "1m"},
                },
            }
        }
    ).breakers
    acme, globex = breakers.for_prefix("acme"), breakers.for_prefix("globex")
    assert acme.failures.model_dump() == {
        "consecutive": 2,
        "rate": 0.5,
        "window_calls": 30,
        "min_calls": 10,
        "slow_after": 0,
    }
    assert (acme.half_open.mode, acme.half_open.trial_calls) == ("auto", 5)
    assert acme.spend_rate is not None and acme.spend_rate.per_seconds == 300
    assert acme.spend_rate.max == 5_000_000 and acme.cooldown_seconds == 900
    assert globex.spend_rate is None and globex.cooldown_seconds == 60
    assert globex.failures.consecutive == 4


def test_a_sighup_onto_a_bad_breaker_prefix_keeps_running(tmp_path, caplog):
    from bot.reload import check_reload
    from guards.config import Policy

    config = tmp_path / "nightshift.yml"
    config.write_text("breakers:\n  scopes:\n    acme/alice:\n      spend_rat: {max: 5}\n")
    with caplog.at_level(logging.ERROR, logger="nightshift"):
        assert check_reload(str(config), Policy(), had_file=True) is None
    [said] = [r.getMessage() for r in caplog.records]
    assert "breakers.scopes.acme/alice.spend_rat: unknown key" in said
    assert "still running on the policy it last applied" in said


def test_the_readmes_unquoted_rotation_start_is_a_date(tmp_path):
    """audit10 M1: YAML reads `start: 2026-01-05` as a date, as the README writes it."""
    path = tmp_path / "p.yml"
    path.write_text(
        "oncall:\n  rotations:\n"
        "    - {name: p, users: [U01, U02], period: week, handoff: 'mon 09:00',"
        " start: 2026-01-05}\n"
    )
    assert load_policy(path).oncall.rotations[0].start == "2026-01-05"


def test_routing_may_name_a_dated_snapshot_of_a_priced_model():
    """audit10 M5: the engine prices snapshots, so the policy check takes them too."""
    policy = parse_policy(
        {
            "routing": {
                "tiers": {
                    "small": {"model": "claude-haiku-4-5-20251001"},
                    "medium": {"model": "claude-sonnet-4-5-latest"},
                    "large": {"model": "gpt-4o-2024-08-06"},
                },
                "fallbacks": {"gpt-4o-2024-08-06": ["claude-sonnet-4-5-20250929"]},
            }
        }
    )
    assert policy.routing.tiers["small"].model == "claude-haiku-4-5-20251001"
    with pytest.raises(PolicyError, match="did you mean 'claude-haiku-4-5'"):
        parse_policy({"routing": {"tiers": {"small": {"model": "claude-haiku-4.5-20251001"}}}})


def test_the_default_policy_file_absent_is_said_in_the_log(tmp_path, monkeypatch, caplog):
    """audit10 M3: DESIGN: 'when absent, built-in defaults apply and the log says so'."""
    from bot.cli_run import _policy
    from bot.settings import Settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTSHIFT_CONFIG", raising=False)
    with caplog.at_level(logging.INFO, logger="nightshift"):
        _policy(Settings())
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "nightshift"]
    assert said == [
        (logging.INFO, "no policy file at ./nightshift.yml: running on the built-in defaults")
    ]


def test_numbers_and_booleans_are_read_as_yaml_1_2_reads_them(tmp_path):
    """audit10 L1: YAML 1.1 read `010` as 8, `0x10` as 16, `1:30` as 90 and `yes` as true."""
    path = tmp_path / "p.yml"
    path.write_text("budgets:\n  scopes:\n    acme: {day: 010}\ndigest: {time: 10:30}\n")
    policy = load_policy(path)
    assert policy.budgets.scopes["acme"].limits() == {"day": 10_000_000}  # ten dollars
    assert policy.digest.time == "10:30"  # unquoted, as a person writes a time
    path.write_text("admins: [0800]\n")
    with pytest.raises(PolicyError, match="'0800' is not a Slack member id"):
        load_policy(path)  # a leading zero keeps it text (and text no member id)
    for line, key in (
        ("budgets: {scopes: {acme: {day: 0x10}}}", "budgets.scopes.acme.day"),
        ("oncall: {escalation: [{notify: channel, after: 1:30}]}", "oncall.escalation.0.after"),
        ("breakers: {failures: {min_calls: yes}}", "breakers.failures.min_calls"),
    ):
        path.write_text(line + "\n")
        with pytest.raises(PolicyError, match=re.escape(key)):
            load_policy(path)


def test_a_count_of_days_may_be_written_as_days():
    """audit10 L3: every other duration takes `7d`; the day counts do too."""
    policy = parse_policy({"validation": {"window_days": "7d", "rejections_retention_days": "30d"}})
    assert (policy.validation.window_days, policy.validation.rejections_retention_days) == (7, 30)


def test_a_daily_rotation_without_a_handoff_hands_off_at_nine():
    """audit12 L2: the weekly default ('mon 09:00') refused a daily rotation that set none."""
    policy = parse_policy(
        {"oncall": {"rotations": [{"name": "d", "users": ["U01"], "period": "day"}]}}
    )
    assert policy.oncall.rotations[0].handoff == "09:00"
    weekly = parse_policy({"oncall": {"rotations": [{"name": "w", "users": ["U01"]}]}})
    assert weekly.oncall.rotations[0].handoff == "mon 09:00"


def test_a_reload_refused_by_newer_code_names_the_file_not_its_copy(tmp_path, monkeypatch):
    """review15b L1: the error named the private copy, deleted by then."""
    from bot.reload import RELOAD_POLICY, reloaded_policy

    copy = tmp_path / "nightshift-policy-x.yml"
    copy.write_text("budgets: 5\n")
    monkeypatch.setenv(RELOAD_POLICY, str(copy))
    with pytest.raises(PolicyError) as raised:
        reloaded_policy("/etc/nightshift.yml")
    assert "/etc/nightshift.yml" in str(raised.value) and str(copy) not in str(raised.value)
    assert "refuses this policy, which the one before accepted" in str(raised.value)
    assert not copy.exists()


def test_a_cool_down_longer_than_its_cap_is_refused_at_the_key_written():
    """audit26 contract F3: `cooldown_seconds: 1d` alone was refused naming
    max_cooldown_seconds, a key the file did not have."""
    with pytest.raises(PolicyError) as refused:
        parse_policy({"breakers": {"cooldown_seconds": "1d"}})
    assert "breakers.cooldown_seconds: 1d is longer than max_cooldown_seconds (4h," in str(
        refused.value
    )
    assert "raise max_cooldown_seconds too" in str(refused.value)
    policy = parse_policy({"breakers": {"cooldown_seconds": "1d", "max_cooldown_seconds": "2d"}})
    assert policy.breakers.cooldown_seconds == 86400
