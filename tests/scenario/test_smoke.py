async def test_reserve_settle_roundtrip(app_factory):
    app = await app_factory({"budgets": {"defaults": {"agent": {"day": "1.00"}}}})
    tok = await app.token("acme/alice")
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={"scope": "acme/alice/bot", "idempotency_key": "k", "max_cost_micros": 400_000},
    )
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    s = await app.request(
        "POST",
        f"/v1/reservations/{rid}/settle",
        token=tok,
        json={"actual_cost_micros": 300_000, "outcome": "success"},
    )
    assert s.json()["charged_micros"] == 300_000
    assert s.json()["released_micros"] == 100_000
