"""A command line refusal changes nothing: no database file appears (audit25 M1).

``token create "acme/al ice" --db fresh.db`` refused the scope (exit 2) but had already
made and migrated ``fresh.db``: the next, valid create no longer said "(a new
database)", the README's sign of a mistyped ``--db``. Every argument that can be checked
is checked before a database is opened; the commands that only read or change what is
there (``token list``, ``token revoke``, ``ledger verify``, ``backup``, ``jobs preview
--secrets``) say there is no database and make none. ``run`` and ``migrate`` make it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

pytestmark = pytest.mark.usefixtures("keep_logging")

TOKEN = "ns_tok_0123456789ab_SECRETsecretSECRETsecretSECRET"


def nothing_at(db: Path) -> None:
    """No database there, nor its -wal or -shm."""
    made = [p.name for p in db.parent.iterdir() if p.name.startswith(db.name)]
    assert made == [], f"a refusal left {made}"


@pytest.mark.parametrize(
    ("scope", "said"),
    [
        ("acme/al ice", "each segment is 1-64 of"),
        ("acme/../x", "the segments . and .. are reserved"),
        ("", "each segment is 1-64 of"),
        ("a/b/c/d/e", "has 5 segments"),
        ("acme/" + "x" * 70, "each segment is 1-64 of"),
        ("acme;rm", "each segment is 1-64 of"),
        (TOKEN, "this is a Nightshift token, not a scope"),
    ],
)
def test_a_refused_scope_makes_no_database_and_the_next_create_says_new(
    tmp_path: Path, scope: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "fresh.db"
    for extra in ([], ["--operator"], ["--expires-in", "1d", "--label", "x"]):
        assert main(["token", "create", scope, *extra, "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert said in err and "SECRET" not in err
        nothing_at(db)
    assert main(["token", "create", "acme/alice", "--db", str(db)]) == 0
    assert f"in {db} (a new database);" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad", [["--label", "x" * 201], ["--expires-in", "0s"], ["--expires-in", "1.5s"]]
)
def test_a_refused_option_makes_no_database(
    tmp_path: Path, bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "fresh.db"
    with pytest.raises(SystemExit) as refused:  # argparse's usage line, naming the option
        main(["token", "create", "acme/alice", *bad, "--db", str(db)])
    assert refused.value.code == 2 and bad[0] in capsys.readouterr().err
    nothing_at(db)


@pytest.mark.parametrize(
    ("command", "code", "said"),
    [
        (["token", "list"], 1, "no database at {db}: check --db / NIGHTSHIFT_DB"),
        (["token", "revoke", "tok_0123456789ab"], 1, "no database at {db}"),
        (["token", "revoke", TOKEN], 1, "no database at {db}"),
        (["ledger", "verify"], 2, "no database at {db}: check --db / NIGHTSHIFT_DB"),
        (["backup", "{copy}"], 1, "no database at {db}"),
        (["jobs", "preview", "--secrets", "--config", "{policy}"], 1, "no database at {db}"),
    ],
)
def test_a_command_on_a_missing_database_says_so_and_makes_none(
    tmp_path: Path,
    command: list[str],
    code: int,
    said: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, copy, policy = tmp_path / "typo.db", tmp_path / "copy.db", tmp_path / "p.yml"
    policy.write_text(
        "jobs:\n  - {name: digest, cron: '0 8 * * *', url: 'http://127.0.0.1:9/run',"
        " scope: acme/alice/bot}\n"
    )
    argv = [part.format(copy=copy, policy=policy) for part in command]
    assert main([*argv, "--db", str(db)]) == code
    err = capsys.readouterr().err
    assert said.format(db=db) in err and "SECRET" not in err
    nothing_at(db)
    nothing_at(copy)


@pytest.mark.parametrize("given", ["acme/alice", "", "  ", "12345", "rss bot\x1b[2J"])
def test_revoke_refuses_what_is_no_token_id_before_reading_a_database(
    tmp_path: Path, given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "typo.db"
    assert main(["token", "revoke", given, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "is not a token's id: an id starts with tok_ (see nightshift token list)" in err
    assert "\x1b" not in err  # a control character is shown escaped
    nothing_at(db)


def test_revoke_of_an_unknown_id_on_a_database_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ns.db"
    assert main(["token", "create", "acme/alice", "--db", str(db)]) == 0
    before = db.read_bytes()
    capsys.readouterr()
    assert main(["token", "revoke", "acme/alice", "--db", str(db)]) == 2
    assert main(["token", "revoke", "tok_nope", "--db", str(db)]) == 1
    assert "no active token tok_nope" in capsys.readouterr().err
    assert main(["token", "list", "--db", str(db)]) == 0
    assert "active" in capsys.readouterr().out
    assert db.read_bytes() == before


def test_migrate_and_a_valid_create_still_make_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--db", str(tmp_path / "m.db")]) == 0
    assert (tmp_path / "m.db").exists()
    assert main(["token", "create", "acme", "--db", str(tmp_path / "t.db")]) == 0
    assert "(a new database)" in capsys.readouterr().out
