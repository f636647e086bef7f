"""``nightshift_call_seconds{model}`` (audit27 parity 5): how long calls took, reserve to
settle, per model, in /metrics; a replayed settle is not counted again, and a client
naming endless models cannot grow the scrape."""

from __future__ import annotations

from typing import Any

from tests.scenario.test_ledger_api import reserve
from tests.scenario.test_metrics_state import value

AGENT = "acme/alice/bot"
SETTLE = {"actual_cost_micros": 1000, "outcome": "success"}


async def call(app: Any, tok: str, key: str, seconds: float, **extra: Any) -> str:
    r = await reserve(app, tok, AGENT, key, 10_000, **extra)
    assert r.status_code == 201, r.text
    rid = str(r.json()["reservation_id"])
    app.clock.advance(seconds)
    s = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=SETTLE)
    assert s.status_code == 200, s.text
    return rid


async def test_settled_calls_are_timed_per_model_and_a_replay_is_not_counted(app_factory):
    app = await app_factory({})
    tok = await app.token("acme")
    rid = await call(app, tok, "a", 2.0, model="claude-haiku-4-5")
    await call(app, tok, "b", 40.0, model="claude-haiku-4-5")
    await call(app, tok, "c", 0.2)  # no model named
    again = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=SETTLE)
    assert again.status_code == 200, again.text  # the same settle again: its answer, replayed

    text = (await app.client.get("/metrics")).text
    haiku = 'model="claude-haiku-4-5"'
    assert value(text, f'nightshift_call_seconds_bucket{{le="0.5",{haiku}}}') == 0
    assert value(text, f'nightshift_call_seconds_bucket{{le="2.5",{haiku}}}') == 1
    assert value(text, f'nightshift_call_seconds_bucket{{le="60.0",{haiku}}}') == 2
    assert value(text, f'nightshift_call_seconds_bucket{{le="600.0",{haiku}}}') == 2
    assert value(text, f"nightshift_call_seconds_count{{{haiku}}}") == 2
    assert value(text, f"nightshift_call_seconds_sum{{{haiku}}}") == 42.0
    assert value(text, 'nightshift_call_seconds_count{model="unknown"}') == 1


async def test_distinct_models_are_capped(app_factory):
    app = await app_factory({})
    tok = await app.token("acme")
    for n in range(60):
        await call(app, tok, f"k{n}", 1.0, model=f"model-{n}")
    text = (await app.client.get("/metrics")).text
    models = {
        line.split('model="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("nightshift_call_seconds_count{")
    }
    assert len(models) == 51 and "other" in models, sorted(models)
    assert value(text, 'nightshift_call_seconds_count{model="model-0"}') == 1
    assert value(text, 'nightshift_call_seconds_count{model="other"}') == 10
