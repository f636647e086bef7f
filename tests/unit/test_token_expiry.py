"""Tokens that expire (audit27 parity #13): ``token create --expires-in``, refused (401)
from the instant it passes, a remembered token included; ``token list`` says when."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from bot.cli import main
from guards import migrations
from guards.clock import ManualClock

pytestmark = pytest.mark.usefixtures("keep_logging")


def token_of(out: str) -> str:
    return out.split()[-1]


async def cli(*argv: str) -> int:
    """``nightshift ...`` as typed (its own event loop, in a thread beside the test's)."""
    return await asyncio.to_thread(main, list(argv))


async def listed(db: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert await cli("token", "list", "--db", str(db)) == 0
    return capsys.readouterr().out


async def test_a_token_expires_at_its_hour_even_remembered(app_factory, tmp_path, capsys):
    db = tmp_path / "ns.db"
    before = time.time()
    assert await cli("token", "create", "acme/alice", "--expires-in", "1h", "--db", str(db)) == 0
    out = capsys.readouterr().out
    raw = token_of(out)
    assert raw.startswith("ns_tok_") and out.rstrip().endswith(f"token: {raw}")
    with sqlite3.connect(db) as conn:
        (expires_at,) = conn.execute("SELECT expires_at FROM tokens").fetchone()
    assert before + 3600 <= expires_at <= time.time() + 3601  # a whole second
    shown = time.strftime("%Y-%m-%d %H:%M", time.gmtime(expires_at))
    assert f"it expires at {shown} UTC (in 1h): then it is refused (401);" in out
    assert shown in (await listed(db, capsys))

    app = await app_factory(db=db, clock=ManualClock(expires_at - 60))
    r = await app.request("GET", "/v1/budgets/acme/alice", token=raw)
    assert r.status_code == 200, r.text  # and the token is remembered now
    app.clock.advance(59.5)
    assert (await app.request("GET", "/v1/budgets/acme/alice", token=raw)).status_code == 200
    app.clock.advance(0.5)  # its instant: refused from there, remembered or not
    r = await app.request("GET", "/v1/budgets/acme/alice", token=raw)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    token_id = "_".join(raw.split("_")[1:3])
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(expires_at))
    assert r.json()["message"].startswith(f"token {token_id} expired at {when}")
    assert r.json()["message"].endswith("; create a new one: `nightshift token create acme/alice`")
    body = {"scope": "acme/alice/bot", "idempotency_key": "k", "max_cost_micros": 1}
    r = await app.request("POST", "/v1/reservations", token=raw, json=body)
    assert r.status_code == 401 and "expired at" in r.json()["message"]
    await app.ns.stop()

    rows = [line.split() for line in (await listed(db, capsys)).splitlines()]
    assert rows[0][:7] == ["id", "scope", "created", "(UTC)", "expires", "(UTC)", "state"]
    assert rows[1][0] == token_id and rows[1][4:7] == [*shown.split(), "active"]
    with sqlite3.connect(db) as conn:  # the hour passed (`token list` reads the wall clock)
        conn.execute("UPDATE tokens SET expires_at = ?", (time.time() - 60,))
    rows = [line.split() for line in (await listed(db, capsys)).splitlines()]
    assert rows[1][0] == token_id and rows[1][6] == "expired"


async def test_a_token_without_expiry_never_expires_and_the_audit_names_it(tmp_path, capsys):
    db = tmp_path / "ns.db"
    assert await cli("token", "create", "acme", "--label", "ci", "--db", str(db)) == 0
    out = capsys.readouterr().out
    assert "expires" not in out and out.splitlines()[-1].startswith("token: ns_tok_")
    assert await cli("token", "create", "acme/bob", "--expires-in", "2w", "--db", str(db)) == 0
    assert "(in 14d)" in capsys.readouterr().out
    rows = [line.split() for line in (await listed(db, capsys)).splitlines()[1:]]
    assert rows[0][1] == "acme" and rows[0][4:6] == ["never", "active"]
    assert rows[1][1] == "acme/bob" and rows[1][6] == "active"
    with sqlite3.connect(db) as conn:
        details = conn.execute(
            "SELECT target, detail FROM audit WHERE action = 'token.create' ORDER BY id"
        ).fetchall()
        (expires_at,) = conn.execute(
            "SELECT expires_at FROM tokens WHERE scope = 'acme/bob'"
        ).fetchone()
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(expires_at))
    assert details == [("acme", "never expires"), ("acme/bob", f"expires {when}Z")]


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("0", "'0' is out of range"),
        ("-1h", "'-1h' is not a duration (write 30s, 5m, 2h or 1d)"),
        ("soon", "'soon' is not a duration"),
        ("1.5s", "not a whole number of seconds"),
        ("20000d", "at most 3660 days"),
    ],
)
def test_a_bad_expiry_is_refused_with_exit_2_and_writes_nothing(tmp_path, capsys, given, said):
    db = tmp_path / "ns.db"
    assert main(["token", "create", "acme", "--db", str(db)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main(["token", "create", "acme/bob", f"--expires-in={given}", "--db", str(db)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --expires-in: " in err and said in err, err
    assert "leave it out for a token that never expires" in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == 1


async def test_tokens_of_an_older_database_never_expire(app_factory, tmp_path, capsys, monkeypatch):
    every = migrations._migrations()
    monkeypatch.setattr(migrations, "_migrations", lambda *_: [m for m in every if m[0] < 36])
    db = tmp_path / "old.db"
    assert await cli("token", "create", "acme/alice", "--db", str(db)) == 0
    raw = token_of(capsys.readouterr().out)
    monkeypatch.undo()
    assert await cli("migrate", "--db", str(db)) == 0
    capsys.readouterr()
    assert (await listed(db, capsys)).splitlines()[1].split()[4:6] == ["never", "active"]
    app = await app_factory(db=db, clock=ManualClock(time.time() + 10 * 365 * 86400))
    r = await app.request("GET", "/v1/budgets/acme/alice", token=raw)
    assert r.status_code == 200, r.text


async def test_a_call_reserved_before_the_expiry_is_settled_after_it(app_factory, tmp_path, capsys):
    """review30 H3: a call in flight when its token expired lost its charge (settle: 401)."""
    db = tmp_path / "ns.db"
    assert await cli("token", "create", "acme/alice", "--expires-in", "1h", "--db", str(db)) == 0
    raw = token_of(capsys.readouterr().out)
    assert await cli("token", "create", "acme", "--expires-in", "1h", "--db", str(db)) == 0
    parent = token_of(capsys.readouterr().out)
    with sqlite3.connect(db) as conn:
        expires_at = max(r[0] for r in conn.execute("SELECT expires_at FROM tokens"))
    app = await app_factory(db=db, clock=ManualClock(expires_at - 30))
    ids = []
    for key in ("k1", "k2", "k3"):
        body = {"scope": "acme/alice/bot", "idempotency_key": key, "max_cost_micros": 100_000}
        r = await app.request("POST", "/v1/reservations", token=raw, json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["reservation_id"])
    app.clock.advance(60)  # the calls took a minute: the token expired meanwhile
    settle = {"actual_cost_micros": 42_000, "outcome": "success"}
    r = await app.request("POST", f"/v1/reservations/{ids[0]}/settle", token=raw, json=settle)
    assert r.status_code == 200, r.text
    assert r.json()["charged_micros"] == 42_000
    r = await app.request("POST", f"/v1/reservations/{ids[1]}/release", token=raw)
    assert r.status_code == 200, r.text
    # not a way in: another token's call, and every new call, are refused
    r = await app.request("POST", f"/v1/reservations/{ids[2]}/settle", token=parent, json=settle)
    assert r.status_code == 401 and "expired at" in r.json()["message"]
    body = {"scope": "acme/alice/bot", "idempotency_key": "k4", "max_cost_micros": 100_000}
    r = await app.request("POST", "/v1/reservations", token=raw, json=body)
    assert r.status_code == 401 and "expired at" in r.json()["message"]
    r = await app.request("GET", "/v1/budgets/acme/alice", token=raw)
    assert r.status_code == 401
    spent = await app.store.fetch("SELECT SUM(spent_micros) FROM usage_daily WHERE scope = 'acme'")
    assert spent[0][0] == 42_000
    # review31 M1: not forever, and an expired token learns nothing of which ids exist
    app.clock.advance(30 * 86_400)
    r = await app.request("POST", f"/v1/reservations/{ids[2]}/settle", token=raw, json=settle)
    assert r.status_code == 401 and "expired at" in r.json()["message"]
    for unknown in ("res_0000000000000000000000", "nonsense"):
        r = await app.request("POST", f"/v1/reservations/{unknown}/settle", token=raw, json=settle)
        assert r.status_code == 401, (unknown, r.text)
    spent = await app.store.fetch("SELECT SUM(spent_micros) FROM usage_daily WHERE scope = 'acme'")
    assert spent[0][0] == 42_000
    await app.ns.stop()


@pytest.mark.parametrize(("given", "seconds"), [("90min", 5400), ("2hrs", 7200), ("3days", 259200)])
def test_an_expiry_is_read_as_slack_commands_read_durations(tmp_path, capsys, given, seconds):
    """recheck30 L6: `--expires-in 90min` was refused; `/agent silence x 90min` is not."""
    db = tmp_path / "ns.db"
    before = time.time()
    assert main(["token", "create", "acme", "--expires-in", given, "--db", str(db)]) == 0
    with sqlite3.connect(db) as conn:
        (expires_at,) = conn.execute("SELECT expires_at FROM tokens").fetchone()
    assert before + seconds <= expires_at <= time.time() + seconds + 1
