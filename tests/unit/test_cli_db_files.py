"""The files the command line uses: an older database is upgraded only by
``run`` and ``migrate``, and ``ledger verify`` says "could not check" apart from "broken".

audit20 newcomer M3: ``token list`` (and create, revoke) migrated an older database
without a word, under the older server still serving it; L5: ``ledger verify`` exited 1,
its "ledger broken" code, for a file missing or not a database; the demo, which plays on
files of its own, took --db and --config without reading them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from guards import migrations
from tests.unit.test_verify_snapshot import Server

pytestmark = pytest.mark.usefixtures("keep_logging")


def version(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0])


@pytest.fixture
def older(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A database an earlier version left: made by this code without its newest
    migration, so the file really lacks what that migration does."""
    every = migrations._migrations()
    monkeypatch.setattr(migrations, "_migrations", lambda *_: every[:-1])
    db = tmp_path / "old.db"
    assert main(["token", "create", "acme/alice/bot", "--db", str(db)]) == 0
    monkeypatch.undo()
    capsys.readouterr()
    assert version(db) == every[-2][0]
    return db


@pytest.mark.parametrize(
    "command",
    [
        ["token", "list"],
        ["token", "revoke", "tok_0000"],
        ["token", "create", "acme/bob/bot"],
        ["jobs", "preview", "--secrets", "--config", "{policy}"],
    ],
)
def test_a_command_on_an_older_database_asks_for_migrate_and_changes_nothing(
    older: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy = older.parent / "nightshift.yml"
    policy.write_text(
        "jobs:\n  - {name: digest, cron: '0 8 * * *', url: 'http://127.0.0.1:9/run',"
        " scope: acme/alice/bot}\n"
    )
    behind = version(older)
    command = [part.format(policy=policy) for part in command]
    assert main([*command, "--db", str(older)]) == 2
    err = capsys.readouterr().err
    assert f"{older}: the database is at schema version {behind}" in err
    assert "run `nightshift migrate` first" in err
    assert version(older) == behind
    with sqlite3.connect(older) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == 1


def test_migrate_then_the_command_works(older: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--db", str(older)]) == 0
    assert main(["token", "list", "--db", str(older)]) == 0
    assert "acme/alice/bot" in capsys.readouterr().out


def test_token_create_still_makes_a_new_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new.db"
    assert main(["token", "create", "acme", "--db", str(db)]) == 0
    assert "(a new database)" in capsys.readouterr().out


def test_ledger_verify_of_a_missing_file_is_not_a_broken_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ledger", "verify", "--db", str(tmp_path / "nosuch.db")]) == 2
    err = capsys.readouterr().err
    assert f"no database at {tmp_path / 'nosuch.db'}: check --db / NIGHTSHIFT_DB" in err
    assert not (tmp_path / "nosuch.db").exists()


def test_ledger_verify_of_a_file_that_is_no_database_is_not_a_broken_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("shopping list: eggs, milk\n" * 100)
    assert main(["ledger", "verify", "--db", str(notes)]) == 2
    err = capsys.readouterr().err
    assert f"{notes}: cannot check it: file is not a database" in err


def test_ledger_verify_of_a_drifted_usage_counter_says_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """audit27 mutation F9: a day's stored spend that the journal does not back is exit 1."""
    server = Server(str(tmp_path / "ledger.db"))
    server.reserve_and_settle()
    db = ["--db", str(tmp_path / "ledger.db")]
    assert main(["ledger", "verify", *db]) == 0
    assert capsys.readouterr().out.startswith("checked 1 reservation, ")  # not "1 reservations"
    server.conn.execute("UPDATE usage_daily SET held_micros = 5 WHERE scope = 'acme/a'")
    server.conn.close()
    assert main(["ledger", "verify", *db]) == 1
    out = capsys.readouterr().out
    assert (
        "MISMATCH usage acme/a on 2026-01-01: stored spent,held [700, 5]; the journal says [700, 0]"
    ) in out
    assert out.splitlines()[-1] == "ledger BROKEN: 1 problem"


# -- the demo's own files, and its refusal before it starts (audit20 newcomer L6, L7) ------


def test_the_demo_with_slack_set_and_no_channel_refuses_before_playing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-abc")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A1-2-abc")
    monkeypatch.delenv("NIGHTSHIFT_DEMO_CHANNEL", raising=False)
    assert main(["demo"]) == 2
    said = capsys.readouterr()
    assert said.out == ""  # no banner, no story steps before the refusal
    assert "needs NIGHTSHIFT_DEMO_CHANNEL" in said.err
    assert "or unset the SLACK_* variables to play it here, in the shell" in said.err


def test_the_demo_refuses_a_database_or_policy_it_would_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(tmp_path / "x.db"), "demo"]) == 2
    assert "--db and --config are not read (drop them)" in capsys.readouterr().err
    # after the command too, as every other command takes them (audit26 contract F2:
    # argparse's bare "unrecognized arguments")
    for option, value in (("--config", "p.yml"), ("--db", "x.db")):
        assert main(["demo", option, str(tmp_path / value)]) == 2
        assert "--db and --config are not read (drop them)" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


# -- a Slack API URL that can never work (audit20 newcomer L) -------------------------------


