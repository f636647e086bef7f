"""The policy file refuses what would silently misbehave, naming the key and what to write.

Each refusal here was once accepted and broke something later: a typo'd alert kind
kept its default tier, a second ``budgets:`` block dropped the first, ``"1,50"`` was
$150, a zero hold lifetime expired every hold at once, a routed model without a
price failed every estimate.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bot.alerts.model import alert_kind
from bot.cli import main
from bot.demo.story import demo_policy
from guards import events
from guards.config import (
    ALERT_KINDS,
    DEFAULT_TIERS,
    REPEATS_READ_LAST,
    PolicyError,
    load_policy,
    parse_policy,
)
from guards.money import parse_usd

ROOT = Path(__file__).resolve().parents[2]


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, source="nightshift.yml")
    message = str(caught.value)
    assert message.startswith("nightshift.yml: the policy is not valid:\n"), message
    return message


def write(tmp_path: Path, text: str | bytes) -> Path:
    file = tmp_path / "nightshift.yml"
    if isinstance(text, bytes):
        file.write_bytes(text)
    else:
        file.write_text(textwrap.dedent(text), encoding="utf-8")
    return file


def load_refusal(file: Path) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policy(file)
    return str(caught.value)


# -- the shipped policies still load ----------------------------------------------------


def test_the_design_md_example_the_shipped_example_and_the_demo_policy_load(tmp_path):
    # examples/nightshift.yml is DESIGN.md's example policy, verbatim
    texts = {
        "example": (ROOT / "examples" / "nightshift.yml").read_text(encoding="utf-8"),
        "demo": demo_policy(job_url="http://127.0.0.1:9000/run", channel="C0ALERTS"),
    }
    for name, text in texts.items():
        file = tmp_path / f"{name}.yml"
        file.write_text(text, encoding="utf-8")
        # the strict loader reads exactly what yaml.safe_load reads
        assert load_policy(file) == parse_policy(yaml.safe_load(text)), name


# -- 1. alert kinds ---------------------------------------------------------------------


def test_a_typo_in_an_alert_kind_is_refused_with_the_closest_kind_and_the_list():
    message = refusal({"alerts": {"tiers": {"runaway": "P0", "breaker_opened_spnd": "P0"}}})
    assert (
        "  alerts.tiers.breaker_opened_spnd: unknown alert kind 'breaker_opened_spnd'"
        " (did you mean 'breaker_opened_spend'?); the kinds are attempts_exhausted,"
    ) in message
    assert "alerts.tiers.runaway" not in message
    for kind in ALERT_KINDS:
        assert kind in message


def test_a_kind_like_nothing_known_gets_the_list_without_a_guess():
    message = refusal({"alerts": {"tiers": {"everything": "P2"}}})
    assert "alerts.tiers.everything: unknown alert kind 'everything'; the kinds are " in message
    assert "did you mean" not in message


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            {"budgets": {"defaults": {"bot": {"day": 10}}}},
            "  budgets.defaults.bot: unknown level 'bot'; levels are namespace, user, agent,",
        ),
        (
            {"budgets": {"defaults": {"agent": {"daily": 10, "week": 50}}}},
            "  budgets.defaults.agent.daily: unknown window 'daily'; windows are day, week,",
        ),
        (
            {"oncall": {"escalation": [{"notify": "channel"}, {"notify": "rotation:nope"}]}},
            "  oncall.escalation.1.notify: unknown rotation 'nope'; oncall.rotations defines none",
        ),
        (
            {
                "oncall": {
                    "rotations": [{"name": "primary", "users": ["U01"]}],
                    "escalation": [{"notify": "rotation:primry"}],
                }
            },
            "  oncall.escalation.0.notify: unknown rotation 'primry'; rotations are primary",
        ),
    ],
)
def test_an_unknown_name_inside_a_section_is_refused_at_its_own_key_path(data, line):
    """audit7 L3: not just `budgets.defaults` or `oncall`."""
    assert line in refusal(data)


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            {"budgets": {"scopes": {"acme": {"daily": "5"}}}},
            "  budgets.scopes.acme.daily: unknown key (did you mean 'day'?); the keys here: day,"
            " week, month, total, timezone",
        ),
        (
            {"oncall": {"rotations": [{"name": "p", "users": ["U01"], "handof": "1d"}]}},
            "  oncall.rotations.0.handof: unknown key (did you mean 'handoff'?)",
        ),
        ({"zzz": 1}, "  zzz: unknown key (check the spelling; see the README's policy reference)"),
    ],
)
def test_a_misspelt_key_gets_the_nearest_key_of_its_section(data, line):
    assert line in refusal(data)


def test_an_empty_duration_says_so_in_the_file_s_words():
    message = refusal({"retention": {"events": None}, "breakers": {"cooldown_seconds": None}})
    assert "  retention.events: no value given (write 30s, 5m, 2h or 1d, or leave the key out)" in (
        message
    )
    assert "breakers.cooldown_seconds: no value given" in message
    assert "None" not in message  # a YAML file says null, or nothing


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"budgets": {"defaults": {"agent": {"day": None}}}}, "budgets.defaults.agent.day"),
        ({"alerts": None}, "alerts"),
        ({"breakers": {"failures": {"min_calls": None}}}, "breakers.failures.min_calls"),
        ({"budgets": {"scopes": {"acme": None}}}, "budgets.scopes.acme"),
    ],
)
def test_a_key_left_empty_says_no_value_was_given(data, key):
    message = refusal(data)
    assert f"  {key}: no value given (give one, or leave the key out for the default)" in message
    assert "None" not in message and "NoneType" not in message


def test_every_known_kind_takes_a_tier():
    tiers = {kind: "P2" for kind in ALERT_KINDS}
    policy = parse_policy({"alerts": {"tiers": tiers}})
    assert all(policy.alerts.tier_of(kind) == "P2" for kind in ALERT_KINDS)
    assert set(ALERT_KINDS) == set(DEFAULT_TIERS)


def test_every_alert_the_bot_raises_has_a_kind_the_policy_knows():
    kinds = {
        cls.kind
        for cls in vars(events).values()
        if isinstance(cls, type) and issubclass(cls, events.Event) and cls is not events.Event
    }
    raised = {alert_kind(k, {}) for k in kinds}
    raised |= {alert_kind("breaker_opened", {"trip": t}) for t in ("spend", "manual", "failures")}
    raised.discard(None)
    assert raised <= set(ALERT_KINDS), raised - set(ALERT_KINDS)


# -- 2. not UTF-8 -----------------------------------------------------------------------


def test_a_file_that_is_not_utf8_names_the_byte_and_the_line(tmp_path):
    file = write(tmp_path, b"timezone: Europe/Berlin\nadmins: [\xff\xfe]\n")
    assert load_refusal(file) == (
        f"{file}: not UTF-8 text (byte 0xff at line 2); save the file as UTF-8"
    )
    latin1 = write(tmp_path, "# caf\u00e9\ntimezone: UTC\n".encode("latin-1"))
    assert "not UTF-8 text (byte 0xe9 at line 1)" in load_refusal(latin1)


def test_a_utf8_file_with_a_byte_order_mark_loads(tmp_path):
    file = write(tmp_path, b"\xef\xbb\xbftimezone: Europe/Berlin\n")
    assert load_policy(file).timezone == "Europe/Berlin"


# -- 3. duplicate keys ------------------------------------------------------------------


def test_a_second_budgets_block_is_refused_instead_of_dropping_the_first(tmp_path):
    file = write(
        tmp_path,
        """\
        budgets:
          scopes:
            acme: {day: 200.00}
        breakers: {cooldown_seconds: 900}
        budgets:
          defaults:
            agent: {day: 10.00}
        """,
    )
    assert load_refusal(file) == (
        f"{file}: the policy is not valid:\n"
        "  line 5: key 'budgets' appears twice (first at line 1);"
        " write it once, with everything it holds under it"
    )


def test_nested_repeats_are_named_by_their_path_in_line_order(tmp_path):
    file = write(
        tmp_path,
        """\
        budgets:
          scopes:
            acme: {day: 5}
            acme: {day: 50}
        jobs:
          - {name: a, cron: "0 * * * *", url: "http://x/", scope: a/b/c, cron: "*/5 * * * *"}
        alerts: {tiers: {1: P0, 1.0: P1}}
        """,
    )
    lines = load_refusal(file).splitlines()[1:]
    assert [line.split(": line ")[0].strip() for line in lines[:3]] == [
        "budgets.scopes",
        "jobs.0",
        "alerts.tiers",
    ]
    # then the file's other problems, at once (audit26 A1 L1), read from the last copy of
    # each key written twice (review26 R2 L3): 1 is no alert kind
    assert lines[3:] == [
        f"  {REPEATS_READ_LAST}",
        "  alerts.tiers.1: not allowed as a key here: Input should be a valid string",
    ]
    assert "line 4: key 'acme' appears twice (first at line 3)" in lines[0]
    assert "line 6: key 'cron' appears twice (first at line 6)" in lines[1]
    assert "key '1.0' appears twice" in lines[2]  # 1 and 1.0 are one key to YAML


def test_merge_keys_and_anchors_still_work(tmp_path):
    file = write(
        tmp_path,
        """\
        budgets:
          defaults:
            agent: &small {day: 5, total: 50}
            user:
              <<: *small
              day: 6
            conversation: *small
        """,
    )
    defaults = load_policy(file).budgets.defaults
    assert defaults["user"] == {"day": 6_000_000, "total": 50_000_000}
    assert defaults["conversation"] == defaults["agent"] == {"day": 5_000_000, "total": 50_000_000}


def test_the_command_line_shows_the_refusal_and_exits_2(tmp_path, capsys, keep_logging):
    file = write(tmp_path, "digest: {time: '09:00'}\ndigest: {time: '10:00'}\n")
    assert main(["jobs", "preview", "--config", str(file), "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert f"{file}: the policy is not valid:" in err
    assert "line 2: key 'digest' appears twice (first at line 1)" in err
    assert not (tmp_path / "x.db").exists()


# -- 4. amounts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("5,000.00", 5_000_000_000),
        ("$1,234,567", 1_234_567_000_000),
        (" $12,345.5 ", 12_345_500_000),
        ("999", 999_000_000),
        ("$5", 5_000_000),
    ],
)
def test_a_comma_between_thousands_is_fine(text, micros):
    assert parse_usd(text) == micros


@pytest.mark.parametrize("text", ["1,50", "5,0,0", "1,5000", "1,000,00", ",5", "5,", "1,000.5,0"])
def test_any_other_comma_is_refused_with_what_to_write(text):
    with pytest.raises(ValueError, match=r"use a dot for decimals \(1\.50\)"):
        parse_usd(text)


def test_a_decimal_comma_in_the_policy_names_the_key():
    message = refusal({"budgets": {"scopes": {"acme": {"day": "1,50"}}}})
    assert "  budgets.scopes.acme.day: '1,50' is not an amount in USD:" in message
    assert "use a dot for decimals (1.50)" in message


@given(whole=st.integers(min_value=1_000, max_value=10**8), cut=st.integers(min_value=0))
def test_a_comma_is_read_only_between_thousands(whole, cut):
    digits = str(whole)
    cut = 1 + cut % (len(digits) - 1)  # one comma somewhere inside the number
    typed = f"${digits[:cut]},{digits[cut:]}"
    if len(digits) - cut == 3 and cut <= 3:  # 1,234 ... 123,456: a thousands separator
        assert parse_usd(typed) == whole * 1_000_000
    else:
        with pytest.raises(ValueError, match="use a dot for decimals"):
            parse_usd(typed)


# -- 5. durations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("reservations", "ttl_seconds"),
        ("reservations", "max_ttl_seconds"),
        ("heartbeats", "timeout_seconds"),
    ],
)
@pytest.mark.parametrize("zero", ["0s", "0m", 0])
def test_a_zero_that_would_expire_at_once_is_refused(section, key, zero):
    message = refusal({section: {key: zero}})
    assert f"  {section}.{key}: {zero!r} is out of range: must be at least 1s" in message
    assert "write e.g. 5m" in message


def test_a_default_ttl_over_the_maximum_is_refused_naming_both():
    message = refusal({"reservations": {"ttl_seconds": "2d", "max_ttl_seconds": "1d"}})
    assert message.splitlines()[1] == (
        "  reservations.ttl_seconds: 2d is longer than max_ttl_seconds (1d), so every hold"
        " without its own ttl would be refused; lower ttl_seconds to at most 1d or raise"
        " max_ttl_seconds to at least 2d"
    )
    # the default maximum is a day: a two-day default alone is refused the same way
    assert "max_ttl_seconds (1d)" in refusal({"reservations": {"ttl_seconds": "2d"}})


def test_durations_that_mean_at_once_and_equal_ttls_still_load():
    policy = parse_policy(
        {
            "reservations": {"ttl_seconds": "1s", "max_ttl_seconds": "1s"},
            "heartbeats": {"timeout_seconds": 1},
            "oncall": {
                "rotations": [{"name": "p", "users": ["U01"]}],
                "escalation": [{"notify": "rotation:p", "after": "0m"}],
            },
        }
    )
    assert (policy.reservations.ttl_seconds, policy.reservations.max_ttl_seconds) == (1, 1)
    assert policy.heartbeats.timeout_seconds == 1
    assert policy.oncall.escalation[0].after == 0


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("1.5s", "write 1s or 2s"),
        (2.5, "write 2s or 3s"),
        ("1.01m", "write 1m or 61s"),
        ("0.5s", "(write 1s)"),
    ],
)
def test_a_fraction_of_a_second_is_refused_not_truncated(value, hint):
    message = refusal({"breakers": {"cooldown_seconds": value}})
    assert f"  breakers.cooldown_seconds: {value!r} is not a whole number of seconds" in message
    assert hint in message


def test_a_fraction_that_makes_whole_seconds_is_taken_exactly():
    policy = parse_policy(
        {"reservations": {"ttl_seconds": "1.5h"}, "heartbeats": {"timeout_seconds": 90.0}}
    )
    assert (policy.reservations.ttl_seconds, policy.heartbeats.timeout_seconds) == (5400, 90)


# -- 6. routed models need a price ------------------------------------------------------


def test_a_routing_tier_model_without_a_price_is_refused():
    message = refusal({"routing": {"tiers": {"small": {"model": "gpt-nine"}}}})
    line = message.splitlines()[1]
    assert line.startswith(
        "  routing.tiers.small.model: no price for 'gpt-nine' (did you mean 'gpt-5-nano'?);"
        " add it under prices: (known: claude-3-5-haiku, claude-3-7-sonnet, claude-haiku-4-5,"
    )
    assert len(message.splitlines()) == 2  # medium and large keep their priced defaults


def test_fallback_models_without_a_price_are_refused_by_their_place_in_the_chain():
    message = refusal({"routing": {"fallbacks": {"claude-opus-4-1": ["gpt-5", "no-such-model"]}}})
    assert "  routing.fallbacks.claude-opus-4-1.1: no price for 'no-such-model'" in message
    typo = refusal({"routing": {"fallbacks": {"claude-opus-41": ["gpt-5"]}}})
    assert (
        "  routing.fallbacks.claude-opus-41: no price for 'claude-opus-41'"
        " (did you mean 'claude-opus-4-1'?)"
    ) in typo


def test_a_price_in_the_policy_makes_a_model_routable():
    policy = parse_policy(
        {
            "routing": {
                "tiers": {"small": {"model": "local-llama"}},
                "fallbacks": {"local-llama": ["gpt-4.1-mini"]},
            },
            "prices": {"local-llama": {"input": "0.10", "output": "0.20"}},
        }
    )
    assert policy.routing.tiers["small"].model == "local-llama"
    message = refusal(
        {
            "routing": {"tiers": {"small": {"model": "local-llama"}}},
            "prices": {"other-llama": {"input": "0.10", "output": "0.20"}},
        }
    )
    assert "no price for 'local-llama' (did you mean 'other-llama'?)" in message
    assert "other-llama" in message.split("(known: ")[1]


# -- 7. repeated names and fractions ----------------------------------------------------


def test_two_rotations_with_one_name_are_refused():
    message = refusal(
        {
            "oncall": {
                "rotations": [
                    {"name": "p", "users": ["U01"]},
                    {"name": "q", "users": ["U02"]},
                    {"name": "p", "users": ["U03"]},
                ]
            }
        }
    )
    assert message.splitlines()[1] == (
        "  oncall.rotations.2.name: the name 'p' is already taken by oncall.rotations.0;"
        " give each rotation its own name"
    )


def test_two_rotations_whose_names_differ_only_in_case_are_refused():
    # a step `rotation:Primary` finds a rotation in any case: both would answer to it,
    # and the first one's users would be paged for the second's
    message = refusal(
        {
            "oncall": {
                "rotations": [
                    {"name": "primary", "users": ["U0AAA"]},
                    {"name": "Primary", "users": ["U0BBB"]},
                ],
                "escalation": [{"notify": "rotation:Primary", "after": "0m"}],
            }
        }
    )
    assert message.splitlines()[1] == (
        "  oncall.rotations.1.name: the name 'Primary' is already taken by oncall.rotations.0"
        " (as 'primary': names are read in any case); give each rotation its own name"
    )


def test_an_escalation_step_names_its_rotation_in_any_case():
    policy = parse_policy(
        {
            "oncall": {
                "rotations": [{"name": "primary", "users": ["U0AAA"]}],
                "escalation": [{"notify": "rotation:Primary", "after": "0m"}],
            }
        }
    )
    assert policy.oncall.escalation[0].notify == "rotation:Primary"
    message = refusal(
        {
            "oncall": {
                "rotations": [{"name": "primary", "users": ["U0AAA"]}],
                "escalation": [{"notify": "rotation:secondary", "after": "0m"}],
            }
        }
    )
    assert "unknown rotation 'secondary'; rotations are primary" in message


def test_a_warning_fraction_listed_twice_is_refused():
    message = refusal({"budgets": {"warn_at": [0.5, 0.8, 0.5]}})
    assert message.splitlines()[1] == (
        "  budgets.warn_at: 0.5 appears more than once; list each fraction once, e.g. [0.5, 0.8]"
    )
    assert parse_policy({"budgets": {"warn_at": [0.9, 0.5]}}).budgets.warn_at == [0.5, 0.9]


def test_a_wrong_key_name_is_said_without_pydantic_markers():
    message = refusal({"routing": {"tiers": {"huge": {"model": "gpt-5"}}}})
    assert "  routing.tiers.huge: not allowed as a key here: Input should be 'small'," in message
    assert "[key]" not in message


def test_routing_degrade_steps_down_in_order():
    message = refusal({"routing": {"degrade": {"medium": 0.1, "small": 0.3}}})
    assert "routing.degrade: small (0.3) must be below medium (0.1)" in message
    assert parse_policy({"routing": {"degrade": {"medium": 0.3, "small": 0.1}}})


def test_alert_routing_by_scope_names_real_scopes():
    message = refusal({"channels": {"alerts_by_scope": {"acme/ali ce": "C1"}}})
    assert "channels.alerts_by_scope" in message and "'acme/ali ce' is not a scope" in message
    ok = parse_policy({"channels": {"alerts_by_scope": {"acme/alice": "C1"}}})
    assert ok.channels.alerts_for("acme/alice/bot") == "C1"


# -- 7. every problem at once; ranges said as they are (audit19 cron 7) -----------------


def test_a_routed_model_without_a_price_is_said_beside_a_key_error_elsewhere():
    """The price check ran only once every other key was right."""
    message = refusal(
        {"routing": {"tiers": {"small": {"model": "gpt-nine"}}}, "digest": {"tyme": "08:00"}}
    )
    assert "  digest.tyme: unknown key (did you mean 'time'?)" in message
    assert "  routing.tiers.small.model: no price for 'gpt-nine'" in message
    # a price that the broken prices section may hold is not guessed at
    message = refusal(
        {"routing": {"tiers": {"small": {"model": "gpt-nine"}}}, "prices": {"gpt-nine": 5}}
    )
    assert "no price" not in message


JOB = {"name": "a", "cron": "0 * * * *", "url": "http://127.0.0.1:9000/run", "scope": "a/b/c"}
POSITIVE = "must be at least 1s and at most 366 days"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("jobs", "timeout_seconds"),
        ("breakers.spend_rate", "per_seconds"),
        ("heartbeats", "timeout_seconds"),
        ("reservations", "ttl_seconds"),
    ],
)
@pytest.mark.parametrize("value", [-5, 0, "0s", "367d"])
def test_a_duration_that_must_be_positive_says_one_true_range(section, key, value):
    if section == "jobs":
        data: dict[str, Any] = {"jobs": [{**JOB, key: value}]}
        path = f"jobs.0.{key}"
    else:
        outer, _, inner = section.partition(".")
        data = {outer: {inner: {key: value}} if inner else {key: value}}
        path = f"{section}.{key}"
    message = refusal(data)
    assert f"  {path}: {value!r} is out of range: {POSITIVE}" in message


def test_a_job_grace_of_0_loads_and_a_negative_one_says_the_range_from_0():
    policy = parse_policy({"jobs": [{**JOB, "misfire_grace_seconds": 0}]})
    assert policy.jobs[0].misfire_grace_seconds == 0
    message = refusal({"jobs": [{**JOB, "misfire_grace_seconds": -5}]})
    assert "  jobs.0.misfire_grace_seconds: -5 is out of range (0 to 366 days)" in message


# -- 8. a date with no such day -----------------------------------------------------------

IMPOSSIBLE_DATES = """\
oncall:
  rotations:
    - {name: primary, users: [U0AAA], start: 2026-02-30}
    - {name: second, users: [U0BBB], start: 2026-13-01}
