"""Secrets at rest and on the command line (audit24 security).

M1: the database, its -wal and -shm and `backup` copies came out 0644 under the usual
umask, and they hold the jobs' signing key and Slack reply links; M3: `token create`
with a pasted token took it for a namespace and wrote the secret into the audit log;
L4: `token revoke "Bearer <token>"` revoked nothing and printed the whole secret.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli_db import _backup
from bot.cli_run import _readable_by_others
from guards.migrations import connect

pytestmark = pytest.mark.usefixtures("keep_logging")


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def token_of(out: str) -> str:
    return out.split()[-1]


@pytest.mark.usefixtures("umask_022")
def test_a_new_database_and_its_wal_and_shm_are_its_owners_only(tmp_path: Path) -> None:
    db = tmp_path / "ns.db"
    conn = connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["ns.db", "ns.db-shm", "ns.db-wal"]
    assert {name: mode(tmp_path / name) for name in files} == dict.fromkeys(files, 0o600)
    conn.close()


@pytest.mark.usefixtures("umask_022")
def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    sqlite3.connect(db).close()
    db.chmod(0o640)  # the operator's choice (a backup group, say): left as it is
    connect(db).close()
    assert mode(db) == 0o640


@pytest.mark.usefixtures("umask_022")
def test_cli_files_and_backup_copies_are_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cli.db"
    assert main(["token", "create", "acme/alice/bot", "--db", str(db)]) == 0
    copy = tmp_path / "copy.db"
    assert main(["backup", str(copy), "--db", str(db)]) == 0
    capsys.readouterr()
    assert mode(db) == 0o600 and mode(copy) == 0o600


def test_run_warns_of_a_database_others_can_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "old.db"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="nightshift"):
        _readable_by_others(str(db))
        db.chmod(0o600)
        _readable_by_others(str(db))
        _readable_by_others(str(tmp_path / "absent.db"))
    assert [r.getMessage() for r in caplog.records] == [
        f"{db} can be read by other users of this machine (mode -rw-r--r--): it holds the"
        f" jobs' signing key and Slack reply links; chmod 600 {db}*"
    ]


def test_a_pasted_token_is_not_taken_for_a_scope_and_its_secret_is_not_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "t.db"
    assert main(["token", "create", "acme", "--db", str(db)]) == 0
    raw = token_of(capsys.readouterr().out)
    secret = raw.split("_", 3)[3]  # ns_tok_<id>_<secret>: the secret may hold "_"
    for pasted in (raw, f"acme/{raw}", f"acme/alice/{raw}/c1"):
        assert main(["token", "create", pasted, "--db", str(db)]) == 2
        said = capsys.readouterr()
        assert "this is a Nightshift token, not a scope" in said.err
        assert "nightshift token revoke" in said.err
        assert secret not in said.out + said.err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == 1
        kept = conn.execute("SELECT group_concat(target) FROM audit").fetchone()[0]
    assert secret not in kept


def test_revoke_finds_the_id_in_a_pasted_header_and_never_prints_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.db"
    made = []
    for _ in range(2):
        assert main(["token", "create", "acme/alice/bot", "--db", str(db)]) == 0
        made.append(token_of(capsys.readouterr().out))
    for raw, pasted in zip(made, (f"Bearer {made[0]}", f" {made[1]}\n"), strict=True):
        assert main(["token", "revoke", pasted, "--db", str(db)]) == 0
        out = capsys.readouterr().out
        assert out == f"revoked {raw.split('_')[1]}_{raw.split('_')[2]}\n"
    unknown = "Bearer ns_tok_000000000000_SECRETsecretSECRETsecret"
    assert main(["token", "revoke", unknown, "--db", str(db)]) == 1
    said = capsys.readouterr()
    assert "SECRET" not in said.out + said.err
    assert said.err == "no active token tok_000000000000 (see nightshift token list)\n"
    assert main(["token", "revoke", "ns_tok_XYZ_SECRETsecret", "--db", str(db)]) == 1
    said = capsys.readouterr()
    assert "SECRET" not in said.err and said.err.startswith("no active token given")


def test_a_copy_that_fails_deletes_only_a_file_it_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """review24 L7: a file another process put at the target between the check and the
    copy was deleted with the failed copy."""
    db = tmp_path / "b.db"
    assert main(["token", "create", "acme", "--db", str(db)]) == 0
    theirs = tmp_path / "theirs.db"
    theirs.write_text("another process's file")
    with pytest.raises(sqlite3.Error):
        _backup(str(db), theirs)  # as if it came after `backup` looked
    assert theirs.read_text() == "another process's file"
