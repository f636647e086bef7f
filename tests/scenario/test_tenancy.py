"""What one tenant can learn of another through what the API answers it (audit 15)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from guards.clock import ManualClock

POLICY = {"heartbeats": {"timeout_seconds": "60s", "misses_before_alert": 1}}


async def reserve(app, token: str, scope: str, key: str) -> str:
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=token,
        json={"scope": scope, "idempotency_key": key, "max_cost_micros": 1000},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["reservation_id"])


async def test_reservation_ids_do_not_count_other_tenants_calls(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    globex, acme = await app.token("globex"), await app.token("acme")
    first = await reserve(app, globex, "globex/gina/bot", "probe-1")
    await asyncio.gather(*(reserve(app, acme, "acme/alice/bot", f"k{i}") for i in range(300)))
    second = await reserve(app, globex, "globex/gina/bot", "probe-2")
    # the clock has not moved: the two ids differ only in their 40 random bits
    assert first[:-10] == second[:-10] and first != second
    assert len(first) == len("res_") + 11 + 10


async def test_a_conversation_token_cannot_speak_for_its_agents_heartbeat(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    conv = await app.token("acme/a/bot/c1")
    r = await app.request(
        "POST",
        "/v1/heartbeats",
        token=conv,
        json={"scope": "acme/a/bot/c1", "status": "stopped"},
    )
    assert r.status_code == 403, r.text
    assert "acme/a/bot is outside it (a heartbeat of acme/a/bot/c1 is its agent's)" in r.text
    assert await app.store.fetch("SELECT * FROM heartbeats") == []
    agent = await app.token("acme/a/bot")
    r = await app.request(
        "POST", "/v1/heartbeats", token=agent, json={"scope": "acme/a/bot/c1", "status": "ok"}
    )
    assert r.status_code == 204
    rows = await app.store.fetch("SELECT scope, status FROM heartbeats")
    assert [tuple(row) for row in rows] == [("acme/a/bot", "ok")]


async def test_the_probe_alert_does_not_name_the_other_tenants_scope(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    acme, prober = await app.token("acme"), await app.token("globex/gina")
    rid = await reserve(app, acme, "acme/zed/newbot/hidden-conv-77", "k")
    r = await app.request("POST", f"/v1/reservations/{rid}/release", token=prober)
    assert r.status_code == 403 and "acme" not in r.text
    for _ in range(50):  # the alert engine reads the event after the commit
        rows = await app.store.fetch(
            "SELECT scope, facts FROM alerts WHERE kind = 'scope_violation'"
        )
        if rows:
            break
        await asyncio.sleep(0.02)
    [(scope, facts)] = [tuple(row) for row in rows]
    assert scope == "globex/gina"
    assert json.loads(facts)["tried"] == f"reservation {rid}"
    assert "acme" not in facts


async def validate(
    app: Any, token: str, scope: str, stream: str, items: list[str]
) -> dict[str, Any]:
    r = await app.request(
        "POST",
        "/v1/validations",
        token=token,
        json={"scope": scope, "stream": stream, "items": items},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_the_name_of_a_matched_item_does_not_count_other_tenants_items(app_factory):
    """audit15 tenancy 1: `#<n>` was the fleet-wide row number of the item."""
    app = await app_factory(POLICY, clock=ManualClock())
    globex, acme = await app.token("globex"), await app.token("acme")
    text = "Quarterly numbers are out: revenue up, churn down"
    await validate(app, globex, "globex/g/bot", "first", [text])
    before = (await validate(app, globex, "globex/g/bot", "first", [text]))["rejected"][0]
    await validate(
        app, acme, "acme/a/bot", "posts", [f"acme news item {i} " * 3 for i in range(35)]
    )
    await validate(app, globex, "globex/g/bot", "second", [text])
    after = (await validate(app, globex, "globex/g/bot", "second", [text]))["rejected"][0]
    assert before["reason"] == after["reason"] == "duplicate"
    assert before["duplicate_of"] == after["duplicate_of"]  # a name of the text, no count
