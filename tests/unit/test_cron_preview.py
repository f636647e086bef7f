"""``nightshift jobs preview``: the policy's jobs in words, without starting anything."""

from __future__ import annotations

import logging
import re

import pytest

from bot.cli import main

GOOD = """
timezone: Europe/Berlin
jobs:
  - {name: rss-hourly, cron: "0 * * * *", url: "http://127.0.0.1:9000/run",
     scope: acme/alice/rss-bot, max_runs_per_hour: 2, timeout_seconds: 300}
  - {name: health-sweep, cron: "*/5 * * * *", url: "http://127.0.0.1:9000/sweep",
     scope: acme/alice/ops-bot, max_runs_per_hour: 12, allow_frequent: true}
"""
BAD = (
    GOOD
    + """  - {name: report-daily, cron: "* 8 * * *", url: "http://127.0.0.1:9000/report",
     scope: acme/alice/ops-bot}
"""
)


def run(tmp_path, text, *extra):
    config = tmp_path / "nightshift.yml"
    config.write_text(text)
    return main(
        ["jobs", "preview", "--config", str(config), "--db", str(tmp_path / "n.db"), *extra]
    )


def test_preview_of_good_jobs_exits_0_and_shows_words_zone_and_next_fires(tmp_path, capsys):
    assert run(tmp_path, GOOD) == 0
    out = capsys.readouterr().out
    assert "rss-hourly  `0 * * * *`  (Europe/Berlin)" in out
    assert "every hour at :00, 24 runs a day" in out
    assert "every 5 minutes, 288 runs a day" in out
    nexts = [line for line in out.splitlines() if line.startswith("  next: ")]
    assert len(nexts) == 2
    assert all(len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T", n)) == 3 for n in nexts)
    assert out.rstrip().endswith("2 jobs OK")
    assert not (tmp_path / "n.db").exists()  # nothing was started or created


def test_preview_with_a_runaway_job_exits_1_and_says_why(tmp_path, capsys):
    assert run(tmp_path, BAD) == 1
    out = capsys.readouterr().out
    assert "every minute from 08:00 to 08:59, 60 runs a day" in out
    assert "did you mean `0 8 * * *`?" in out
    assert "1 of 3 jobs refused: report-daily" in out


def test_preview_prints_stable_derived_secrets_on_request(tmp_path, capsys):
    # the secrets come from the key in the server's database: a missing one is a typo
    assert run(tmp_path, GOOD, "--secrets") == 1
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "n.db").exists()
    assert main(["migrate", "--db", str(tmp_path / "n.db")]) == 0
    capsys.readouterr()
    assert run(tmp_path, GOOD, "--secrets") == 0
    first = re.findall(
        r"secret \(X-Nightshift-Job-Secret\): ([0-9a-f]{64})", capsys.readouterr().out
    )
    assert run(tmp_path, GOOD, "--secrets") == 0
    second = re.findall(
        r"secret \(X-Nightshift-Job-Secret\): ([0-9a-f]{64})", capsys.readouterr().out
    )
    assert len(first) == 2 and first == second and first[0] != first[1]


def test_preview_of_a_missing_file_says_so_and_shows_the_defaults(tmp_path, capsys):
    # DESIGN.md: when the policy file is absent, the built-in defaults apply (they have no jobs)
    assert main(["jobs", "preview", "--config", str(tmp_path / "absent.yml")]) == 0
    out = capsys.readouterr().out
    assert f"no policy file at {tmp_path / 'absent.yml'}" in out and "no jobs" in out


# -- every problem of the file at once (audit19 cron 7) ---------------------------------

JOB = '{{name: {name}, cron: "{cron}", url: "http://127.0.0.1:9000/run", scope: acme/a/b{extra}}}'


def jobs_file(*jobs: tuple[str, str, str]) -> str:
    lines = [f"  - {JOB.format(name=n, cron=c, extra=e)}" for n, c, e in jobs]
    return "jobs:\n" + "\n".join(lines) + "\n"


TWO_STAGES = jobs_file(("a", "61 * * * *", ""), ("b", "0 * * * *", ", bogus: 1"))


def assert_both_problems(said: str) -> None:
    assert "  jobs.1.bogus: unknown key" in said
    assert "  jobs.0 (a): `61 * * * *`\n    minute field: 61 is out of range 0-59" in said
    assert "check them with: nightshift jobs preview" in said


def test_a_key_error_and_a_bad_cron_are_said_together_by_preview_and_run(
    tmp_path, capsys, keep_logging
):
    """An unknown key in one job hid a bad expression in another until it was fixed."""
    assert run(tmp_path, TWO_STAGES) == 2
    assert_both_problems(capsys.readouterr().err)
    config = tmp_path / "nightshift.yml"
    assert main(["run", "--config", str(config), "--db", str(tmp_path / "n.db")]) == 2
    assert_both_problems(capsys.readouterr().err)
    assert not (tmp_path / "n.db").exists()


def test_a_sighup_says_every_problem_of_the_file_at_once(tmp_path, caplog):
    from bot.reload import check_reload
    from guards.config import Policy

    config = tmp_path / "nightshift.yml"
    config.write_text(TWO_STAGES)
    with caplog.at_level(logging.ERROR, logger="nightshift"):
        assert check_reload(str(config), Policy(), had_file=True) is None
    [said] = [r.getMessage() for r in caplog.records]
    assert_both_problems(said)


