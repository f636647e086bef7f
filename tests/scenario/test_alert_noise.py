"""Pages that nobody needed (audit13 incidents H2, M4): the real app, the fake Slack.

A conversation stopped by its own budget is the guard doing its work: its alert is
posted at its tier and pages nobody (``alerts.page_conversation_budgets`` asks for
pages). A P1 on an agent whose P0 is open waits for that P0: one agent, one incident,
one chain of pages.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from guards.events import BreakerClosed, BreakerOpened, BudgetExhausted, HalfOpenRequested
from tests.scenario.test_alerts import ALERTS, BOT, POLICY, alerts_of, dms, emit
from tests.scenario.test_stale_clicks import settled

CONVERSATION = f"{BOT}/c42"
# the limits the refusals below hit (a budget alert resolves once its limit is not the one hit)
CAPPED: dict[str, Any] = {
    **POLICY,
    "budgets": {"defaults": {"agent": {"day": "100.00"}, "conversation": {"total": "2.00"}}},
}
LIMITS = {"agent": 100_000_000, "conversation": 2_000_000}


def refusal(app: Any, scope: str, level: str, window: str) -> BudgetExhausted:
    limit = LIMITS[level]
    return BudgetExhausted(
        at=app.clock.now(),
        scope=scope,
        level=level,
        window=window,
        limit_micros=limit,
        spent_micros=limit - 100_000,
        held_micros=0,
        requested_micros=300_000,
    )


async def paged(app: Any, kind: str) -> list[tuple[str, str | None]]:
    """(alert scope, whom: None for the channel) of every escalation step taken for
    alerts of ``kind``."""
    rows = await app.store.fetch(
        "SELECT a.scope, e.target FROM escalations AS e JOIN alerts AS a ON a.id = e.alert_id"
        " WHERE a.kind = ? ORDER BY e.id",
        (kind,),
    )
    return [(r[0], r[1]) for r in rows]


async def test_a_conversation_at_its_own_cap_is_posted_and_pages_nobody(slack_http):
    slack = await slack_http(CAPPED, clock=ManualClock())
    app, fake = slack.app, slack.fake
    await emit(app, refusal(app, CONVERSATION, "conversation", "total"))
    await emit(app, refusal(app, BOT, "agent", "day"))
    await alerts_of(slack).process()
    await fake.wait_for(lambda: len(fake.posts(ALERTS)) == 2)  # both posted, as P1
    app.clock.advance(31 * 60)  # P1 enters the chain after p1_escalate_after
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))
    app.clock.advance(3 * 3600)
    await alerts_of(slack).tick()
    assert await paged(app, "budget_exhausted") == [(BOT, "U04"), (BOT, None)]
    assert len(dms(fake, "U04")) == 1


async def test_conversation_caps_page_when_the_policy_asks(slack_http):
    alerts = {"update_interval_seconds": "30s", "repeat_escalation": 0}  # POLICY's
    policy = {**CAPPED, "alerts": {**alerts, "page_conversation_budgets": True}}
    slack = await slack_http(policy, clock=ManualClock())
    app = slack.app
    await emit(app, refusal(app, CONVERSATION, "conversation", "total"))
    await alerts_of(slack).process()
    app.clock.advance(31 * 60)
    await alerts_of(slack).tick()
    await slack.fake.wait_for(lambda: dms(slack.fake, "U04"))
    assert await paged(app, "budget_exhausted") == [(CONVERSATION, "U04")]


async def test_a_p1_on_an_agent_with_an_open_p0_waits_for_the_p0(slack_http):
    slack = await slack_http(CAPPED, clock=ManualClock())
    app, fake = slack.app, slack.fake
    await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"))
    await emit(app, refusal(app, BOT, "agent", "day"))
    await alerts_of(slack).process()
    await fake.wait_for(lambda: dms(fake, "U01"))  # the P0 pages at once
    reply = await slack.command("ack 1", user="U01")  # someone is on it
    assert "acknowledged" in reply["text"].lower(), reply["text"]
    for _ in range(8):  # 40 minutes: the P1's step falls due while the P0 is open
        app.clock.advance(5 * 60)
        await alerts_of(slack).tick()
    assert await paged(app, "budget_exhausted") == []
    assert [who for _, who in await paged(app, "breaker_opened_spend")] == ["U01"]
    await emit(app, BreakerClosed(at=app.clock.now(), scope=BOT, reason="trial passed"))
    await alerts_of(slack).process()
    app.clock.advance(61)
    await alerts_of(slack).tick()  # the P0 resolved: the P1's page goes now
    assert await paged(app, "budget_exhausted") == [(BOT, "U04")]


async def test_a_p0_whose_chain_ran_out_unanswered_covers_nothing(slack_http):
    slack = await slack_http(CAPPED, clock=ManualClock())  # repeat_escalation: 0
    app, fake = slack.app, slack.fake
    await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"))
    await emit(app, refusal(app, BOT, "agent", "day"))
    await alerts_of(slack).process()
    await fake.wait_for(lambda: dms(fake, "U01"))
    for _ in range(8):  # the P0 pages U01, U04, the channel, then nobody answers
        app.clock.advance(5 * 60)
        await alerts_of(slack).tick()
        # each page goes out before the next five minutes pass (a page still queued when
        # the next one for that person comes would fold into a storm summary with it)
        await settled(slack)
    assert [who for _, who in await paged(app, "breaker_opened_spend")] == ["U01", "U04", None]
    # so the P1 runs its own chain: the secondary at 30 min, the channel 10 min later
    assert await paged(app, "budget_exhausted") == [(BOT, "U04"), (BOT, None)]
    # and its page says it is the same incident (recheck N2)
    await fake.wait_for(lambda: len(dms(fake, "U04")) == 2)
    p1_page = dms(fake, "U04")[-1].args["text"]
    assert p1_page.startswith(
        "You are paged (secondary, step 2 of 3), part of P0 #1 on this agent,"
        " whose pages went unanswered: "
    ), p1_page
    assert "part of P0" not in dms(fake, "U04")[0].args["text"]  # the P0's own page


async def test_a_trial_request_is_paged_although_its_breaker_s_p0_is_open(slack_http):
    """review13 M1: the spend P0 stays open until the breaker closes, so the request to
    approve a trial (a P1, the answer to that P0) waited for it, and nobody was asked."""
    slack = await slack_http(CAPPED, clock=ManualClock())
    app = slack.app
    await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"))
    await alerts_of(slack).process()
    await slack.fake.wait_for(lambda: dms(slack.fake, "U01"))
    await alerts_of(slack).tick()
    app.clock.advance(15 * 60)  # the P0 chain has paged the secondary and the channel
    request = HalfOpenRequested(
        at=app.clock.now(), scope=BOT, reason="r", trial_calls=3, trial_budget_micros=500_000
    )
    await emit(app, request)
    await alerts_of(slack).process()
    app.clock.advance(31 * 60)
    await alerts_of(slack).tick()
    assert [who for _, who in await paged(app, "half_open_requested")] == ["U04"]


async def test_escalate_now_pages_a_conversation_s_cap_that_paged_nobody(slack_http):
    """By hand, the chain starts where its tier enters it (it said "has been through its
    whole escalation chain; everyone in it was notified", and nobody had been)."""
    from tests.scenario.test_stale_clicks import answer, click

    slack = await slack_http(CAPPED, clock=ManualClock())
    app, fake = slack.app, slack.fake
    await emit(app, refusal(app, CONVERSATION, "conversation", "total"))
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    ts = str(fake.posts(ALERTS)[0].response["ts"])
    await click(slack, "alert_escalate", ALERTS, ts, user="U01")
    assert await answer(slack, "U01") == "Escalated #1: notified <@U04>."
    assert await paged(app, "budget_exhausted") == [(CONVERSATION, "U04")]
