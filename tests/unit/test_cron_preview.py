"""``nightshift jobs preview``: the policy's jobs in words, without starting anything."""

from __future__ import annotations

import re

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
    assert out.rstrip().endswith("2 job(s) OK")
    assert not (tmp_path / "n.db").exists()  # nothing was started or created


def test_preview_with_a_runaway_job_exits_1_and_says_why(tmp_path, capsys):
    assert run(tmp_path, BAD) == 1
    out = capsys.readouterr().out
    assert "every minute from 08:00 to 08:59, 60 runs a day" in out
    assert "did you mean `0 8 * * *`?" in out
    assert "1 of 3 job(s) refused: report-daily" in out


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
