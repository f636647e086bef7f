"""Deadlines stored on the wall clock keep their length in real time when the clock steps
(audit17 time H1 and H3): a step back kept a 60 s hold for an hour, a 5-minute escalation
step waited 65 minutes and a 15-minute cool-down said 1h15m; a step forward ended every
hold in flight (each settle then flagged late, an overrun and a P1)."""

from __future__ import annotations

from typing import Any

from bot.alerts import paging
from guards.clock import ManualClock

AGENT = "acme/alice/bot"
POLICY: dict[str, Any] = {
    "channels": {"alerts": "C0ALERTS"},
    "budgets": {"defaults": {"agent": {"day": "100.00"}}},
    "breakers": {"failures": {"consecutive": 2}, "cooldown_seconds": "15m"},
}


class Clocks:
    """The test's wall clock (the app's) and a monotonic one, watched by the app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.mono = 1000.0
        app.ns.clock_watch.read_from(app.clock.now, lambda: self.mono)

    def live(self, seconds: float) -> None:
        self.app.clock.advance(seconds)
        self.mono += seconds

    def step(self, seconds: float) -> None:
        """The wall clock alone moves (NTP, a VM resumed, `date -s`)."""
        self.app.clock.advance(seconds)


async def reserve(app: Any, key: str, **body: Any) -> Any:
    token = await app.token("acme")
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=token,
        json={"scope": f"{AGENT}/c1", "idempotency_key": key, "max_cost_micros": 500_000, **body},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def settle(app: Any, res_id: str, micros: int, outcome: str = "success") -> Any:
    token = await app.token("acme")
    return await app.request(
        "POST",
        f"/v1/reservations/{res_id}/settle",
        token=token,
        json={"actual_cost_micros": micros, "outcome": outcome},
    )


async def test_a_step_forward_does_not_end_the_holds_in_flight(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    clocks = Clocks(app)
    held = await reserve(app, "k1", ttl_seconds=600)
    clocks.step(3600)  # NTP puts a slow clock right by an hour
    clocks.live(4)
    r = await settle(app, held["reservation_id"], 400_000)
    assert r.status_code == 200
    assert r.json()["overrun_micros"] == 0 and not r.json().get("late")
    assert await app.store.fetch("SELECT kind FROM events WHERE kind = 'overrun'") == []
    # and its TTL still runs out in real time: 600 s after it was taken, not 600 + 3600
    late = await reserve(app, "k2", ttl_seconds=60)
    clocks.live(61)
    r = await settle(app, late["reservation_id"], 100_000)
    assert r.json()["overrun_micros"] == 100_000  # charged in full, flagged: it had expired


async def test_a_step_back_keeps_a_hold_to_its_ttl(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    clocks = Clocks(app)
    held = await reserve(app, "k1", ttl_seconds=60)
    clocks.step(-3600)
    clocks.live(61)
    await reserve(app, "k2")  # any write: the holds past their TTL expire as it begins
    rows = await app.store.fetch(
        "SELECT state FROM reservations WHERE id = ?", (held["reservation_id"],)
    )
    assert rows[0][0] == "expired"


async def test_a_step_back_keeps_a_cool_down_to_its_length(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    clocks = Clocks(app)
    for key in ("f1", "f2"):
        held = await reserve(app, key)
        assert (await settle(app, held["reservation_id"], 0, "failure")).status_code == 200
    token = await app.token("acme")
    body = {"scope": f"{AGENT}/c1", "idempotency_key": "k3", "max_cost_micros": 1000}
    refused = await app.request("POST", "/v1/reservations", token=token, json=body)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "900"
    clocks.step(-3600)
    clocks.live(60)
    body["idempotency_key"] = "k4"
    refused = await app.request("POST", "/v1/reservations", token=token, json=body)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "840"


async def test_open_alerts_next_steps_and_silences_move_with_the_clock(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    now = app.clock.now()

    def seed(tx: Any) -> None:
        tx.executemany(
            "INSERT INTO alerts (id, fingerprint, kind, scope, tier, first_at, last_at, facts,"
            " esc_step, esc_at, resolved_at) VALUES (?, ?, 'heartbeat_missed', ?, 'P0', ?, ?,"
            " '{}', 1, ?, ?)",
            [
                (1, "a", AGENT, now, now, now + 300, None),
                (2, "b", AGENT, now, now, now + 300, now),  # resolved: its plan is moot
            ],
        )
        tx.execute(
            "INSERT INTO silences (fingerprint, created_by, created_at, expires_at)"
            " VALUES ('a', 'U1', ?, ?)",
            (now, now + 3600),
        )
        paging.clock_stepped(tx, -3600)

    await app.store.write(seed)
    rows = await app.store.fetch("SELECT id, esc_at FROM alerts ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, now + 300 - 3600), (2, now + 300)]
    rows = await app.store.fetch("SELECT expires_at FROM silences")
    assert rows[0][0] == now


async def test_an_agent_that_stops_after_a_step_back_is_missed_on_time(app_factory):
    policy = {**POLICY, "heartbeats": {"timeout_seconds": "60s", "misses_before_alert": 2}}
    app = await app_factory(policy, clock=ManualClock())
    clocks = Clocks(app)
    alerts = app.ns.extras["alerts"]
    token = await app.token("acme")
    beat = await app.request("POST", "/v1/heartbeats", token=token, json={"scope": AGENT})
    assert beat.status_code == 204
    clocks.step(-3600)  # then the agent stops beating
    clocks.live(119)
    await alerts.tick()
    assert await app.store.fetch("SELECT * FROM alerts") == []
    clocks.live(2)
    await alerts.tick()  # 121 s of real silence: missed twice, not an hour later
    [row] = await app.store.fetch("SELECT kind, scope FROM alerts")
    assert tuple(row) == ("heartbeat_missed", AGENT)


async def test_a_silence_made_before_a_step_back_still_holds_after_it(app_factory):
    """review18 M1: its end moved with the clock but not its start, and a silence is held
    only from when it was made: for the length of the step it held nothing."""
    app = await app_factory(POLICY, clock=ManualClock())
    clocks = Clocks(app)
    engine = app.ns.extras["alerts"].engine
    now = app.clock.now()

    def silence(tx: Any) -> None:
        tx.execute(
            "INSERT INTO silences (scope, created_by, created_at, expires_at)"
            " VALUES (?, 'U1', ?, ?)",
            (AGENT, now, now + 3600),
        )

    await app.store.write(silence)

    async def held() -> Any:
        return await app.store.write(
            lambda tx: engine.silence_for(
                tx, kind="heartbeat_missed", scope=AGENT, now=tx.clock.now()
            )
        )

    clocks.live(60)
    clocks.step(-3600)
    assert await held() is not None  # the first write after the step moved it, whole
    clocks.live(3600 - 60 - 1)
    assert await held() is not None  # still, a second before its hour is over
    clocks.live(2)
    assert await held() is None


async def hanging_events(app: Any) -> list[Any]:
    return list(await app.store.fetch("SELECT scope FROM events WHERE kind = 'hold_hanging'"))


async def test_a_step_forward_does_not_make_the_holds_in_flight_hang(app_factory):
    # alerts.hanging_after (5m): a call taken 4 s ago is not hanging, whatever NTP did
    app = await app_factory(POLICY, clock=ManualClock())
    clocks = Clocks(app)
    held = await reserve(app, "k1", ttl_seconds=600)
    clocks.step(3600)
    clocks.live(4)
    sweeper = app.ns.extras["alerts"]
    assert await sweeper.hanging() == 0
    assert await hanging_events(app) == []
    token = await app.token("acme")
    r = await app.request("GET", f"/v1/budgets/{AGENT}", token=token)  # any request
    assert r.status_code == 200
    clocks.live(5 * 60)  # in real time it hangs now: told once
    assert await sweeper.hanging() == 1
    assert await sweeper.hanging() == 0
    rows = await app.store.fetch(
        "SELECT created_at, expires_at FROM reservations WHERE id = ?", (held["reservation_id"],)
    )
    assert rows[0][1] - rows[0][0] == 600  # its TTL, in the clock's new frame


async def test_a_hold_taken_after_a_step_back_still_hangs_on_time(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())
    clocks = Clocks(app)
    sweeper = app.ns.extras["alerts"]
    clocks.live(10 * 60)
    assert await sweeper.hanging() == 0  # the sweep has told up to 5 minutes ago
    clocks.step(-3600)
    await reserve(app, "k1", ttl_seconds=600)
    clocks.live(5 * 60 + 1)
    assert await sweeper.hanging() == 1  # not an hour late, nor never
