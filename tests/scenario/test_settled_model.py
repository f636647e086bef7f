"""The books name the model a settle reports (audit16 money M2).

A call reserved for claude-haiku-4-5 but settled with Opus's usage was charged at Opus's
price and booked as Haiku: the digest's spend by model and routing's savings were wrong,
and Opus's breaker never heard of the call.
"""

from __future__ import annotations

from tests.scenario.test_ledger_api import POLICY


async def settle_with(app, tok, key, reserved, used):
    body = {
        "scope": "acme/alice/bot",
        "idempotency_key": key,
        "estimate": {"model": reserved, "input_tokens": 10, "max_output_tokens": 10},
    }
    rid = (await app.request("POST", "/v1/reservations", token=tok, json=body)).json()[
        "reservation_id"
    ]
    usage = {"model": used, "input_tokens": 10_000, "output_tokens": 2_000}
    r = await app.request(
        "POST",
        f"/v1/reservations/{rid}/settle",
        token=tok,
        json={"usage": usage, "outcome": "failure"},
    )
    assert r.status_code == 200, r.text
    rows = await app.store.fetch(
        "SELECT model, charged_micros FROM reservations WHERE id = ?", (rid,)
    )
    return rows[0]["model"], rows[0]["charged_micros"]


async def test_a_settle_with_another_model_is_booked_under_the_model_it_names(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    model, charged = await settle_with(app, tok, "k1", "claude-haiku-4-5", "claude-opus-4-1")
    # Opus: $15 per million input, $75 per million output
    assert (model, charged) == ("claude-opus-4-1", 300_000)
    daily = await app.store.fetch(
        "SELECT model, charged_micros FROM digest_model_daily WHERE namespace = 'acme'"
    )
    assert [(r["model"], r["charged_micros"]) for r in daily] == [("claude-opus-4-1", 300_000)]
    r = await app.request("GET", "/v1/breakers?all=1", token=tok)
    failures = {b["scope"]: b["failures"]["recent"] for b in r.json()["breakers"]}
    assert failures.get("model:claude-opus-4-1") == 1, failures  # the model that failed
    assert failures.get("model:claude-haiku-4-5", 0) == 0


async def test_a_settle_naming_the_reserved_model_dated_keeps_the_reserved_name(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    used = "Claude-Haiku-4-5-20251001"  # as an SDK reports it
    model, _ = await settle_with(app, tok, "k1", "claude-haiku-4-5", used)
    assert model == "claude-haiku-4-5"


async def test_a_routed_call_made_with_another_model_teaches_routing_nothing(app_factory):
    """review16 L8: the route's tier was credited (or blamed) for a call made with another
    model than the one it routed to."""
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    outcomes = {}
    for used in ("routed", "claude-opus-4-1"):
        r = await app.request(
            "POST",
            "/v1/route",
            token=tok,
            json={"scope": "acme/alice/bot", "task": "Summarize these 12 headlines"},
        )
        decision = r.json()
        model = decision["model"] if used == "routed" else used
        body = {
            "scope": "acme/alice/bot",
            "idempotency_key": f"k-{used}",
            "max_cost_micros": 500_000,
            "route_id": decision["route_id"],
        }
        rid = (await app.request("POST", "/v1/reservations", token=tok, json=body)).json()[
            "reservation_id"
        ]
        usage = {"model": model, "input_tokens": 100, "output_tokens": 10}
        s = await app.request(
            "POST",
            f"/v1/reservations/{rid}/settle",
            token=tok,
            json={"usage": usage, "outcome": "failure"},
        )
        assert s.status_code == 200, s.text
        rows = await app.store.fetch(
            "SELECT outcome FROM routing_decisions WHERE id = ?", (decision["route_id"],)
        )
        outcomes[used] = rows[0]["outcome"]
    assert outcomes == {"routed": "failure", "claude-opus-4-1": None}


async def test_an_overrun_alert_sums_its_firings(app_factory):
    """audit16 money L3: 'fired 9300x' showed one call's overrun; $1 of overruns and $9
    trillion read the same."""
    import json

    from bot.alerts.render_summary import _overrun

    app = await app_factory({**POLICY, "breakers": {"spend_rate": None}})
    tok = await app.token("acme")
    for i, charged in enumerate((3_000, 5_000)):
        body = {"scope": "acme/alice/bot", "idempotency_key": f"o{i}", "max_cost_micros": 1_000}
        rid = (await app.request("POST", "/v1/reservations", token=tok, json=body)).json()[
            "reservation_id"
        ]
        s = await app.request(
            "POST",
            f"/v1/reservations/{rid}/settle",
            token=tok,
            json={"actual_cost_micros": charged},
        )
        assert s.json()["overrun_micros"] == charged - 1_000
    await app.ns.extras["alerts"].tick()
    rows = await app.store.fetch("SELECT count, facts FROM alerts WHERE kind = 'overrun'")
    assert len(rows) == 1 and rows[0]["count"] == 2
    facts = json.loads(rows[0]["facts"])
    assert facts["overrun_total_micros"] == 2_000 + 4_000
    assert _overrun(facts).endswith(": $0.004 over; $0.006 over in all since it opened")
