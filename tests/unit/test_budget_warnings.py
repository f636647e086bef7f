"""Budget warnings warn once per mark, window and period, also for a mark found already
passed (audit17 policy M5: a limit lowered below the spend, or a fraction added, never
warned, and the first word was `budget_exhausted`)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import guards.migrations
from guards.budget_warnings import KEEP_SECONDS, prune_warnings
from guards.clock import ManualClock
from guards.config import Policy
from guards.ledger import Ledger, ReserveRequest, SettleRequest
from guards.migrations import apply_migrations, connect
from guards.store import Store
from guards.tokens import authenticate, create_token

DOLLAR = 1_000_000
_keys = itertools.count()


def policy(day: str = "200.00", warn_at: list[float] | None = None) -> Policy:
    return Policy.model_validate(
        {
            "budgets": {
                "scopes": {"acme": {"day": day}},
                "warn_at": [0.8] if warn_at is None else warn_at,
            }
        }
    )


async def charge(store: Store, ledger: Ledger, micros: int, *, ttl: int | None = None) -> str:
    """Reserve and settle ``micros`` under acme (one call), returning the reservation id."""
    rid = await hold(store, ledger, micros, ttl=ttl)
    await settle(store, ledger, rid, micros)
    return rid


async def hold(store: Store, ledger: Ledger, micros: int, *, ttl: int | None = None) -> str:
    _, raw = await store.write(lambda tx: create_token(tx, scope="acme"))
    req = ReserveRequest(
        scope="acme/alice/bot/c1",
        idempotency_key=f"k{next(_keys)}",
        max_cost_micros=micros,
        ttl_seconds=ttl,
    )
    _, answer = await store.write(
        lambda tx: ledger.reserve(tx, token=authenticate(tx, raw), req=req)
    )
    return str(answer["reservation_id"])


async def settle(store: Store, ledger: Ledger, rid: str, micros: int) -> None:
    _, raw = await store.write(lambda tx: create_token(tx, scope="acme"))
    req = SettleRequest(outcome="success", actual_cost_micros=micros)
    await store.write(
        lambda tx: ledger.settle(tx, token=authenticate(tx, raw), res_id=rid, req=req)
    )


async def warnings(store: Store) -> list[dict[str, Any]]:
    """The budget_threshold events of acme, oldest first."""
    rows = await store.fetch(
        "SELECT payload FROM events WHERE kind = 'budget_threshold' AND scope = 'acme' ORDER BY id"
    )
    return [json.loads(row[0]) for row in rows]


async def test_a_limit_lowered_below_the_spend_warns_at_the_next_charge_once(store: Store):
    ledger = Ledger(policy=policy())
    await charge(store, ledger, 8_500_000)  # $8.50 of $200: no mark passed
    assert await warnings(store) == []
    await store.write(
        lambda tx: ledger.set_limit(
            tx, scope="acme", window="day", limit_micros=10 * DOLLAR, actor="U0ADMIN"
        )
    )
    await charge(store, ledger, 100_000)  # $8.60 of $10: 86%, past the 80% mark
    [warned] = await warnings(store)
    assert (warned["window"], warned["fraction"]) == ("day", 0.8)
    assert (warned["limit_micros"], warned["spent_micros"]) == (10 * DOLLAR, 8_600_000)
    await charge(store, ledger, 100_000)
    assert len(await warnings(store)) == 1  # once a period


async def test_a_fraction_added_warns_once_and_a_restart_does_not_warn_again(store: Store):
    await charge(store, Ledger(policy=policy()), 100 * DOLLAR)  # 50%: below 80%
    assert await warnings(store) == []
    added = Ledger(policy=policy(warn_at=[0.01, 0.8]))  # the process started on a new file
    await charge(store, added, 1)
    assert [w["fraction"] for w in await warnings(store)] == [0.01]
    restarted = Ledger(policy=policy(warn_at=[0.01, 0.8]))
    await charge(store, restarted, 1)
    assert [w["fraction"] for w in await warnings(store)] == [0.01]


async def test_a_mark_passed_again_after_the_limit_was_raised_warns_again(store: Store):
    ledger = Ledger(policy=policy(day="10.00"))
    await charge(store, ledger, 8_500_000)
    assert len(await warnings(store)) == 1
    await store.write(
        lambda tx: ledger.set_limit(
            tx, scope="acme", window="day", limit_micros=20 * DOLLAR, actor="U0ADMIN"
        )
    )
    await charge(store, ledger, 8 * DOLLAR)  # $16.50 of $20: carried past $16 now
    assert [w["limit_micros"] for w in await warnings(store)] == [10 * DOLLAR, 20 * DOLLAR]


async def test_a_late_charge_warns_of_a_past_day_only_when_it_crosses_a_mark(store: Store):
    clock = store.clock
    assert isinstance(clock, ManualClock)
    ledger = Ledger(policy=policy())
    clock.set(1_767_222_000.0)  # 2025-12-31 23:00 UTC
    late = await hold(store, ledger, 2 * DOLLAR, ttl=7200)
    await charge(store, ledger, 8_500_000)
    await store.write(
        lambda tx: ledger.set_limit(
            tx, scope="acme", window="day", limit_micros=10 * DOLLAR, actor="U0ADMIN"
        )
    )
    clock.advance(3600 + 60)  # the next day (UTC)
    # charged to the 31st, whose $10.50 passed $8 before it: that day is over, no warning
    await settle(store, ledger, late, 2 * DOLLAR)
    assert await warnings(store) == []
    await charge(store, ledger, 8 * DOLLAR)  # today's $8 of $10: carried past the mark
    assert [w["period"] for w in await warnings(store)] == ["2026-01-01"]


async def test_warnings_of_periods_long_over_are_pruned_but_not_a_total_window_s(store: Store):
    clock = store.clock
    await store.write(
        lambda tx: tx.executemany(
            "INSERT INTO budget_warnings (scope, window, period, fraction, at)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                ("acme", "day", "2025-11-01", 0.8, clock.now() - KEEP_SECONDS - 1),
                ("acme", "total", "all", 0.8, clock.now() - KEEP_SECONDS - 1),
                ("acme", "month", "2025-12", 0.8, clock.now() - KEEP_SECONDS + 60),
            ],
        )
    )
    before = clock.now() - KEEP_SECONDS
    assert await store.write(lambda tx: prune_warnings(tx, before=before, limit=100)) == 1
    rows = await store.fetch("SELECT window FROM budget_warnings ORDER BY window")
    assert [r[0] for r in rows] == ["month", "total"]


def test_the_migration_keeps_the_warnings_older_releases_gave(tmp_path: Path, monkeypatch):
    path = tmp_path / "old.db"
    every = guards.migrations._migrations()
    monkeypatch.setattr(guards.migrations, "_migrations", lambda: [m for m in every if m[0] < 24])
    conn = connect(path)
    apply_migrations(conn, now=0.0)
    payload = {
        "scope": "acme",
        "level": "namespace",
        "window": "day",
        "fraction": 0.8,
        "limit_micros": 10,
        "spent_micros": 9,
        "period": "2026-01-01",
        "at": 5.0,
    }
    conn.execute(
        "INSERT INTO events (at, kind, scope, payload) VALUES (5.0, 'budget_threshold', 'acme', ?)",
        (json.dumps(payload),),
    )
    monkeypatch.setattr(guards.migrations, "_migrations", lambda: every)
    assert apply_migrations(conn, now=1.0)[0] == "0024_budget_warnings"
    rows = conn.execute("SELECT scope, window, period, fraction FROM budget_warnings").fetchall()
    conn.close()
    assert rows == [("acme", "day", "2026-01-01", 0.8)]


def test_the_migration_also_keeps_warnings_whose_events_were_pruned(tmp_path: Path, monkeypatch):
    """review18 L3: events are kept 30 days; a total window's mark passed before that had
    no row after 0024, and warned again at the first charge after the upgrade."""
    path = tmp_path / "old.db"
    every = guards.migrations._migrations()
    monkeypatch.setattr(guards.migrations, "_migrations", lambda: [m for m in every if m[0] < 24])
    conn = connect(path)
    apply_migrations(conn, now=0.0)
    facts = {"level": "namespace", "window": "total", "fraction": 0.8, "period": "all"}
    conn.execute(
        "INSERT INTO alerts (fingerprint, kind, scope, tier, first_at, last_at, facts)"
        " VALUES ('budget_threshold:acme', 'budget_threshold', 'acme', 'P2', 1.0, 7.0, ?)",
        (json.dumps(facts),),
    )
    monkeypatch.setattr(guards.migrations, "_migrations", lambda: every)
    assert "0026_budget_warnings_from_alerts" in apply_migrations(conn, now=1.0)
    rows = conn.execute(
        "SELECT scope, window, period, fraction, at FROM budget_warnings"
    ).fetchall()
    conn.close()
    assert rows == [("acme", "total", "all", 0.8, 7.0)]