@pytest.mark.parametrize("url", ["notaurl", "slack.com/api/", "ftp://slack.com/api/", "https://"])
def test_a_slack_api_url_that_is_no_url_is_refused_at_start(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # it was taken for Slack being unreachable: a WARNING, and the process went on
    monkeypatch.setenv("SLACK_API_URL", url)
    assert main(["run"]) == 2
    assert f"SLACK_API_URL={url!r}: is not an http(s) URL: write it as https://slack.com/api/" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://proxyuser:PROXYPASS@127.0.0.1:46801/api/",
        "https://user@slack.com/api/",
        "https://bot:s3cr@tPROXYPASS@slack.example/api/",  # a password with an @ in it
    ],
)
def test_a_slack_api_url_with_a_user_or_password_is_refused_at_start(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """audit21 observe M2: slack_sdk refuses such a URL on every call; the start took it
    for Slack out of reach, and then no page went out and every command got a 500."""
    monkeypatch.setenv("SLACK_API_URL", url)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "SLACK_API_URL=" in err and "carries a user or password" in err
    assert "PROXYPASS" not in err and "://…@" in err  # the value is shown, not its password


def test_a_slack_api_url_on_loopback_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings

    monkeypatch.setenv("SLACK_API_URL", " http://127.0.0.1:8080/api/ ")
    assert Settings().slack_api_url == "http://127.0.0.1:8080/api/"
    monkeypatch.setenv("SLACK_API_URL", "")  # `${SLACK_API_URL:-}` in a compose file
    assert Settings().slack_api_url is None  # Slack's own, as before (review20 M4)


def test_only_run_keeps_the_signals_the_entry_point_holds(tmp_path: Path) -> None:
    """bot.entry notes SIGTERM and SIGINT and blocks SIGHUP while the command loads; any
    other command than `run` gets them back once its arguments are read, so a killed
    `ledger verify` does not say 0 and a SIGHUP is not left blocked."""
    import signal

    from bot.entry import hold

    term, interrupt = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    hold()
    try:
        assert signal.SIGHUP in signal.pthread_sigmask(signal.SIG_BLOCK, set())
        assert main(["ledger", "verify", "--db", str(tmp_path / "nosuch.db")]) == 2
        assert signal.getsignal(signal.SIGTERM) is term
        assert signal.getsignal(signal.SIGINT) is interrupt
        assert signal.SIGHUP not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    finally:
        signal.signal(signal.SIGTERM, term)
        signal.signal(signal.SIGINT, interrupt)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


def test_a_database_another_process_keeps_locked_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """audit21 observe M1: `token create` (and `run`) on a database a sqlite3 shell held
    in a transaction died with a traceback and the agents' "send it again" wording."""
    db = tmp_path / "locked.db"
    assert main(["token", "create", "acme", "--db", str(db)]) == 0
    capsys.readouterr()
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 1.0)  # its 8 s wait is not tested
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        assert main(["token", "create", "acme/bob", "--db", str(db)]) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    *logged, said = err.strip().splitlines()  # the store's own log lines, then one line
    assert all(line.startswith("{") for line in logged), err  # JSON lines, no raw traceback
    assert "Traceback" not in err  # a lock is said in words (recheck22: 14 lines of it)
    assert said.startswith(f"nightshift: {db}: the database refused a write (")
    assert "another process holds its write lock" in said and "nothing was changed" in said
    assert "send it again" not in said


def test_token_list_shows_a_label_s_control_characters_as_escapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """audit21 observe L4: a label's escape sequence cleared the reader's screen, and its
    newline faked a row of the list."""
    db = str(tmp_path / "t.db")
    assert main(["token", "create", "acme", "--db", db, "--label", "evil\x1b[2J\nline2"]) == 0
    capsys.readouterr()
    assert main(["token", "list", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and len(out.strip().splitlines()) == 2
    assert out.rstrip().endswith("evil\\x1b[2J\\nline2")


def test_a_label_longer_than_a_line_is_refused_and_no_token_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """audit26 text 5: a 10,000-character label was kept, and broke `token list`."""
    db = str(tmp_path / "t.db")
    with pytest.raises(SystemExit) as refused:
        main(["token", "create", "acme", "--db", db, "--label", "L" * 201])
    assert refused.value.code == 2
    said = capsys.readouterr().err
    assert "a label is at most 200 characters (this one has 201)" in said
    assert not Path(db).exists()
    assert main(["token", "create", "acme", "--db", db, "--label", "L" * 200]) == 0


# -- a database that cannot be read is not "schema version 0" (audit23 backup 3) -----------


def test_a_database_that_cannot_be_read_says_why_not_run_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its -wal deleted under the process that has it open: every command said "the
    database is at schema version 0: run `nightshift migrate` first", and `backup`
    blamed the copy."""
    db = tmp_path / "ns.db"
    live = migrations.connect(db)  # as a running server holds it
    try:
        migrations.apply_migrations(live, now=0.0)
        (tmp_path / "ns.db-wal").unlink()
        for command in (["token", "list"], ["ledger", "verify"], ["token", "create", "acme"]):
            assert main([*command, "--db", str(db)]) in (1, 2)
            err = capsys.readouterr().err
            assert "schema version" not in err and "migrate" not in err, err
            assert f"{db}: " in err and "disk I/O error" in err, err
            assert "/healthz says whether its -wal file was deleted" in err
        copy = tmp_path / "copy.db"
        assert main(["backup", str(copy), "--db", str(db)]) == 1
        err = capsys.readouterr().err
        assert f"nightshift: {db}: cannot read it: disk I/O error" in err, err
        assert "the copy" not in err and not copy.exists()
    finally:
        live.close()


def test_a_file_with_no_tables_yet_still_asks_for_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()  # (SQLite's empty database)
    assert main(["token", "list", "--db", str(empty)]) == 2
    assert "the database is at schema version 0" in capsys.readouterr().err
