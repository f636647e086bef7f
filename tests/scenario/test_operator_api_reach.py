"""What an operator token may not reach (review23): the alert about its own misuse, a
person's silence, and how Slack names what a token did.

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock, as in
test_operator_api.
"""

from __future__ import annotations

from guards.clock import ManualClock
from tests.scenario.test_alerts import ADMIN, ALERTS, BOT, POLICY, alerts_of, dms, used
from tests.scenario.test_operator_api import BOB, OTHER, error, operator_token, trip


async def test_a_token_cannot_hush_the_alert_about_its_own_probing(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await used(app, BOT)
    await used(app, BOB)
    _, op = await operator_token(app, "acme/alice")
    for target in (
        "scope_violation",
        "scope_violation:acme/alice",
        "scope",
        f"SCOPE_VIOLATION:{BOT}",
    ):
        body = {"target": target, "duration": "366d"}
        refused = error(
            await app.request("POST", "/v1/silences", token=op, json=body), 403, "slack_only"
        )
        assert "Silence it in Slack: `/agent silence scope" in refused["message"], target
    assert await app.store.fetch("SELECT id FROM silences") == []
    # its whole scope it may silence: that silence holds every alert there but this one
    r = await app.request(
        "POST", "/v1/silences", token=op, json={"target": "acme/alice", "duration": "366d"}
    )
    assert r.status_code == 201, r.text

    error(await app.request("GET", "/v1/alerts?scope=acme/bob", token=op), 403, "forbidden")
    await alerts_of(slack).process()
    [row] = await app.store.fetch(
        "SELECT id, scope, silence_id FROM alerts WHERE kind = 'scope_violation'"
    )
    alert_id = row[0]
    assert (row[1], row[2]) == ("acme/alice", None)
    posted = lambda: [c.args.get("text", "") for c in fake.posts(ALERTS)]  # noqa: E731
    await fake.wait_for(lambda: any("Token used outside its scope" in t for t in posted()))
    listed = (await app.request("GET", "/v1/alerts", token=op)).json()["alerts"]
    assert [(a["kind"], a["state"]) for a in listed] == [("scope_violation", "open")]

    ack = error(
        await app.request("POST", f"/v1/alerts/{alert_id}/ack", token=op), 403, "slack_only"
    )
    assert f"`/agent ack {alert_id}`" in ack["message"]
    for target in (str(alert_id), f"#{alert_id}"):
        body = {"target": target, "duration": "1h"}
        error(await app.request("POST", "/v1/silences", token=op, json=body), 403, "slack_only")
    [still] = await app.store.fetch(
        "SELECT acked_at, silence_id FROM alerts WHERE id = ?", (alert_id,)
    )
    assert tuple(still) == (None, None)

    app.clock.advance(31 * 60)  # a P1: its chain starts after alerts.p1_escalate_after
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: bool(dms(fake, "U04")))  # a P1 enters at step 2: paged

    # its story does not show the token's silence of the scope as holding it
    story = await slack.command(f"alert {alert_id}", user=ADMIN)
    assert "token:" not in str(story), story

    # a person may silence it (in Slack), and that silence holds it
    made = await slack.command("silence scope_violation:acme/alice 1h", user=ADMIN)
    assert made["response_type"] == "in_channel", made
    [held] = await app.store.fetch("SELECT silence_id FROM alerts WHERE id = ?", (alert_id,))
    assert held[0] is not None


