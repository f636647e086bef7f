"""A limit raised in Slack "for tonight" ends by itself (audit27 parity #3): it stops
counting at its end, whether or not the sweeper ran, and the sweeper records it and says
so in the alerts channel. Before, a 3 a.m. raise stayed until someone remembered it."""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock

ADMIN = "U0ADMIN"
BOT = "acme/u/a"
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "channels": {"alerts": "C0ALERTS"},
    "budgets": {"scopes": {BOT: {"day": "1.00"}}},
}
KEYS = iter(range(1_000))


async def reserve(app: Any, micros: int) -> int:
    tok = await app.token("acme")
    body = {"scope": BOT, "idempotency_key": f"k{next(KEYS)}", "max_cost_micros": micros}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    return int(r.status_code)


async def spend(app: Any, micros: int) -> None:
    """A call of ``micros``, reserved and settled."""
    tok = await app.token("acme")
    body = {"scope": BOT, "idempotency_key": f"k{next(KEYS)}", "max_cost_micros": micros}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201, r.text
    path = f"/v1/reservations/{r.json()['reservation_id']}/settle"
    r = await app.request("POST", path, token=tok, json={"actual_cost_micros": micros})
    assert r.status_code == 200, r.text


async def test_a_limit_set_for_a_while_ends_at_its_time_and_is_said(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    raised = await slack.command(f"budget set {BOT} $5 day for 2h")
    assert raised["response_type"] == "in_channel"
    assert raised["text"] == (
        f"✏️ <@{ADMIN}> set the *day* budget of `{BOT}` to *$5.00* (was $1.00) for 2h,"
        " until 02:00; then the policy file's $1.00 applies again (the alerts channel is told)."
    )
    await spend(app, 1_500_000)  # within the raise, over the file's $1.00 (under the breaker)

    app.clock.advance(2 * 3600)  # its end: the file's $1.00 at once, before any sweep
    assert await reserve(app, 1_000) == 402
    rows = await app.store.fetch("SELECT limit_micros FROM budget_limits")
    assert [r[0] for r in rows] == [5_000_000]  # the row is still there: it counts no more

    await app.ns.sweep()
    assert await app.store.fetch("SELECT * FROM budget_limits") == []
    audit = await app.store.fetch(
        "SELECT actor, action, target, before, after FROM audit WHERE action LIKE 'budget.%'"
    )
    assert [tuple(r) for r in audit] == [
        (ADMIN, "budget.set", f"{BOT} day", "1000000", "5000000"),
        ("nightshift", "budget.end", f"{BOT} day", "5000000", "1000000"),
    ]

    def ended() -> list[str]:
        return [t for t in slack.fake.texts("C0ALERTS") if t.startswith("⏱️")]

    await slack.fake.wait_for(ended)
    assert ended() == [
        f"⏱️ The *day* budget of `{BOT}` is back to the policy file's *$1.00*: the $5.00"
        f" set by <@{ADMIN}> until 02:00 has ended."
    ]
    await app.ns.sweep()  # said once
    assert len(ended()) == 1


async def test_a_limit_set_again_for_good_does_not_end(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await slack.command(f"budget set {BOT} $5 day for 1h")
    await slack.command(f"budget set {BOT} $4 day")  # for good, now
    app.clock.advance(2 * 3600)
    await app.ns.sweep()
    rows = await app.store.fetch("SELECT limit_micros, until FROM budget_limits")
    assert [tuple(r) for r in rows] == [(4_000_000, None)]
    assert await reserve(app, 3_500_000) == 201


async def test_a_limit_for_a_while_survives_a_restart_and_still_ends(slack_http, tmp_path):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await slack.command(f"budget set {BOT} $5 day for 1h")
    app.ns.ledger.forget()  # what a restart reads: the table, not the memory
    await spend(app, 1_500_000)
    app.clock.advance(3600)
    app.ns.ledger.forget()
    assert await reserve(app, 1_000) == 402


async def test_bad_durations_are_refused_and_change_nothing(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    for words, said in [
        ("$5 day for", "`for` takes one duration at the end"),
        ("$5 day for 2h now", "`for` takes one duration at the end"),
        ("$5 day for 120", "`120` what? Write `120h` for hours"),  # not 120 seconds
        ("$5 day for 2x", "`for` takes a duration like 2h or 1d"),
        ("$5 day for 10s", "`for` takes a duration like 2h or 1d"),
        ("$5 day for 100d", "`for` takes a duration like 2h or 1d"),
        ("$5 day for -1h", "`for` takes a duration like 2h or 1d"),
        ("default day for 2h", "`default` is for good"),
    ]:
        reply = await slack.command(f"budget set {BOT} {words}")
        assert said in reply["text"], (words, reply["text"])
    assert await slack.app.store.fetch("SELECT * FROM budget_limits") == []
    audit = await slack.app.store.fetch("SELECT * FROM audit WHERE action LIKE 'budget.%'")
    assert audit == []


async def test_the_digest_names_the_limits_set_in_slack_and_their_end(slack_http):
    """A raise nobody undid is read the next morning; one set for a while says its end."""
    slack = await slack_http(POLICY, clock=ManualClock())
    await slack.command(f"budget set {BOT} $5 day for 2h")
    await slack.command("budget set acme/u/b $3 week")
    await spend(slack.app, 10_000)  # a namespace to digest
    preview = (await slack.command("digest acme"))["text"]
    assert (
        f"*Limits set in Slack* `{BOT}` day $5.00 (file: $1.00), by <@U0ADMIN>, until 02:00"
        " · `acme/u/b` week $3.00 (file: no limit), by <@U0ADMIN>, until changed"
    ) in preview
    slack.app.clock.advance(2 * 3600)  # ended: no longer named
    preview = (await slack.command("digest acme"))["text"]
    assert f"`{BOT}` day" not in preview and "`acme/u/b` week $3.00" in preview


async def test_durations_are_read_as_the_other_commands_read_them(slack_http):
    """recheck28 M1: `for 120` set two minutes, `for 2 hours` and `for 90min` were refused."""
    slack = await slack_http(POLICY, clock=ManualClock())
    for typed, seconds in (("2 hours", 7200), ("2 h", 7200), ("90min", 5400), ("1.5h", 5400)):
        reply = await slack.command(f"budget set {BOT} $5 day for {typed}")
        assert reply["response_type"] == "in_channel", (typed, reply["text"])
        rows = await slack.app.store.fetch("SELECT until - set_at FROM budget_limits")
        assert [r[0] for r in rows] == [seconds], typed


async def test_the_budget_tree_says_when_a_limit_set_for_a_while_ends(slack_http):
    """recheck28 L2: `/agent budget` showed a raise for two hours as a limit for good."""
    slack = await slack_http(POLICY, clock=ManualClock())
    await slack.command(f"budget set {BOT} $5 day for 2h")
    await slack.command("budget set acme $50 week")  # for good: no end shown
    shown = (await slack.command(f"budget {BOT}"))["text"]
    [day] = [line for line in shown.splitlines() if "of $5.00" in line]
    assert day.endswith(" · until 02:00, then $1.00")
    [week] = [line for line in shown.splitlines() if "of $50.00" in line]
    assert "until" not in week
