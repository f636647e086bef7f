"""``/agent routing`` through the transport-neutral dispatcher on a running app."""

from __future__ import annotations

from bot.commands import Context, dispatch, dispatch_action


async def _admin() -> bool:
    return True


async def _nobody() -> bool:
    return False


async def test_routing_shows_the_mix_and_refuses_bad_arguments(app_factory):
    app = await app_factory()
    tok = await app.token("acme")
    for task in [
        "Classify this ticket as bug or feature",
        "Plan a six-month migration of our billing",
    ]:
        r = await app.request(
            "POST", "/v1/route", token=tok, json={"scope": "acme/a/bot", "task": task}
        )
        assert r.status_code == 200, r.text
    ctx = Context(ns=app.ns, user_id="U1", transport="test", is_admin=_nobody)
    reply = await dispatch(ctx, "routing")
    # decisions no call followed are not "calls" (audit18 finding 3)
    assert reply.text.startswith(
        "routing: 2 route decisions (small 50% · medium 0% · large 50%), none followed by a call"
    )
    assert "calls" not in reply.text
    assert "usage" in (await dispatch(ctx, "routing a b c")).text
    assert "usage" in (await dispatch(ctx, "routing acme/../x")).text
    refused = await dispatch(ctx, "routing revert summarize")
    assert "Only admins" in refused.text
    audit = await app.store.fetch("SELECT actor, action FROM audit WHERE action = 'refused'")
    assert [(r["actor"], r["action"]) for r in audit] == [("U1", "refused")]
    admin = Context(ns=app.ns, user_id="U2", transport="test", is_admin=_admin)
    nothing = await dispatch(admin, "routing revert summarize")
    assert nothing.text == (
        "Intent `summarize` has no active promotion; `/agent routing` lists the current ones."
    )
    # user text comes back as all of it does: escaped and clipped (audit9 L7)
    hostile = await dispatch(admin, f"routing revert <!channel>{'x' * 6_000} acme")
    assert hostile.text == (
        f"Intent `&lt;!channel&gt;{'x' * 30}…` has no active promotion in `acme`;"
        " `/agent routing` lists the current ones."
    )


async def test_routing_of_a_scope_nothing_uses_says_it_may_be_a_typo(app_factory):
    app = await app_factory()
    tok = await app.token("acme")
    body = {"scope": "acme/alice/rss-bot", "idempotency_key": "k1", "max_cost_micros": 10}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201, r.text
    ctx = Context(ns=app.ns, user_id="U1", transport="test", is_admin=_nobody)
    typo = await dispatch(ctx, "routing acme/alice/rss-bto")
    assert "routing under acme/alice/rss-bto: no route decisions in this period" in typo.text
    assert (
        "_No agent has reserved or sent a heartbeat under `acme/alice/rss-bto` yet (a typo?)._"
        " Did you mean `acme/alice/rss-bot`?"
    ) in typo.text
    assert any("Did you mean" in str(b) for b in typo.blocks)
    quiet = await dispatch(ctx, "routing acme/alice")  # known, if quiet here: no warning
    assert "a typo?" not in quiet.text


async def test_a_climb_is_one_line_and_one_button_in_the_policy_s_zone(app_factory):
    """audit24 C L7 and L8: promotions were stamped in UTC while every other reply uses the
    policy's zone, and a second promotion of an intent (medium → large on top of small →
    medium) showed as two lines with two identical Revert buttons, one click undoing both."""
    from tests.scenario.test_routing_audit18 import TIERS, routed_call

    promote = {"window_calls": 4, "min_calls": 4, "rate": 0.5}
    policy = {"timezone": "Europe/Berlin", "routing": {"tiers": TIERS, "promote": promote}}
    app = await app_factory(policy)  # 2026-01-01 00:00 UTC: 01:00 in Berlin
    tok = await app.token("acme/alice")
    for n in range(4):
        await routed_call(app, tok, f"acme/alice/m{n}", f"Summarize memo {n}", outcome="failure")
    ctx = Context(ns=app.ns, user_id="U1", transport="test", is_admin=_admin)
    one = await dispatch(ctx, "routing")
    assert one.text.endswith(
        "promoted: summary in acme small → medium since 01:00, lapses Thu 08 Jan 01:00"
        " (4 of 4 calls failed or were rejected by validation);"
        " revert: /agent routing revert summary acme"
    ), one.text
    app.clock.advance(90 * 60)  # 02:30 in Berlin: the medium calls fail too
    for n in range(4):
        await routed_call(app, tok, f"acme/alice/r{n}", f"Summarize report {n}", outcome="failure")
    reply = await dispatch(ctx, "routing")
    promoted = [line for line in reply.text.splitlines() if line.startswith("promoted:")]
    assert promoted == [
        "promoted: summary in acme small → medium at 01:00 → large at 02:30, lapses Thu 08 Jan"
        " 02:30 (4 of 4 medium calls failed or were rejected by validation);"
        " revert: /agent routing revert summary acme"
    ]
    buttons = [b for b in reply.blocks if b["type"] == "actions"]
    assert [b["elements"][0]["value"] for b in buttons] == ["summary acme"]
    assert reply.blocks[0]["text"]["text"].endswith(promoted[0])
    done = await dispatch_action(ctx, "routing_revert", "summary acme")
    assert done.done == (
        "↩️ Reverted the promotion of `summary` in acme: it routes by its own rules again."
        " — <@U1> at 02:30"
    )
    assert (await dispatch(ctx, "routing")).text.endswith("promotions: none")
