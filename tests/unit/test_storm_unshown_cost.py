"""What a deleted storm summary never showed is found in O(alerts + outbox rows), not
O(alerts x rows) (review28 R7 M1: 1,000 unshown alerts x 10,000 later outbox rows held the
single writer 12.6 s). Counted in SQLite VM steps (a progress handler), not seconds."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any, cast

from bot.alerts.storm_alone import unshown_alerts
from guards.store import Tx

REF = "fold:posts:C1:1"


class _Reads:
    """The two reads unshown_alerts makes, on a plain connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.db.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self.db.execute(sql, params).fetchall()


def _steps(migrated: Path, tmp_path: Path, *, alerts: int, later: int) -> int:
    """VM steps (in hundreds) to find ``alerts`` unshown alerts of a summary with
    ``later`` outbox rows after their join edit, none of them a delivered draw."""
    path = tmp_path / f"unshown-{alerts}.db"
    shutil.copy(migrated, path)
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO outbox (id, ref, method, channel, args, state, created_at, result_ts)"
        " VALUES (1, ?, 'chat.postMessage', 'C1', '{}', 'delivered', 0, '111.1')",
        (REF,),
    )
    edit = f'{{"channel": "$ref:{REF}.channel", "ts": "$ref:{REF}.ts", "text": "t"}}'
    db.execute(  # the join edit, never delivered
        "INSERT INTO outbox (id, method, channel, args, state, created_at)"
        " VALUES (2, 'chat.update', 'C1', ?, 'pending', 0)",
        (edit,),
    )
    db.executemany(
        "INSERT INTO outbox (id, ref, method, channel, args, state, created_at)"
        " VALUES (?, ?, 'chat.postMessage', 'C2', '{\"text\": \"t\"}', 'delivered', 0)",
        [(3 + i, f"alert:{100000 + i}:post") for i in range(later)],
    )
    db.executemany(
        "INSERT INTO alerts (id, fingerprint, kind, scope, tier, first_at, last_at, facts,"
        " folded_into, folded_edit) VALUES (?, ?, 'k', 's', 'P1', 0, 0, '{}', ?, 2)",
        [(a + 1, f"fp{a}", REF) for a in range(alerts)],
    )
    db.commit()
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    db.set_progress_handler(count, 100)
    found = unshown_alerts(cast(Tx, _Reads(db)), REF)
    db.close()
    assert found == list(range(1, alerts + 1))
    return steps


def test_finding_the_unshown_alerts_does_not_scan_the_outbox_per_alert(
    migrated: Path, tmp_path: Path
) -> None:
    few = _steps(migrated, tmp_path, alerts=20, later=2000)
    many = _steps(migrated, tmp_path, alerts=400, later=2000)
    # 20x the alerts: about as many steps (the outbox is read once), not 20x
    assert many < 2 * few, (few, many)
