"""The database's files under the real process (audit23 backup): the same file reached
through a hard link, its -wal deleted while it runs, a folder this user cannot write."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_process import PY, cli, env, start
from tests.fakes.ports import free_port

__all__ = ["env"]

BODY = {"scope": "acme/alice/bot", "max_cost_micros": 1000}


def test_a_second_run_on_a_hard_link_of_the_database_is_refused(env, tmp_path):
    """audit23 backup 4: a hard link (as a file bind-mounted into two containers) had its
    own `.lock` beside it: both runs started, and half the writes answered 201 were lost."""
    token = cli("token", "create", "acme", env=env).stdout.split()[-1]
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.link(env["NIGHTSHIFT_DB"], other / "ns.db")
    first = start(env)
    try:
        elsewhere = {
            **env,
            "NIGHTSHIFT_DB": str(other / "ns.db"),
            "NIGHTSHIFT_PORT": str(free_port()),
        }
        second = cli("run", env=elsewhere)
        assert second.returncode == 1, second.stderr
        assert f"another Nightshift (pid {first.pid}, through another path to this file" in (
            second.stderr
        )
        assert f"is running on {other / 'ns.db'}; stop it first" in second.stderr
        # the CLI opens the same file while it runs: the run's lock on it is no SQLite lock
        assert cli("token", "create", "acme/bob", env=env).returncode == 0
        assert "acme/bob" in cli("token", "list", env=env).stdout
        copy = tmp_path / "copy.db"
        backup = cli("backup", str(copy), env=env)
        assert backup.returncode == 0, backup.stderr
        verify = cli("ledger", "verify", env=env)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        with httpx.Client(
            base_url=f"http://127.0.0.1:{env['NIGHTSHIFT_PORT']}", timeout=10
        ) as http:
            made = http.post(
                "/v1/reservations",
                json={**BODY, "idempotency_key": "a"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert made.status_code == 201, made.text
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
    with sqlite3.connect(other / "ns.db") as db:  # one file: what the first run wrote
        assert db.execute("SELECT COUNT(*) FROM reservations").fetchone()[0] == 1


def test_the_wal_deleted_under_the_process_refuses_writes_and_a_clean_stop_keeps_them(env):
    """audit23 backup 2: after `rm ns.db-wal` every write was answered 2xx and /healthz
    said ok; a kill -9 then lost them all."""
    token = cli("token", "create", "acme", env=env).stdout.split()[-1]
    proc = start(env)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{env['NIGHTSHIFT_PORT']}", timeout=15
        ) as http:
            kept = http.post(
                "/v1/reservations", json={**BODY, "idempotency_key": "a"}, headers=auth
            )
            assert kept.status_code == 201, kept.text
            Path(f"{env['NIGHTSHIFT_DB']}-wal").unlink()
            health = http.get("/healthz")  # (a write looks every half second)
            assert health.status_code == 503 and "was deleted" in health.json()["message"]
            refused = http.post(
                "/v1/reservations", json={**BODY, "idempotency_key": "b"}, headers=auth
            )
            assert refused.status_code == 503, refused.text
            assert "-wal" in refused.json()["message"]
        # the CLI refuses too: its change would be undone when the run stops (recheck23
        # N2: a token revoked then worked again)
        for command in (("token", "create", "acme/x"), ("token", "list"), ("ledger", "verify")):
            said = cli(*command, env=env)
            assert said.returncode in (1, 2), (command, said.stdout)
            assert f"its -wal file is gone while Nightshift (pid {proc.pid}) serves it" in (
                said.stderr
            ), (command, said.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    with sqlite3.connect(env["NIGHTSHIFT_DB"]) as db:
        keys = [k for (k,) in db.execute("SELECT idempotency_key FROM reservations")]
    assert keys == ["a"]
    listed = cli("token", "list", env=env)
    assert listed.returncode == 0 and "acme/x" not in listed.stdout  # nothing was made
    verify = cli("ledger", "verify", env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _unprivileged() -> list[str]:
    """Run a command without the power to write where the permissions say no."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root, and no setpriv to drop the power to override permissions")
    caps = "-dac_override,-dac_read_search,-fowner"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_a_folder_this_user_cannot_write_is_said_not_migrate(env, tmp_path):
    """audit23 backup 3 and 5: a stopped database in a read-only folder (a snapshot
    mount) was "at schema version 0: run `nightshift migrate` first"; `backup` blamed
    the copy; `run` said only "attempt to write a readonly database"."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "ns.db"
    assert cli("token", "create", "acme", "--db", str(db), env=env).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    folder.chmod(0o555)
    hint = f"the folder {folder} is not writable by this user: SQLite keeps its -wal and -shm"
    try:
        for command in (
            ["ledger", "verify"],
            ["token", "list"],
            ["backup", str(out / "x.db")],
            ["run"],
        ):
            done = subprocess.run(
                [*_unprivileged(), PY, "-m", "bot", *command, "--db", str(db)],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode in (1, 2), done.stderr
            assert hint in done.stderr, (command, done.stderr)
            assert "migrate" not in done.stderr and "the copy" not in done.stderr
        assert not (out / "x.db").exists()
    finally:
        folder.chmod(0o755)


def test_a_database_the_run_makes_is_its_owners_only(env, tmp_path):
    """The run's own lock on the file made it first, 0644 under the usual umask, so
    create_private found it there: the signing key was readable by every user."""
    old = os.umask(0o022)
    try:
        proc = start(env)
    finally:
        os.umask(old)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    made = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ns.db"))
    assert made == ["ns.db", "ns.db.lock"]  # (a clean stop folds the -wal in and removes it)
    assert {name: oct(stat.S_IMODE((tmp_path / name).stat().st_mode)) for name in made} == {
        name: "0o600" for name in made
    }
    assert "can be read by other users" not in out
