"""The ledger's in-memory caches stay bounded however many conversations come and go
(audit6_soak finding 1), and budgets stay exact when they start over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import guards.budgets
import guards.ledger
from guards.config import Policy
from guards.errors import BudgetExceeded
from guards.ledger import Ledger, ReserveRequest
from guards.store import Store, Tx
from guards.tokens import authenticate, create_token

POLICY = Policy.model_validate({"budgets": {"defaults": {"conversation": {"total": "0.000010"}}}})


async def test_conversations_that_come_and_go_do_not_grow_the_caches(store: Store, monkeypatch):
    monkeypatch.setattr(guards.ledger, "MAX_KNOWN_SCOPES", 50)
    monkeypatch.setattr(guards.budgets, "MAX_CACHED_LIMITS", 50)
    ledger = Ledger(policy=POLICY)
    _, raw = await store.write(lambda tx: create_token(tx, scope="acme"))

    def reserve(conv: int, key: str, micros: int) -> Callable[[Tx], Any]:
        req = ReserveRequest(
            scope=f"acme/u/bot/c{conv}", idempotency_key=key, max_cost_micros=micros
        )
        return lambda tx: ledger.reserve(tx, token=authenticate(tx, raw), req=req)

    for i in range(400):
        await store.write(reserve(i, f"k{i}", 10))  # each conversation's whole $0.00001
    assert len(ledger._known_scopes) <= 50 + 4
    assert len(ledger._limits) <= 50
    # conversation 0's limits left the cache long ago: it is still held to them
    with pytest.raises(BudgetExceeded):
        await store.write(reserve(0, "again", 1))
    rows = await store.fetch("SELECT COUNT(*) FROM scopes WHERE depth = 4")
    assert rows[0][0] == 400