@pytest.mark.parametrize(
    ("jobs", "said"),
    [
        (  # a runaway schedule, beside a key error in another job
            [("report-daily", "* 8 * * *", ""), ("b", "0 * * * *", ", bogus: 1")],
            [
                "  jobs.1.bogus: unknown key",
                "  jobs.0 (report-daily): `* 8 * * *` every minute from 08:00 to 08:59",
                "    did you mean `0 8 * * *`?",
            ],
        ),
        (  # a repeated name
            [("a", "0 * * * *", ""), ("a", "5 * * * *", ""), ("c", "0 * * * *", ", bogus: 1")],
            [
                "  jobs.2.bogus: unknown key",
                "  jobs.1 (a): `5 * * * *`",
                "    another job is already named 'a'; names must be unique",
            ],
        ),
        (  # both problems in one job
            [("a", "61 * * * *", ", timeout_seconds: 5d, bogus: 1")],
            [
                "  jobs.0.bogus: unknown key",
                "  jobs.0 (a): `61 * * * *`",
                "    minute field: 61 is out of range 0-59",
            ],
        ),
    ],
)
def test_schedule_refusals_come_with_the_key_errors(tmp_path, capsys, jobs, said):
    assert run(tmp_path, jobs_file(*jobs)) == 2
    err = capsys.readouterr().err
    for line in said:
        assert line in err


def test_a_job_whose_own_cron_key_is_wrong_is_not_linted_twice(tmp_path, capsys):
    # cron: 5 is a number: the key error says so; there is no expression to lint
    text = jobs_file(("a", "0 * * * *", ", bogus: 1")).replace('"0 * * * *"', "5")
    assert run(tmp_path, text) == 2
    err = capsys.readouterr().err
    assert "  jobs.0.cron: Input should be a valid string" in err
    assert "refused" not in err


# -- the hint names the file that was read (audit24 claims C8) ---------------------------

RUNAWAY = jobs_file(("report-daily", "* 8 * * *", ""))


def test_a_refused_job_from_a_named_file_hints_preview_of_that_file(tmp_path, capsys, keep_logging):
    """`run --config p.yml` said `check them with: nightshift jobs preview`, which reads
    ./nightshift.yml, not p.yml."""
    config = tmp_path / "my policy.yml"
    config.write_text(RUNAWAY)
    assert main(["run", "--config", str(config), "--db", str(tmp_path / "n.db")]) == 2
    hint = capsys.readouterr().err.rstrip().splitlines()[-1]
    assert hint == f"check them with: nightshift jobs preview --config '{config}'"
    # the hint, run as it is said, checks that file
    assert main(["jobs", "preview", "--config", str(config)]) == 1
    assert "1 of 1 job refused: report-daily" in capsys.readouterr().out


def test_a_refused_job_from_the_default_file_hints_preview_alone(
    tmp_path, capsys, keep_logging, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTSHIFT_CONFIG", raising=False)
    (tmp_path / "nightshift.yml").write_text(RUNAWAY)
    assert main(["run", "--db", str(tmp_path / "n.db")]) == 2
    hint = capsys.readouterr().err.rstrip().splitlines()[-1]
    assert hint == "check them with: nightshift jobs preview"


def test_preview_says_unpriced_routed_models_beside_the_routing_section_s_errors(tmp_path, capsys):
    """audit24 L9: both kinds of problem in one refusal, exit 2 as for any bad policy."""
    text = """
routing:
  tiers: {medium: {model: no-such-model-x}}
  fallbacks: {claude-haiku-4-5: [nope-model]}
  rules: [{tier: small, pattern: "(a+)+$"}]
  degrade: {medium: 0.1, small: 0.3}
"""
    assert run(tmp_path, text) == 2
    said = capsys.readouterr().err
    assert "  routing.degrade: small (0.3) must be below medium (0.1)" in said
    assert "  routing.rules.0" in said
    assert "  routing.tiers.medium.model: no price for 'no-such-model-x'" in said
    assert "  routing.fallbacks.claude-haiku-4-5.0: no price for 'nope-model'" in said


def test_a_count_an_hour_is_said_once_whatever_it_breaks(tmp_path, capsys):
    """audit27 B3 L2: "it fires 60 times an hour" once, with every rule it breaks; the
    frequency rule by the count, not after the skipping, which allow_frequent does not stop
    (review27 R3 L4); a job that sets allow_frequent is not told it needs it (recheck27
    Kc L6)."""
    jobs = """
jobs:
  - {name: j-cap, cron: "* * * * *", url: "http://127.0.0.1:9000/run",
     scope: acme/a/b, max_runs_per_hour: 2, allow_frequent: true}
  - {name: sweep-hourly, cron: "*/5 * * * *", url: "http://127.0.0.1:9000/run",
     scope: acme/a/b, max_runs_per_hour: 2}
  - {name: j-often, cron: "*/10 * * * *", url: "http://127.0.0.1:9000/run",
     scope: acme/a/b, allow_frequent: true}
  - {name: j-cap-too, cron: "*/10 * * * *", url: "http://127.0.0.1:9000/run",
     scope: acme/a/b, max_runs_per_hour: 3}
"""
    assert run(tmp_path, jobs) == 1
    out = capsys.readouterr().out
    assert (
        "  allowed by allow_frequent: it fires 60 times an hour but max_runs_per_hour is 2,"
        " so runs would be skipped every hour\n"
    ) in out
    assert "  allowed by allow_frequent: it fires 6 times an hour\n" in out
    assert (
        "  REFUSED: it fires 6 times an hour (more than 4 needs allow_frequent: true), but"
        " max_runs_per_hour is 3, so runs would be skipped every hour\n"
    ) in out
    assert (
        "  REFUSED: its name says hourly but it runs 12 times an hour (more than 4 needs"
        " allow_frequent: true), and max_runs_per_hour is 2, so runs would be skipped every"
        " hour\n"
    ) in out
    assert out.count("times an hour") == 4
    assert out.count("needs allow_frequent") == 2  # the refused jobs only