async def test_a_retry_is_the_token_s_own_silence_and_a_person_s_is_left_alone(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app, OTHER)
    night = await slack.command(f"silence {OTHER} 8h -- provider maintenance all night")
    assert night["response_type"] == "in_channel", night
    tok_id, op = await operator_token(app, "acme/alice")

    deploy = {"target": OTHER, "duration": "30m", "reason": "deploy 4.3"}
    r = await app.request("POST", "/v1/silences", token=op, json=deploy)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["created"] is True and made["silence"]["id"] == 2
    assert made["silence"]["reason"] == "deploy 4.3"
    assert made["silence"]["created_by"] == f"token:{tok_id}"
    assert made["also_held_by"] == {
        "id": 1,
        "target": OTHER,
        "created_by": ADMIN,
        "starts_at": None,  # it started already
        "until": "2026-01-01T08:00:00Z",
    }
    app.clock.advance(20)  # the answer was lost: the script sends it again
    retry = await app.request("POST", "/v1/silences", token=op, json=deploy)
    assert retry.status_code == 200, retry.text
    assert retry.json()["created"] is False and retry.json()["silence"]["id"] == 2
    longer = await app.request("POST", "/v1/silences", token=op, json={**deploy, "duration": "2h"})
    assert longer.status_code == 201 and longer.json()["silence"]["id"] == 3, longer.text
    other = await app.request("POST", "/v1/silences", token=op, json={**deploy, "reason": "4.4"})
    assert other.status_code == 201 and other.json()["silence"]["id"] == 4, other.text

    # the person's silence is theirs to lift, in Slack; the token's own ones it ends
    refused = error(await app.request("DELETE", "/v1/silences/1", token=op), 403, "slack_only")
    assert f"made by {ADMIN}" in refused["message"]
    assert f"`/agent silence {OTHER} off`" in refused["message"]
    ended = await app.request("DELETE", "/v1/silences/2", token=op)
    assert ended.status_code == 200 and ended.json()["ended"] is True, ended.text
    # another operator token whose subtree holds it may end a token's silence
    _, above = await operator_token(app, "acme")
    ended = await app.request("DELETE", "/v1/silences/3", token=above)
    assert ended.status_code == 200 and ended.json()["ended"] is True, ended.text
    listed = (await app.request("GET", "/v1/silences", token=op)).json()["silences"]
    assert [(s["id"], s["state"]) for s in listed] == [(1, "active"), (4, "active")]


async def test_slack_names_a_token_as_at_token_not_as_a_broken_mention(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app, OTHER)
    await trip(app, OTHER)
    await alerts_of(slack).process()
    tok_id, op = await operator_token(app, "acme/alice")
    who = f"@token:{tok_id}"
    r = await app.request("POST", "/v1/alerts/1/ack", token=op)
    assert r.status_code == 200, r.text
    for body in (
        {"target": OTHER, "duration": "30m"},
        {"target": OTHER, "duration": "1h", "starts_at": "2026-01-01T02:00:00Z"},
        {"target": "acme/alice", "duration": "2h"},
    ):
        r = await app.request("POST", "/v1/silences", token=op, json=body)
        assert r.status_code == 201, r.text

    replies = [
        (await slack.command(f"silence {OTHER} 10m"))["text"],
        (await slack.command(f"silence {OTHER} off"))["text"],
        (await slack.command("unack 1", user="U01"))["text"],
        (await slack.command("escalate 1", user="U01"))["text"],
    ]
    assert "is already silenced by " + who in replies[0]
    assert f"(set by {who}, had 30m left)" in replies[1]
    assert (
        "booked from 02:00 today until 03:00" in replies[1]
        and f"(by {who}) before its start" in replies[1]
    )
    assert f"still silenced by acme/alice and below (set by {who})" in replies[1]
    assert f"{who} (who acknowledged it)" in replies[2]
    assert f"was acknowledged by {who} at" in replies[3]
    for text in replies:
        assert "<@token:" not in text, text


async def test_also_held_by_names_a_silence_booked_to_start_before_the_token_s_ends(slack_http):
    """closing23: a person's silence booked from 00:10 for the night was not named by a
    deploy's 30-minute silence made at 00:00, though it holds the alerts after it ends."""
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app, OTHER)
    night = await slack.command(f"silence {OTHER} 8h from 00:10 -- maintenance all night")
    assert night["response_type"] == "in_channel", night
    _, op = await operator_token(app, "acme/alice")

    deploy = {"target": OTHER, "duration": "30m", "reason": "deploy 4.3"}
    r = await app.request("POST", "/v1/silences", token=op, json=deploy)
    assert r.status_code == 201, r.text
    assert r.json()["also_held_by"] == {
        "id": 1,
        "target": OTHER,
        "created_by": ADMIN,
        "starts_at": "2026-01-01T00:10:00Z",  # booked: it holds nothing yet (recheck24 L5)
        "until": "2026-01-01T08:10:00Z",
    }
    app.clock.advance(11 * 60)  # 00:11: it has started, so no start is given
    r = await app.request("POST", "/v1/silences", token=op, json={**deploy, "reason": "4.4"})
    assert r.status_code == 201, r.text
    assert (r.json()["also_held_by"]["id"], r.json()["also_held_by"]["starts_at"]) == (1, None)
    # one booked to start after the deploy's ends holds nothing the deploy's holds
    later = await slack.command(f"silence {BOT} 8h from 01:00")
    assert later["response_type"] == "in_channel", later
    short = {"target": BOT, "duration": "30m"}
    r = await app.request("POST", "/v1/silences", token=op, json=short)
    assert r.status_code == 201 and r.json()["also_held_by"] is None, r.text
