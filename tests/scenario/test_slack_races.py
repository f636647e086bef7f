"""Two people at once (audit11 races): the Raise budget form against a budget set meanwhile,
a lost Approve trial race, a Silence 1h on an alert that has just resolved, and a pause
during a run.

The real app in Slack HTTP mode against the fake Slack Web API, signed requests, a
ManualClock (2026-01-01 00:00 UTC).
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from bot.commands import Context, dispatch
from guards.clock import ManualClock
from guards.events import BreakerClosed
from tests.scenario.test_agent_text_escaped import until
from tests.scenario.test_alerts import BOT, alerts_of, emit
from tests.scenario.test_jobs import T0, Target, fire, job, runs, target
from tests.scenario.test_stale_clicks import (
    STALE_POLICY,
    answer,
    audit,
    buttons,
    click,
    half_open_request,
    message,
    p1_posted,
    settled,
)

__all__ = ["target"]  # the job target fixture, shared with test_jobs

ADMIN, DANA = "U0ADMIN", "U0DANA"
ALERTS = "C0ALERTS"
AGENT = "acme/m/bot"
BUDGET_POLICY: dict[str, Any] = {
    "admins": [ADMIN, DANA],
    "channels": {"alerts": ALERTS},
    "budgets": {"defaults": {"agent": {"day": "0.05"}}},
}


# -- the Raise budget form against a budget set meanwhile (M1) ------------------------------


async def refused_call(app: Any, key: str = "k1") -> None:
    """AGENT asks $0.06 of its $0.05 day: refused, a budget alert fires."""
    tok = await app.token(AGENT)
    body = {"scope": AGENT, "idempotency_key": key, "max_cost_micros": 60_000}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 402, r.text
    await app.ns.extras["alerts"].process()


async def budget_alert(slack: Any) -> str:
    """The budget alert's ts in the alerts channel, once posted with its buttons."""
    fake = slack.fake
    await refused_call(slack.app)
    await fake.wait_for(lambda: any("budget_raise" in str(c.args) for c in fake.posts(ALERTS)))
    return str(next(c for c in fake.posts(ALERTS) if "budget_raise" in str(c.args)).response["ts"])


async def open_form(slack: Any, ts: str, *, user: str = ADMIN) -> dict[str, Any]:
    """``user`` clicks Raise budget on the alert: the form Slack opened."""
    opened = len(slack.fake.views)
    await click(slack, "budget_raise", ALERTS, ts, user=user)
    await slack.fake.wait_for(lambda: len(slack.fake.views) > opened)
    return dict(slack.fake.views[-1])


async def submit(
    slack: Any, view: dict[str, Any], amount: str, *, user: str = ADMIN, lasting: str = ""
) -> Any:
    """Submit the form as Slack does: with the metadata it was opened with."""
    r = await slack.submit(
        callback_id="budget_raise_modal",
        private_metadata=view["private_metadata"],
        values={"amount": amount, "window": {"selected": "day"}, "for": lasting},
        view_id=view["id"],
        user_id=user,
    )
    assert r.status_code == 200, r.text
    return r


