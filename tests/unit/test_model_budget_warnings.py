"""The warning marks of ``budgets.warn_at`` for a namespace's budget per model
(``budgets.models``): once per namespace, model, window and period, when a charge passes
one, and for a mark found already passed; kept in ``model_budget_warnings``, so that a
restart neither repeats nor loses one. Real SQLite with every migration applied."""

from __future__ import annotations

import itertools
import json
from typing import Any

from guards.budget_warnings import KEEP_SECONDS, prune_model_warnings
from guards.clock import ManualClock
from guards.config import Policy
from guards.ledger import Ledger, ReserveRequest, SettleRequest
from guards.store import Store
from guards.tokens import authenticate, create_token

DOLLAR = 1_000_000
OPUS = "claude-opus-4-1"
_keys = itertools.count()


def policy(
    models: dict[str, dict[str, str]] | None = None, warn_at: list[float] | None = None
) -> Policy:
    return Policy.model_validate(
        {
            "budgets": {
                "models": {OPUS: {"day": "10.00", "month": "100.00"}} if models is None else models,
                "warn_at": [0.8] if warn_at is None else warn_at,
            }
        }
    )


async def hold(store: Store, ledger: Ledger, micros: int, model: str | None, scope: str) -> str:
    _, raw = await store.write(lambda tx: create_token(tx, scope=scope.split("/")[0]))
    req = ReserveRequest(
        scope=scope, idempotency_key=f"k{next(_keys)}", max_cost_micros=micros, model=model
    )
    _, answer = await store.write(
        lambda tx: ledger.reserve(tx, token=authenticate(tx, raw), req=req)
    )
    return str(answer["reservation_id"])


async def settle(store: Store, ledger: Ledger, rid: str, micros: int, scope: str) -> None:
    _, raw = await store.write(lambda tx: create_token(tx, scope=scope.split("/")[0]))
    req = SettleRequest(outcome="success", actual_cost_micros=micros)
    await store.write(
        lambda tx: ledger.settle(tx, token=authenticate(tx, raw), res_id=rid, req=req)
    )


async def charge(
    store: Store,
    ledger: Ledger,
    micros: int,
    *,
    model: str | None = OPUS,
    scope: str = "acme/alice/bot",
) -> None:
    rid = await hold(store, ledger, micros, model, scope)
    await settle(store, ledger, rid, micros, scope)


async def warnings(store: Store) -> list[dict[str, Any]]:
    rows = await store.fetch(
        "SELECT payload FROM events WHERE kind = 'model_budget_threshold' ORDER BY id"
    )
    return [json.loads(row[0]) for row in rows]


async def given(store: Store) -> list[tuple[Any, ...]]:
    rows = await store.fetch(
        "SELECT namespace, model, window, period, fraction FROM model_budget_warnings"
        " ORDER BY namespace, window"
    )
    return [tuple(r) for r in rows]


async def test_a_charge_passing_a_mark_warns_once_naming_the_model_and_the_namespace(
    store: Store,
):
    ledger = Ledger(policy=policy())
    await charge(store, ledger, 7 * DOLLAR)  # $7 of $10: under the mark
    assert await warnings(store) == []
    await charge(store, ledger, 1_500_000, model="Claude-Opus-4-1-20250805")  # $8.50: past $8
    [warned] = await warnings(store)
    assert warned == {
        "at": warned["at"],
        "scope": "acme",
        "level": "model",
        "model": OPUS,
        "window": "day",
        "fraction": 0.8,
        "limit_micros": 10 * DOLLAR,
        "spent_micros": 8_500_000,
        "period": "2026-01-01",
    }
    await charge(store, ledger, 500_000)  # $9: the day's 80% warned already
    assert len(await warnings(store)) == 1
    assert await given(store) == [("acme", OPUS, "day", "2026-01-01", 0.8)]
    # another namespace, another model, a call naming none: each its own (or none)
    await charge(store, ledger, 9 * DOLLAR, model="gpt-4o")
    await charge(store, ledger, 9 * DOLLAR, model=None)
    assert len(await warnings(store)) == 1
    await charge(store, ledger, 9 * DOLLAR, scope="globex/x/bot")
    assert [(w["scope"], w["model"]) for w in await warnings(store)] == [
        ("acme", OPUS),
        ("globex", OPUS),
    ]


