"""Whoever was paged for an alert still open may act on it, on call or not any more
(audit17 policy M7: taken out of the rotation by a reload, the person paged at 3 a.m.
was refused `/agent ack`)."""

from __future__ import annotations

from tests.scenario.test_slack_commands import ADMIN, spend

POLICY = {
    "admins": [ADMIN],
    "oncall": {"rotations": [{"name": "primary", "users": ["U0ONCALL"]}]},
    "breakers": {"spend_rate": {"max": "1.00", "per_seconds": "10m"}},
}


async def test_the_person_paged_can_acknowledge_once_no_longer_on_call(slack_http):
    slack = await slack_http(POLICY)
    covered = await slack.command("oncall override <@U0COVER> 1h")
    assert "<@U0COVER> is on call for primary" in covered["text"], covered["text"]
    await spend(slack.app, "acme/alice/rss-bot", micros=2_000_000, key="k1")  # trips: a P0
    await slack.app.ns.extras["alerts"].tick()
    [paged] = await slack.app.store.fetch("SELECT alert_id, target FROM escalations")
    assert paged["target"] == "U0COVER"
    await slack.command("oncall override clear")
    acked = await slack.command(f"ack {paged['alert_id']}", user="U0COVER")
    assert f"<@U0COVER> acknowledged #{paged['alert_id']}" in acked["text"], acked["text"]
    stranger = await slack.command(f"ack {paged['alert_id']}", user="U0STRANGER")
    assert stranger["text"].startswith("Only admins and the people on call"), stranger["text"]


async def test_disabled_breakers_say_so_wherever_their_states_show(slack_http):
    """audit17 policy M4: with `breakers.enabled: false`, `/agent breakers`, `/agent status`
    and GET /v1/breakers still said "open" while calls went through."""
    slack = await slack_http({**POLICY, "breakers": {"enabled": False}})
    await spend(slack.app, "acme/alice/rss-bot", micros=1_000, key="k1")
    warning = "⚠️ Breakers are disabled (`breakers.enabled: false` in the policy)"
    assert warning in (await slack.command("breakers"))["text"]
    assert warning in (await slack.command("status"))["text"]
    token = await slack.app.token("acme")
    listed = await slack.app.request("GET", "/v1/breakers", token=token)
    assert listed.json()["enabled"] is False