async def limits(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch("SELECT scope, window, limit_micros, set_by FROM budget_limits")
    return [tuple(r) for r in rows]


async def budget_audit(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch(
        "SELECT actor, before, after FROM audit WHERE action = 'budget.set' ORDER BY id"
    )
    return [tuple(r) for r in rows]


def contexts(msg: dict[str, Any]) -> list[str]:
    return [b["elements"][0]["text"] for b in msg["blocks"] if b["type"] == "context"]


async def test_a_raise_form_submitted_after_someone_set_the_limit_says_so_and_asks_again(
    slack_http,
):
    """The auditor's repro: the form showed $0.05; Dana set $5.00 meanwhile, which resolved
    the alert; the form's $1.00 lowered it without a word and redrew the alert as open."""
    slack = await slack_http(BUDGET_POLICY, clock=ManualClock())
    app, fake = slack.app, slack.fake
    ts = await budget_alert(slack)
    view = await open_form(slack, ts)
    assert "now: day $0.05" in json.dumps(view["blocks"])
    app.clock.advance(120)
    said = await slack.command(f"budget set {AGENT} 5 day", user=DANA)
    assert "set the *day* budget" in said["text"]
    resolved = f"✅ resolved by <@{DANA}> at 00:02 — the day budget was raised to $5.00"
    await fake.wait_for(lambda: resolved in contexts(message(slack, ALERTS, ts)))
    await settled(slack)
    edits = len(fake.calls_of("chat.update"))

    app.clock.advance(60)
    first = await submit(slack, view, "1.00")
    assert first.json() == {
        "response_action": "errors",
        "errors": {
            "amount": f"the day limit is now $5.00 (set by <@{DANA}> at 00:02);"
            " submit again to lower it to $1.00 anyway"
        },
    }
    assert await limits(app) == [(AGENT, "day", 5_000_000, DANA)]  # nothing changed
    assert await budget_audit(app) == [(DANA, "50000", "5000000")]

    again = await submit(slack, view, "1.00")  # Slack sends the same form again
    assert again.text == ""  # the form closes
    assert await limits(app) == [(AGENT, "day", 1_000_000, ADMIN)]
    assert await budget_audit(app) == [(DANA, "50000", "5000000"), (ADMIN, "5000000", "1000000")]
    assert await answer(slack, ADMIN) == (
        f"💰 day budget of `{AGENT}` lowered to $1.00 (was $5.00) by <@{ADMIN}> at 00:03;"
        f" #1 was already resolved by <@{DANA}> at 00:02 (the day budget was raised to $5.00)."
        f" It overrides the policy file's $0.05, restarts included, until"
        f" `/agent budget set {AGENT} default day`."
    )
    await settled(slack)
    # the alert's message is the engine's: still resolved, not redrawn from the form's click
    assert len(fake.calls_of("chat.update")) == edits
    shown = message(slack, ALERTS, ts)
    assert shown["blocks"][0]["text"]["text"].startswith("✅ P1")
    assert resolved in contexts(shown) and buttons(shown) == {}
    assert "lowered" not in json.dumps(shown)
    [(resolved_at,)] = await app.store.fetch("SELECT resolved_at FROM alerts")
    assert resolved_at is not None


async def test_a_raise_form_on_an_alert_resolved_meanwhile_leaves_its_message_alone(slack_http):
    """The limit did not change (the alert was resolved by hand): the raise goes through,
    and the submitter is told; the resolved message is not redrawn from the click's copy."""
    slack = await slack_http(BUDGET_POLICY, clock=ManualClock())
    app, fake = slack.app, slack.fake
    ts = await budget_alert(slack)
    view = await open_form(slack, ts)
    app.clock.advance(60)
    await click(slack, "alert_resolve", ALERTS, ts, user=DANA)
    assert await answer(slack, DANA) == f"✅ #1 resolved by <@{DANA}> at 00:01"
    await fake.wait_for(lambda: buttons(message(slack, ALERTS, ts)) == {})
    await settled(slack)
    edits = len(fake.calls_of("chat.update"))

    done = await submit(slack, view, "2")
    assert done.text == ""
    assert await limits(app) == [(AGENT, "day", 2_000_000, ADMIN)]
    assert await answer(slack, ADMIN) == (
        f"💰 day budget of `{AGENT}` set to $2.00 (was $0.05) by <@{ADMIN}> at 00:01;"
        f" #1 was already resolved by <@{DANA}> at 00:01. It overrides the policy file's"
        f" $0.05, restarts included, until `/agent budget set {AGENT} default day`."
    )
    await settled(slack)
    assert len(fake.calls_of("chat.update")) == edits
    assert f"✅ resolved by <@{DANA}> at 00:01" in contexts(message(slack, ALERTS, ts))


async def test_a_limit_set_to_the_same_amount_meanwhile_is_no_conflict(slack_http):
    slack = await slack_http(BUDGET_POLICY, clock=ManualClock())
    ts = await budget_alert(slack)
    view = await open_form(slack, ts)
    await slack.command(f"budget set {AGENT} 3 day", user=DANA)
    done = await submit(slack, view, "3.00")  # what Dana set: nothing to warn about
    assert done.text == ""
    # recheck27 Ka L1: it was set again, by the submitter; as `budget set`, it changes
    # nothing now and says so (it stays Dana's)
    assert await limits(slack.app) == [(AGENT, "day", 3_000_000, DANA)]
    assert await answer(slack, ADMIN) == (
        f"The *day* budget of `{AGENT}` is *$3.00* already, set in Slack for good: nothing changed."
    )


async def test_the_raise_form_with_the_limit_set_already_changes_nothing(slack_http):
    """recheck27 Ka L1: the form submitted with the limit set in Slack already wrote a
    '$0.05 → $0.05' audit row and noted "set to $0.05 by @U" on the alert, for the whole
    channel; `budget set` (audit27 B2 L3) tells only who asked, audits nothing."""
    slack = await slack_http(BUDGET_POLICY, clock=ManualClock())
    app, fake = slack.app, slack.fake
    await slack.command(f"budget set {AGENT} 0.05 day")  # the file's amount, now for good
    ts = await budget_alert(slack)
    await settled(slack)
    shown, edits = message(slack, ALERTS, ts), len(fake.calls_of("chat.update"))
    view = await open_form(slack, ts)
    assert json.loads(view["private_metadata"])["shown"] == {"day": 50_000}
    app.clock.advance(60)
    done = await submit(slack, view, "0.05")
    assert done.text == ""  # the form closes
    assert await answer(slack, ADMIN) == (
        f"The *day* budget of `{AGENT}` is *$0.05* already, set in Slack for good: nothing changed."
    )
    assert await budget_audit(app) == [(ADMIN, "50000", "50000")]  # the command's only
    await settled(slack)
    assert len(fake.calls_of("chat.update")) == edits
    assert message(slack, ALERTS, ts) == shown
    for_a_while = await submit(slack, view, "0.05", lasting="1h")  # it gets an end: a change
    assert for_a_while.text == ""
    assert len(await budget_audit(app)) == 2


async def test_a_raise_form_on_another_window_is_checked_on_that_window(slack_http):
    """The form showed no week limit; one was set meanwhile: a week raise asks first, a day
    raise (unchanged) goes through."""
    slack = await slack_http(BUDGET_POLICY, clock=ManualClock())
    app = slack.app
    ts = await budget_alert(slack)
    view = await open_form(slack, ts)
    await slack.command(f"budget set {AGENT} 20 week", user=DANA)

    async def raise_week() -> Any:
        return await slack.submit(
            callback_id="budget_raise_modal",
            private_metadata=view["private_metadata"],
            values={"amount": "30", "window": {"selected": "week"}},
            view_id=view["id"],
        )

    refused = (await raise_week()).json()
    assert refused["errors"] == {
        "amount": f"the week limit is now $20.00 (set by <@{DANA}> at 00:00);"
        " submit again to set $30.00 anyway"
    }
    assert (await raise_week()).text == ""
    assert (AGENT, "week", 30_000_000, ADMIN) in await limits(app)


async def test_the_shell_form_says_a_limit_set_meanwhile_and_takes_the_next_answers(app_factory):
    """Shell mode asks the same form as questions; a limit set while they are answered is
    shown in the shell's words, and the next round's answers set it."""
    policy = {**BUDGET_POLICY, "channels": {}}
    app = await app_factory(policy, clock=ManualClock())  # no SLACK_*: the shell
    console = app.ns.extras["shell"]
    console.out = out = io.StringIO()
    console.input.reading = True  # its answers come from the test, not from stdin
    await refused_call(app)
    await until(lambda: console.find_button("budget_raise") is not None)
    raise_budget = console.find_button("budget_raise")
    assert raise_budget is not None
    clicked = asyncio.ensure_future(console.handle_line(str(raise_budget.number)))
    await until(lambda: "New limit (USD): " in out.getvalue())

    async def is_admin() -> bool:
        return True

    dana = Context(app.ns, user_id=DANA, transport="test", is_admin=is_admin)
    await dispatch(dana, f"budget set {AGENT} 5 day")  # while the shell's form is open
    for line in ("1", "", ""):  # the amount, the window (Enter keeps day), until changed
        console.input.lines.put_nowait(line)
    await until(lambda: out.getvalue().count("New limit (USD): ") == 2)
    assert (
        f"✗ the day limit is now $5.00 (set by @{DANA} at 00:00);"
        " answer again to lower it to $1.00 anyway"
    ) in out.getvalue()
    assert await limits(app) == [(AGENT, "day", 5_000_000, DANA)]
    for line in ("1", "", ""):
        console.input.lines.put_nowait(line)
    await asyncio.wait_for(clicked, 5)
    assert await limits(app) == [(AGENT, "day", 1_000_000, "shell")]
    assert (
        f"💰 day budget of `{AGENT}` lowered to $1.00 (was $5.00) by @shell at 00:00;"
        f" #1 was already resolved by @{DANA} at 00:00"
    ) in out.getvalue()


# -- two Approve trial clicks at once (L2) --------------------------------------------------


async def test_the_second_of_two_approve_trial_clicks_is_told_who_approved_it(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    ts = await half_open_request(slack)
    blocks = message(slack, ALERTS, ts)["blocks"]
    await asyncio.gather(
        click(slack, "breaker_approve", ALERTS, ts, user=ADMIN, blocks=blocks),
        click(slack, "breaker_approve", ALERTS, ts, user="U0ADMIN2", blocks=blocks),
    )
    fake = slack.fake
    await fake.wait_for(lambda: fake.responses[ADMIN] or fake.responses["U0ADMIN2"])
    await settled(slack)
    [(by, before, after, _)] = await audit(slack.app, "breaker.approve")
    late = "U0ADMIN2" if by == ADMIN else ADMIN
    assert (before, after) == ("half_open_pending", "half_open")
    assert fake.responses[by] == []  # the first clicker's answer is the message itself
    assert await answer(slack, late) == (
        f"🟠 The trial of `{BOT}` was approved by <@{by}> at 00:01;"
        f" `/agent breaker {BOT} open` stops it. Nothing changed."
    )
    shown = json.dumps(message(slack, ALERTS, ts), ensure_ascii=False)
    assert f"approved by <@{by}>" in shown and f"<@{late}>" not in shown
    assert "breaker_approve" not in shown


# -- Silence 1h on an alert that has just resolved (L4) -------------------------------------


async def test_silence_on_an_alert_resolved_a_moment_ago_says_it_holds_the_next_firings(
    slack_http,
):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    ts = await p1_posted(slack)
    blocks = message(slack, ALERTS, ts)["blocks"]  # as the clicker's screen still shows it
    app.clock.advance(120)
    await emit(app, BreakerClosed(at=app.clock.now(), scope=BOT, reason="trial ok"))
    await alerts_of(slack).process()
    [(reason,)] = await app.store.fetch("SELECT resolve_reason FROM alerts WHERE id = 1")
    assert reason
    await settled(slack)
    resolved_message = message(slack, ALERTS, ts)

    app.clock.advance(60)
    await click(slack, "alert_silence_1h", ALERTS, ts, user="U01", blocks=blocks)
    assert await answer(slack, "U01") == (
        f"🔕 #1 was resolved at 00:02 ({reason}); this silence holds its next firings"
        " until 01:03 — `/agent silence 1 off` lifts it."
    )
    [(actor, _, until, _)] = await audit(app, "alert.silence")
    assert actor == "U01" and until.startswith("2026-01-01T01:03")
    await settled(slack)
    assert message(slack, ALERTS, ts) == resolved_message

    lifted = await slack.command("silence 1 off", user="U01")  # what the reply says works
    assert "lifted" in lifted["text"]
    assert len(await audit(app, "silence.lift")) == 1


async def test_silence_on_an_alert_someone_resolved_names_them(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    ts = await p1_posted(slack)
    blocks = message(slack, ALERTS, ts)["blocks"]
    await click(slack, "alert_resolve", ALERTS, ts, user=ADMIN)
    assert await answer(slack, ADMIN) == f"✅ #1 resolved by <@{ADMIN}> at 00:00"
    await click(slack, "alert_silence_1h", ALERTS, ts, user="U01", blocks=blocks)
    assert await answer(slack, "U01") == (
        f"🔕 #1 was resolved by <@{ADMIN}> at 00:00; this silence holds its next firings"
        " until 01:00 — `/agent silence 1 off` lifts it."
    )


# -- pause during a run (L5) ----------------------------------------------------------------


async def test_pause_during_a_run_says_the_run_goes_on_and_until_when(slack_http, target: Target):
    policy = {"admins": [ADMIN], "jobs": [job(target, "sync", "*/15 * * * *", "/slow")]}
    slack = await slack_http(policy, clock=ManualClock(T0))
    app = slack.app
    app.ns.scheduler.pause_job("jobs-tick")  # the test drives the ticks
    await fire(app, 15 * 60, wait=False)  # 00:15: the run starts and waits for its target
    await asyncio.wait_for(target.arrived.wait(), 5)
    app.clock.advance(60)
    paused = await slack.command("pause sync")
    assert paused["text"] == (
        "⏸ sync paused by <@U0ADMIN> at 00:16: runs are skipped until `/agent resume sync`.\n"
        "The run started at 00:15 goes on: a pause does not stop a run; its 5m timeout"
        " ends it by 00:20 at the latest."
    )
    target.gate.set()
    await app.ns.extras["jobs"].wait_idle()
    await fire(app, 14 * 60)  # 00:30: skipped, paused
    assert await runs(app, "sync") == [("succeeded", None), ("skipped", "paused")]
    assert (await slack.command("resume sync"))["text"].startswith("▶️ sync resumed")
    # no run going: the reply says only the pause
    again = await slack.command("pause sync")
    assert again["text"] == (
        "⏸ sync paused by <@U0ADMIN> at 00:30: runs are skipped until `/agent resume sync`."
    )


async def test_pause_all_during_runs_lists_the_runs_that_go_on(slack_http, target: Target):
    policy = {
        "admins": [ADMIN],
        "jobs": [
            job(target, "sync", "*/15 * * * *", "/slow"),
            job(target, "sweep", "*/15 * * * *", "/slow", timeout_seconds=600),
            job(target, "daily", "0 6 * * *"),  # not running: not listed
        ],
    }
    slack = await slack_http(policy, clock=ManualClock(T0))
    app = slack.app
    app.ns.scheduler.pause_job("jobs-tick")
    await fire(app, 15 * 60, wait=False)
    await until(lambda: len(target.calls) == 2)
    paused = await slack.command("pause all")
    assert paused["text"] == (
        "⏸ all jobs paused by <@U0ADMIN> at 00:15: runs are skipped until `/agent resume all`.\n"
        "Runs going on (a pause does not stop a run): `sync` started at 00:15 (its 5m timeout"
        " ends it by 00:20 at the latest); `sweep` started at 00:15 (its 10m timeout ends it"
        " by 00:25 at the latest)."
    )
    target.gate.set()
    await app.ns.extras["jobs"].wait_idle()
    assert await runs(app, "sync") == await runs(app, "sweep") == [("succeeded", None)]


async def test_pause_never_promises_an_end_before_the_timeout_s(slack_http, target: Target):
    """audit24 C L2: a 2m 30s timeout from 00:15 was said to end the run "by 00:17", half a
    minute before it may; and (L3) `/agent jobs` of one job said "1 jobs"."""
    policy = {
        "admins": [ADMIN],
        "jobs": [job(target, "slow", "*/15 * * * *", "/slow", timeout_seconds=150)],
    }
    slack = await slack_http(policy, clock=ManualClock(T0))
    app = slack.app
    app.ns.scheduler.pause_job("jobs-tick")
    await fire(app, 15 * 60, wait=False)  # 00:15:00
    await asyncio.wait_for(target.arrived.wait(), 5)
    app.clock.advance(60)
    paused = await slack.command("pause slow")
    assert paused["text"].endswith("its 2m 30s timeout ends it by 00:17:30 at the latest."), paused[
        "text"
    ]
    listed = await slack.command("jobs")
    assert listed["text"].startswith("1 job, 1 paused · `/agent pause <job|all>` stops runs")
    target.gate.set()
    await app.ns.extras["jobs"].wait_idle()