"""


def test_an_unquoted_date_with_no_such_day_is_refused_naming_its_key(tmp_path):
    # PyYAML raised "day is out of range for month", naming no file and no key
    message = load_refusal(write(tmp_path, IMPOSSIBLE_DATES))
    assert message.splitlines() == [
        f"{tmp_path / 'nightshift.yml'}: the policy is not valid:",
        "  oncall.rotations.0.start: '2026-02-30': write the start as a date, e.g. 2026-01-05",
        "  oncall.rotations.1.start: '2026-13-01': write the start as a date, e.g. 2026-01-05",
    ]


def test_a_sighup_onto_a_date_with_no_such_day_is_refused_in_words(tmp_path, caplog):
    # the reload's first look at the file raised the ValueError out of the signal handler
    from bot.reload import check_reload
    from guards.config import Policy

    config = write(tmp_path, IMPOSSIBLE_DATES)
    with caplog.at_level(logging.ERROR, logger="nightshift"):
        assert check_reload(str(config), Policy(), had_file=True) is None
    [said] = [r.getMessage() for r in caplog.records]
    assert "oncall.rotations.0.start: '2026-02-30': write the start as a date" in said
    assert "still running on the policy it last applied" in said


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"alerts": {"inhibit_by_model": "sometimes"}}, "alerts.inhibit_by_model"),
        ({"breakers": {"follow_model": "sometimes"}}, "breakers.follow_model"),
    ],
)
def test_the_outage_switches_are_refused_at_their_key_path(data, path):
    """audit27 parity #2: `alerts.inhibit_by_model` and `breakers.follow_model` are
    true or false, and a bad value is refused naming the key."""
    assert path in refusal(data)


def test_the_outage_switches_are_on_unless_the_policy_says_otherwise():
    policy = parse_policy({}, source="nightshift.yml")
    assert policy.alerts.inhibit_by_model and policy.breakers.follow_model
    off = parse_policy(
        {"alerts": {"inhibit_by_model": False}, "breakers": {"follow_model": False}},
        source="nightshift.yml",
    )
    assert not off.alerts.inhibit_by_model and not off.breakers.follow_model


def test_a_refused_routing_section_still_says_its_unpriced_models():
    """audit24 L9: the price check ran only on a valid routing section, so an unpriced
    tier or fallback model was said only once the section's other errors were fixed."""
    message = refusal(
        {
            "routing": {
                "tiers": {"medium": {"model": "no-such-model-x"}, "small": {"model": 7}},
                "fallbacks": {"claude-haiku-4-5": ["nope-model", None], "gpt-nien": "x"},
                "degrade": {"medium": 2},
                "rules": [{"tier": "huge", "keywords": ["a"]}],
            },
            "prices": {"local-llama": {"input": "0.10", "output": "0.20"}},
        }
    )
    assert "  routing.degrade: degrade fractions are between 0 and 1" in message
    assert "  routing.rules.0.tier: " in message
    assert "  routing.tiers.medium.model: no price for 'no-such-model-x'" in message
    assert "  routing.fallbacks.claude-haiku-4-5.0: no price for 'nope-model'" in message
    assert "  routing.fallbacks.gpt-nien: no price for 'gpt-nien'" in message
    assert "local-llama" in message.split("(known: ")[1]  # the policy's prices count
    assert "no price for 7" not in message and "None" not in message  # not model names
    assert "routing.fallbacks.claude-haiku-4-5: no price" not in message  # it is priced


def test_a_refused_routing_section_s_models_are_not_checked_against_broken_prices():
    message = refusal(
        {
            "routing": {"tiers": {"small": {"model": "my-llm"}}, "degrade": {"medium": 2}},
            "prices": {"my-llm": 5},
        }
    )
    assert "  routing.degrade: degrade fractions" in message and "no price" not in message


@pytest.mark.parametrize("routing", [5, "x", [1], {"tiers": 3, "fallbacks": ["a"]}])
def test_a_hostile_routing_section_is_refused_without_a_crash(routing):
    message = refusal({"routing": routing})
    assert "no price" not in message