async def test_a_restart_neither_repeats_a_warning_nor_loses_a_mark_passed_unwarned(
    store: Store,
):
    await charge(store, Ledger(policy=policy()), 85 * DOLLAR // 10)  # warned: day 85%
    assert len(await warnings(store)) == 1
    restarted = Ledger(policy=policy())  # a new process on the same database
    await charge(store, restarted, 100_000)
    assert len(await warnings(store)) == 1
    # a fraction added (a reload): the mark already passed warns at the next charge, once
    added = Ledger(policy=policy(warn_at=[0.5, 0.8]))
    await charge(store, added, 100_000)
    assert [w["fraction"] for w in await warnings(store)] == [0.8, 0.5]
    await charge(store, Ledger(policy=policy(warn_at=[0.5, 0.8])), 100_000)
    assert [w["fraction"] for w in await warnings(store)] == [0.8, 0.5]


async def test_a_limit_lowered_below_the_spend_warns_at_the_next_charge(store: Store):
    await charge(store, Ledger(policy=policy()), 3 * DOLLAR)  # $3 of $10
    lowered = Ledger(policy=policy({OPUS: {"day": "3.50"}}))  # reloaded: $3.00 is 86%
    await charge(store, lowered, 100_000)
    assert [(w["window"], w["limit_micros"]) for w in await warnings(store)] == [("day", 3_500_000)]


async def test_a_late_charge_warns_of_a_past_day_only_when_it_crosses_a_mark(store: Store):
    clock = store.clock
    assert isinstance(clock, ManualClock)
    ledger = Ledger(policy=policy({OPUS: {"day": "10.00"}}))
    clock.set(1_767_222_000.0)  # 2025-12-31 23:00 UTC
    late = await hold(store, ledger, 1 * DOLLAR, OPUS, "acme/alice/bot")
    await charge(store, ledger, 8_500_000)  # the 31st: $8.50, warned
    clock.advance(3600 + 60)  # the next day
    await settle(store, ledger, late, 1 * DOLLAR, "acme/alice/bot")  # the 31st: no mark crossed
    assert [w["period"] for w in await warnings(store)] == ["2025-12-31"]


async def test_a_zero_dollar_budget_never_warns_and_an_unpriced_model_does(store: Store):
    # a hold taken under $1.00, settled after a reload set $0 (which refuses every new call)
    rid = await hold(store, Ledger(policy=policy({OPUS: {"day": "1.00"}})), DOLLAR, OPUS, "a/b/c")
    zero = Ledger(policy=policy({OPUS: {"day": "0"}, "brand-new-model": {"day": "1.00"}}))
    await settle(store, zero, rid, DOLLAR, "a/b/c")
    assert await warnings(store) == []
    # a model nobody prices, charged by amount: its budget warns as any
    await charge(store, zero, 900_000, model="brand-new-model")
    assert [(w["model"], w["spent_micros"]) for w in await warnings(store)] == [
        ("brand-new-model", 900_000)
    ]


async def test_model_warnings_of_periods_long_over_are_pruned_but_not_a_total_window_s(
    store: Store,
):
    old = store.clock.now() - KEEP_SECONDS - 1
    await store.write(
        lambda tx: tx.executemany(
            "INSERT INTO model_budget_warnings (namespace, model, window, period, fraction, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("acme", OPUS, "day", "2025-11-01", 0.8, old),
                ("acme", OPUS, "total", "all", 0.8, old),
                ("acme", OPUS, "month", "2025-12", 0.8, old + 120),
            ],
        )
    )
    before = store.clock.now() - KEEP_SECONDS
    assert await store.write(lambda tx: prune_model_warnings(tx, before=before, limit=100)) == 1
    assert [w[2] for w in await given(store)] == ["month", "total"]
