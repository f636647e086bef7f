"""The Raise budget form's amount against the call the alert is about (recheck27 Kd): a
raise of a micro-dollar ($0.05 to $0.050001) for a call that asked $0.06 resolved the
alert "the day budget was raised to $0.050001", though that call would be refused again.
Amounts are exact USD to the micro-dollar: such a raise is set (it is a limit like any
other), and the alert stays open, the submitter told why; an amount finer than a
micro-dollar, or $0, is refused under the amount, naming the smallest.

The real app in Slack HTTP mode against the fake Slack Web API, signed view submissions.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_slack_races import (
    ADMIN,
    AGENT,
    ALERTS,
    BUDGET_POLICY,
    budget_alert,
    limits,
    open_form,
    submit,
)
from tests.scenario.test_stale_clicks import answer, settled


async def open_alerts(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch("SELECT id, resolved_at FROM alerts WHERE kind LIKE 'budget%'")
    return [tuple(r) for r in rows]


async def test_a_raise_short_of_the_refused_call_leaves_its_alert_open(slack_http: Any) -> None:
    slack = await slack_http(BUDGET_POLICY, clock=ManualClock())
    app = slack.app
    ts = await budget_alert(slack)  # $0.06 asked of a $0.05 day
    view = await open_form(slack, ts)

    for bad, said in (
        ("0.0000001", "has more than six decimals: amounts are exact to the micro-dollar"),
        ("0", "a raised budget is more than $0: $0.000001 (one micro-dollar) at the least"),
    ):
        refused = await submit(slack, view, bad)
        assert refused.json()["response_action"] == "errors", refused.text
        assert said in refused.json()["errors"]["amount"], refused.json()
    assert await limits(app) == []  # nothing changed

    assert (await submit(slack, view, "0.050001")).text == ""
    assert await limits(app) == [(AGENT, "day", 50_001, ADMIN)]  # set: exact, as typed
    assert await answer(slack, ADMIN) == (
        f"💰 day budget of `{AGENT}` set to $0.050001 (was $0.05) by <@{ADMIN}> at 00:00;"
        " #1 stays open: the call it refused asked $0.06, more than the day budget now"
        " leaves (the limit must take that on top of what is spent). It overrides the"
        f" policy file's $0.05, restarts included, until `/agent budget set {AGENT} default day`."
    )
    assert await open_alerts(app) == [(1, None)]
    await app.ns.extras["alerts"].process()  # the tick judges it alike
    assert await open_alerts(app) == [(1, None)]
    await settled(slack)
    posted = slack.fake.messages[(ALERTS, ts)]
    assert "resolved" not in str(posted["blocks"]), posted

    view = await open_form(slack, ts)
    assert (await submit(slack, view, "0.06")).text == ""  # enough for the call: resolved
    [(_, resolved_at)] = await open_alerts(app)
    assert resolved_at is not None
