"""Buttons and the Raise budget modal, as signed block_actions / view_submission requests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.blocks import actions, button, header, section
from bot.outbox import enqueue
from guards.clock import ManualClock
from guards.migrations import begin_immediate, connect
from tests.scenario.test_alerts import waiting_for_a_trial

ADMIN = "U0ADMIN"
STRANGER = "U0STRANGER"
SCOPE = "acme/alice/rss-bot"
POLICY = {"admins": [ADMIN], "budgets": {"defaults": {"agent": {"day": "10.00"}}}}
# SCOPE's spend breaker trips on $2.50 and waits for a trial a minute later
TRIAL_POLICY = {
    **POLICY,
    "breakers": {"spend_rate": {"max": "2.00", "per_seconds": "10m"}, "cooldown_seconds": "1m"},
}


def alert_blocks(*buttons: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        header(f"Breaker opened: {SCOPE}"),
        section("spend rate $2.40 in 10m (limit $2.00) since 03:10"),
        actions(*buttons, block_id="alert:7:actions"),
    ]


async def post_alert(slack: Any, blocks: Any, *, ref: str = "alert:7:post") -> tuple[str, str]:
    """Post a message with buttons through the outbox; returns (channel, ts)."""
    args = {"channel": "C0ALERTS", "text": f"Breaker opened: {SCOPE}", "blocks": blocks}
    await slack.app.store.write(
        lambda tx: enqueue(tx, method="chat.postMessage", args=args, ref=ref)
    )
    await slack.fake.wait_for(lambda: slack.fake.posts("C0ALERTS"))
    call = slack.fake.posts("C0ALERTS")[-1]
    return "C0ALERTS", call.response["ts"]


async def click(
    slack: Any,
    action_id: str,
    value: str,
    channel: str,
    ts: str,
    *,
    user: str = ADMIN,
    **kwargs: Any,
) -> None:
    blocks = slack.fake.messages[(channel, ts)]["blocks"]
    r = await slack.click(
        action_id=action_id,
        value=value,
        user_id=user,
        channel=channel,
        ts=ts,
        blocks=blocks,
        block_id="alert:7:actions",
        text=f"Breaker opened: {SCOPE}",
        **kwargs,
    )
    assert r.status_code == 200 and r.text == "", r.text


async def force_open(slack: Any) -> None:
    await slack.app.store.write(
        lambda tx: slack.app.ns.breakers.force_open(tx, SCOPE, "U0OTHER", "test")
    )


async def test_approve_trial_updates_the_message_in_place(slack_http):
    slack = await slack_http(TRIAL_POLICY, clock=ManualClock())
    await waiting_for_a_trial(slack.app)
    blocks = alert_blocks(
        button("Approve trial", "breaker_approve", SCOPE),
        button("Keep open", "breaker_keep_open", SCOPE),
    )
    channel, ts = await post_alert(slack, blocks)
    await click(slack, "breaker_approve", SCOPE, channel, ts)
    await slack.fake.wait_for(lambda: slack.fake.calls_of("chat.update", ok=True))
    (update,) = slack.fake.calls_of("chat.update")
    assert update.args["channel"] == channel and update.args["ts"] == ts
    after = slack.fake.messages[(channel, ts)]["blocks"]
    assert after[:2] == blocks[:2]  # the facts stay
    assert after[2] == {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": "✅ trial (3 calls) approved by <@U0ADMIN> at 00:01"}
        ],
    }
    assert not [b for b in after if b["type"] == "actions"]
    row = await slack.app.store.write(lambda tx: slack.app.ns.breakers.get(tx, SCOPE))
    assert row.state == "half_open"
    audit = await slack.app.store.fetch(
        "SELECT actor, action FROM audit WHERE action LIKE 'breaker%'"
    )
    assert [tuple(r) for r in audit] == [
        ("nightshift", "breaker.trip"),  # what the breaker did on its own is there too
        ("nightshift", "breaker.trial_requested"),
        (ADMIN, "breaker.approve"),
    ]


async def test_a_click_is_on_disk_before_slack_hears_its_200(slack_http):
    """audit9 restart M1: a kill -9 just after the answer must not lose the click."""
    slack = await slack_http(TRIAL_POLICY, clock=ManualClock())
    await waiting_for_a_trial(slack.app)
    blocks = alert_blocks(button("Approve trial", "breaker_approve", SCOPE))
    channel, ts = await post_alert(slack, blocks)
    await click(slack, "breaker_approve", SCOPE, channel, ts)
    # at once, on a connection of its own: what a process started now would find
    audit = await slack.app.store.fetch("SELECT actor FROM audit WHERE action = 'breaker.approve'")
    assert [r[0] for r in audit] == [ADMIN]
    rows = await slack.app.store.fetch("SELECT args FROM outbox WHERE method = 'chat.update'")
    edits = [args for (args,) in rows if json.loads(args)["ts"] == ts]  # of the clicked message
    assert len(edits) == 1 and "approved by <@U0ADMIN>" in edits[0]


async def test_keep_open_by_a_non_admin_is_refused_to_them_only(slack_http):
    slack = await slack_http(POLICY)
    await force_open(slack)
    blocks = alert_blocks(button("Keep open", "breaker_keep_open", SCOPE))
    channel, ts = await post_alert(slack, blocks)
    await click(slack, "breaker_keep_open", SCOPE, channel, ts, user=STRANGER)
    await slack.fake.wait_for(lambda: slack.fake.responses["click"])
    (refusal,) = slack.fake.responses["click"]
    assert refusal == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": "Only admins can keep breakers open. Ask <@U0ADMIN>.",
    }
    assert slack.fake.calls_of("chat.update") == []
    assert slack.fake.messages[(channel, ts)]["blocks"] == blocks
    audit = await slack.app.store.fetch(
        "SELECT actor, action, target, detail FROM audit ORDER BY id"
    )
    assert tuple(audit[-1]) == (
        STRANGER,
        "refused",
        "keep breakers open",
        f"not an admin: button breaker_keep_open {SCOPE}",  # what was clicked (audit9 L6)
    )


async def test_a_stale_button_says_why_to_the_clicker(slack_http):
    slack = await slack_http(POLICY)  # the breaker is closed: nothing to approve
    channel, ts = await post_alert(slack, alert_blocks(button("Approve", "breaker_approve", SCOPE)))
    await click(slack, "breaker_approve", SCOPE, channel, ts)
    await slack.fake.wait_for(lambda: slack.fake.responses["click"])
    assert "is closed; there is nothing to approve" in slack.fake.responses["click"][0]["text"]
    assert slack.fake.calls_of("chat.update") == []


async def test_an_unknown_button(slack_http):
    slack = await slack_http(POLICY)
    channel, ts = await post_alert(slack, alert_blocks(button("?", "mystery", "x")))
    await click(slack, "mystery", "x", channel, ts)
    await slack.fake.wait_for(lambda: slack.fake.responses["click"])
    assert "not known" in slack.fake.responses["click"][0]["text"]


async def test_a_click_on_an_ephemeral_reply_replaces_it_through_response_url(slack_http):
    slack = await slack_http(TRIAL_POLICY, clock=ManualClock())
    await waiting_for_a_trial(slack.app)
    blocks = alert_blocks(button("Approve trial", "breaker_approve", SCOPE))
    r = await slack.click(
        action_id="breaker_approve",
        value=SCOPE,
        blocks=blocks,
        block_id="alert:7:actions",
        ephemeral=True,
    )
    assert r.status_code == 200
    await slack.fake.wait_for(lambda: slack.fake.responses["click"])
    (replaced,) = slack.fake.responses["click"]
    assert replaced["replace_original"] is True
    assert replaced["blocks"][-1]["elements"][0]["text"].startswith("✅ trial (3 calls) approved")
    assert slack.fake.calls_of("chat.update") == []


# -- Raise budget -------------------------------------------------------------------------


async def open_raise_modal(slack: Any) -> tuple[str, str, list[dict[str, Any]]]:
    blocks = alert_blocks(button("Raise budget", "budget_raise", SCOPE))
    channel, ts = await post_alert(slack, blocks)
    await click(slack, "budget_raise", SCOPE, channel, ts, trigger_id="777.888.trigger")
    await slack.fake.wait_for(lambda: slack.fake.views)
    return channel, ts, blocks


async def groupie_raises_to_12(slack: Any, *, metadata: str = SCOPE) -> Any:
    """U0GROUPIE (an admin through the S0OPS group) submits the open Raise budget form:
    the day limit to $12."""
    return await slack.submit(
        callback_id="budget_raise_modal",
        private_metadata=metadata,
        values={"amount": "12", "window": {"selected": "day"}},
        view_id=slack.fake.views[0]["id"],
        user_id="U0GROUPIE",
    )


async def test_raise_budget_modal_validates_then_sets_the_limit(slack_http):
    slack = await slack_http(POLICY)
    channel, ts, blocks = await open_raise_modal(slack)
    (opened,) = slack.fake.calls_of("views.open")
    assert opened.args["trigger_id"] == "777.888.trigger"
    view = slack.fake.views[0]
    assert view["callback_id"] == "budget_raise_modal"
    # the form carries what it showed: a limit set meanwhile is not overwritten unseen
    assert json.loads(view["private_metadata"]) == {"scope": SCOPE, "shown": {"day": 10_000_000}}
    assert "day $10.00" in view["blocks"][0]["text"]["text"]
    assert [b.get("block_id") for b in view["blocks"][1:]] == ["amount", "window", "for"]

    async def submit(amount: str, window: str = "day", user: str = ADMIN) -> Any:
        return await slack.submit(
            callback_id="budget_raise_modal",
            private_metadata=SCOPE,
            values={"amount": amount, "window": {"selected": window}},
            view_id=view["id"],
            user_id=user,
        )

    bad = await submit("lots")
    assert bad.status_code == 200
    assert bad.json()["response_action"] == "errors"
    assert "'lots' is not an amount" in bad.json()["errors"]["amount"]
    zero = await submit("0")  # a stop is `budget set … 0`, which it names (review28 R2 L2)
    assert zero.json()["errors"] == {
        "amount": "a raised budget is more than $0: $0.000001 (one micro-dollar) at the least"
        " (a $0 limit, a stop, is `/agent budget set <scope> 0 day`)"
    }
    refused = await submit("25", user=STRANGER)
    # whom to ask, as a command says it (audit27 style M2), in plain text under the field
    assert refused.json()["errors"] == {"amount": "Only admins can raise budgets. Ask @U0ADMIN."}
    assert await slack.app.store.fetch("SELECT * FROM budget_limits") == []
    [tried] = await slack.app.store.fetch(
        "SELECT detail FROM audit WHERE actor = ? AND action = 'refused'", (STRANGER,)
    )
    assert tried[0] == f"not an admin: Raise budget: {SCOPE} day $25.00"

    good = await submit("$25")
    assert good.status_code == 200 and good.text == ""
    limits = await slack.app.store.fetch(
        "SELECT scope, window, limit_micros, set_by FROM budget_limits"
    )
    assert [tuple(r) for r in limits] == [(SCOPE, "day", 25_000_000, ADMIN)]
    await slack.fake.wait_for(lambda: slack.fake.calls_of("chat.update", ok=True))
    after = slack.fake.messages[(channel, ts)]["blocks"]
    assert after[:2] == blocks[:2]
    assert after[2]["elements"][0]["text"] == (
        f"💰 day budget of `{SCOPE}` set to $25.00 (was $10.00) by <@U0ADMIN> at 00:00"
    )
    lower = await submit("5")  # the Raise form may lower a budget, and says so
    assert lower.status_code == 200 and lower.text == ""
    await slack.fake.wait_for(
        lambda: any("lowered to $5.00" in str(c.args) for c in slack.fake.calls)
    )


async def test_raise_budget_for_a_while_ends_by_itself(slack_http):
    """audit27 parity #3: the form's "For how long" sets a raise that ends by itself."""
    slack = await slack_http(POLICY, clock=ManualClock())
    channel, ts, _ = await open_raise_modal(slack)
    view = slack.fake.views[0]

    async def submit(lasting: str) -> Any:
        return await slack.submit(
            callback_id="budget_raise_modal",
            private_metadata=SCOPE,
            values={"amount": "25", "window": {"selected": "day"}, "for": lasting},
            view_id=view["id"],
        )

    for typed in ("2x", "10s", "100d", "-1h"):
        bad = await submit(typed)
        assert bad.json()["errors"]["for"].startswith("a duration like 2h or 1d: "), typed
    assert await slack.app.store.fetch("SELECT * FROM budget_limits") == []

    good = await submit("8h")
    assert good.status_code == 200 and good.text == ""
    rows = await slack.app.store.fetch("SELECT limit_micros, until - set_at FROM budget_limits")
    assert [tuple(r) for r in rows] == [(25_000_000, 8 * 3600)]
    await slack.fake.wait_for(lambda: slack.fake.calls_of("chat.update", ok=True))
    after = slack.fake.messages[(channel, ts)]["blocks"]
    assert after[2]["elements"][0]["text"] == (
        f"💰 day budget of `{SCOPE}` set to $25.00 (was $10.00) by <@U0ADMIN> at 00:00, until 08:00"
    )


async def test_raise_budget_says_the_amount_as_set_never_rounded(slack_http):
    """audit9 L1: $0.001 on a $10 limit read "lowered to $0.00 (was $10.00)"."""
    slack = await slack_http(POLICY)
    channel, ts, _ = await open_raise_modal(slack)
    done = await slack.submit(
        callback_id="budget_raise_modal",
        private_metadata=SCOPE,
        values={"amount": "0.001", "window": {"selected": "day"}},
        view_id=slack.fake.views[0]["id"],
    )
    assert done.status_code == 200 and done.text == ""
    await slack.fake.wait_for(lambda: slack.fake.calls_of("chat.update", ok=True))
    after = slack.fake.messages[(channel, ts)]["blocks"]
    assert after[2]["elements"][0]["text"] == (
        f"💰 day budget of `{SCOPE}` lowered to $0.001 (was $10.00) by <@U0ADMIN> at 00:00"
    )
    log = (await slack.command("audit 1"))["text"]
    assert f"`{SCOPE} day`: $10.00 → $0.001" in log


async def test_raise_budget_click_by_a_non_admin_opens_nothing(slack_http):
    slack = await slack_http(POLICY)
    channel, ts = await post_alert(slack, alert_blocks(button("Raise", "budget_raise", SCOPE)))
    await click(slack, "budget_raise", SCOPE, channel, ts, user=STRANGER)
    await slack.fake.wait_for(lambda: slack.fake.responses["click"])
    refusal = slack.fake.responses["click"][0]["text"]
    assert refusal == "Only admins can raise budgets. Ask <@U0ADMIN>."  # whom, by name
    assert slack.fake.views == []
    # a forged value's bad scope is quoted as text, as Approve trial's is (audit28 C1 L5)
    await click(slack, "budget_raise", "<!channel>|<https://evil.example> day", channel, ts)
    await slack.fake.wait_for(lambda: len(slack.fake.responses["click"]) == 2)
    refusal = slack.fake.responses["click"][1]["text"]
    assert refusal.startswith(
        "This button names a bad scope: '&lt;!channel&gt;|&lt;https://evil.example&gt;': "
    ), refusal
    assert "<!" not in refusal and "<http" not in refusal and slack.fake.views == []


async def test_raise_budget_opens_on_the_window_that_refused_the_call(slack_http):
    policy = {
        "admins": [ADMIN],
        "channels": {"alerts": "C0ALERTS"},
        "budgets": {"defaults": {"conversation": {"total": "2.00"}}},
    }
    slack = await slack_http(policy)
    app = slack.app
    tok = await app.token("acme/bob")
    body = {"scope": "acme/bob/chat/c11", "idempotency_key": "big", "max_cost_micros": 2_100_000}
    refused = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert refused.status_code == 402 and refused.json()["window"] == "total"

    def button(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any] | None:
        elements = (e for block in blocks for e in block.get("elements") or [])
        return next((e for e in elements if e.get("action_id") == action_id), None)

    def alert_post() -> Any:  # the budget alert, once posted with its buttons
        posts = slack.fake.posts("C0ALERTS")
        return next((p for p in posts if button(p.args.get("blocks") or [], "budget_raise")), None)

    await slack.fake.wait_for(lambda: alert_post() is not None)
    channel, ts = "C0ALERTS", alert_post().response["ts"]
    blocks = slack.fake.messages[(channel, ts)]["blocks"]

    async def press(action_id: str, **extra: Any) -> dict[str, Any]:
        pressed = button(blocks, action_id)
        assert pressed is not None, action_id
        r = await slack.click(
            action_id=action_id,
            value=pressed["value"],
            user_id=ADMIN,
            channel=channel,
            ts=ts,
            blocks=blocks,
            block_id=blocks[-1].get("block_id", "actions"),
            text="Budget refused a call",
            **extra,
        )
        assert r.status_code == 200, r.text
        return pressed

    raised = await press("budget_raise", trigger_id="1.2.trigger")
    assert raised["value"] == "acme/bob/chat/c11 total"
    await slack.fake.wait_for(lambda: slack.fake.views)
    [view] = slack.fake.views
    assert json.loads(view["private_metadata"]) == {
        "scope": "acme/bob/chat/c11",
        "shown": {"total": 2_000_000},
    }
    window = next(b for b in view["blocks"] if b.get("block_id") == "window")
    assert window["element"]["initial_option"]["value"] == "total"
    # the other buttons of the same message still name the alert: Resolve resolves it
    await press("alert_resolve")
    await slack.fake.wait_for(
        lambda: "resolved" in str(slack.fake.messages[(channel, ts)]["blocks"])
    )
    [(resolved_at,)] = await app.store.fetch(
        "SELECT resolved_at FROM alerts WHERE kind = 'budget_exhausted'"
    )
    assert resolved_at is not None


async def test_a_raise_that_leaves_the_alert_open_keeps_its_buttons_and_shows_the_change(
    slack_http,
):
    """audit9 M2: a raise of another window left an open, escalating alert with no button."""
    policy = {
        "admins": [ADMIN],
        "channels": {"alerts": "C0ALERTS"},
        "budgets": {"defaults": {"agent": {"day": "10.00"}}},
    }
    slack = await slack_http(policy)
    app, fake = slack.app, slack.fake
    agent = "acme/erin/e-bot"
    tok = await app.token(agent)
    for key, micros, status in (("hold", 9_500_000, 201), ("ask", 1_000_000, 402)):
        body = {"scope": agent, "idempotency_key": key, "max_cost_micros": micros}
        r = await app.request("POST", "/v1/reservations", token=tok, json=body)
        assert r.status_code == status, r.text

    def message() -> dict[str, Any]:
        post = next(p for p in fake.posts("C0ALERTS") if "budget_raise" in str(p.args))
        return dict(fake.messages[("C0ALERTS", post.response["ts"])])

    def labels() -> list[str]:
        elements = (e for b in message()["blocks"] if b["type"] == "actions" for e in b["elements"])
        return [e["text"]["text"] for e in elements]

    def contexts() -> list[str]:
        return [b["elements"][0]["text"] for b in message()["blocks"] if b["type"] == "context"]

    await fake.wait_for(lambda: any("budget_raise" in str(p.args) for p in fake.posts("C0ALERTS")))
    every = ["Acknowledge", "Silence 1h", "Escalate now", "Raise budget", "Resolve"]
    assert labels() == every
    ts = fake.posts("C0ALERTS")[0].response["ts"]

    async def raise_to(amount: str, window: str) -> str:
        blocks = message()["blocks"]
        views, answers = len(fake.views), len(fake.responses["click"])
        r = await slack.click(
            action_id="budget_raise",
            value=f"{agent} day",
            channel="C0ALERTS",
            ts=ts,
            blocks=blocks,
            block_id=blocks[-1]["block_id"],
            text="Budget refused a call",
            trigger_id="1.2.trigger",
        )
        assert r.status_code == 200, r.text
        await fake.wait_for(lambda: len(fake.views) > views)
        done = await slack.submit(
            callback_id="budget_raise_modal",
            private_metadata=agent,
            values={"amount": amount, "window": {"selected": window}},
            view_id=fake.views[-1]["id"],
        )
        assert done.status_code == 200 and done.text == "", done.text
        await fake.wait_for(lambda: len(fake.responses["click"]) > answers)
        return str(fake.responses["click"][-1]["text"])

    said = await raise_to("20", "week")  # the day limit refused the call: still refused
    line = f"💰 week budget of `{agent}` set to $20.00 by <@{ADMIN}> at 00:00"
    assert said == f"{line}; #1 stays open (it is about the day budget)."  # week had no limit
    await fake.wait_for(lambda: line in contexts())
    assert labels() == every  # still open, still escalating: every button stays
    [(resolved_at,)] = await app.store.fetch("SELECT resolved_at FROM alerts")
    assert resolved_at is None

    said = await raise_to("30", "day")  # this one clears it: resolved at once
    assert said == (
        f"💰 day budget of `{agent}` set to $30.00 (was $10.00) by <@{ADMIN}> at 00:00;"
        " #1 is resolved. It overrides the policy file's $10.00, restarts included, until"
        f" `/agent budget set {agent} default day`."  # which one wins, as `budget set` says
    )
    await fake.wait_for(lambda: labels() == [])
    assert any(
        c.startswith(f"✅ resolved by <@{ADMIN}> at 00:00 — the day budget was raised to $30.00")
        for c in contexts()
    )
    assert line not in contexts()  # resolved: the change is the reason, said once


async def test_a_slow_raise_budget_submit_is_acked_within_the_budget_and_told_after(
    slack_http, fake_slack
):
    """audit26b M1: with Slack slow to list an admin group, a Raise budget submit was acked
    after 6 s: Slack told the user it failed, though the budget was set."""
    from bot.slack.surface import ACK_BUDGET

    slack = await slack_http({**POLICY, "admin_groups": ["S0OPS"]})
    fake_slack.groups["S0OPS"] = ["U0GROUPIE"]
    channel, ts, _ = await open_raise_modal(slack)
    fake_slack.stall("usergroups.users.list")

    started = asyncio.get_running_loop().time()
    done = await groupie_raises_to_12(slack)
    assert asyncio.get_running_loop().time() - started < ACK_BUDGET + 0.5
    assert done.status_code == 200 and done.text == ""  # the form closes

    fake_slack._stalls.pop("usergroups.users.list").set()  # Slack answers at last
    await fake_slack.wait_for(lambda: fake_slack.calls_of("chat.update", ok=True))
    after = fake_slack.messages[(channel, ts)]["blocks"]
    assert after[2]["elements"][0]["text"].startswith(
        f"💰 day budget of `{SCOPE}` set to $12.00 (was $10.00) by <@U0GROUPIE>"
    )


async def test_a_slow_raise_budget_refusal_reaches_the_submitter_by_dm(slack_http, fake_slack):
    """audit26b M1: a refusal found after the ack can no longer show under the field."""
    slack = await slack_http({**POLICY, "admin_groups": ["S0OPS"]})
    await open_raise_modal(slack)
    fake_slack.stall("usergroups.users.list")
    done = await slack.submit(
        callback_id="budget_raise_modal",
        private_metadata=SCOPE,
        values={"amount": "12", "window": {"selected": "day"}},
        view_id=fake_slack.views[0]["id"],
        user_id=STRANGER,
    )
    assert done.status_code == 200 and done.text == ""
    fake_slack._stalls.pop("usergroups.users.list").set()
    await fake_slack.wait_for(lambda: fake_slack.posts(STRANGER))
    assert fake_slack.texts(STRANGER) == [
        f"Nothing was changed (Raise budget: {SCOPE} day $12.00): Only admins can raise budgets."
        " Ask <@U0ADMIN>."
    ]
    assert await slack.app.store.fetch("SELECT * FROM budget_limits") == []


async def test_a_slow_submit_on_a_limit_changed_meanwhile_says_to_open_the_form_again(
    slack_http, fake_slack
):
    """review27 L4: the DM said "submit again to ... anyway", but the form had closed."""
    slack = await slack_http({**POLICY, "admin_groups": ["S0OPS"]})
    fake_slack.groups["S0OPS"] = ["U0GROUPIE"]
    await open_raise_modal(slack)
    await slack.command(f"budget set {SCOPE} 20 day")  # meanwhile, by another admin
    fake_slack.stall("usergroups.users.list")
    done = await groupie_raises_to_12(slack, metadata=fake_slack.views[0]["private_metadata"])
    assert done.status_code == 200 and done.text == ""  # the form closed at its ack
    fake_slack._stalls.pop("usergroups.users.list").set()
    await fake_slack.wait_for(lambda: fake_slack.posts("U0GROUPIE"))
    [said] = fake_slack.texts("U0GROUPIE")
    assert said.startswith(
        f"Nothing was changed (Raise budget: {SCOPE} day $12.00): the day limit is now"
        f" $20.00 (set by <@{ADMIN}> at "
    )
    assert said.endswith("). The form is closed: to lower it to $12.00 anyway, open it again.")
    assert "submit again" not in said
    limits = await slack.app.store.fetch("SELECT limit_micros FROM budget_limits")
    assert [r[0] for r in limits] == [20_000_000]


async def test_a_submit_the_database_refuses_at_once_says_so_under_the_field(
    slack_http, monkeypatch
):
    """audit27 style M2: the form said "try again in a minute" in words of its own, not the
    ones a command or a button refused by the same database says."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    slack = await slack_http(POLICY)
    await open_raise_modal(slack)
    other = connect(slack.app.ns.settings.db)
    begin_immediate(other)  # another process holds the write lock
    try:
        refused = await slack.submit(
            callback_id="budget_raise_modal",
            private_metadata=SCOPE,
            values={"amount": "12", "window": {"selected": "day"}},
            view_id=slack.fake.views[0]["id"],
        )
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert refused.json()["response_action"] == "errors"
    [said] = refused.json()["errors"].values()
    assert said == (  # Slack shows 150 characters under a field: what to do comes first
        "Nothing was changed: Nightshift cannot write to its database; try again in a minute"
        " (OperationalError: database is locked)"
    )
    limits = await slack.app.store.fetch("SELECT limit_micros FROM budget_limits")
    assert 12_000_000 not in [r[0] for r in limits]


async def test_a_slow_submit_the_database_refuses_is_told_to_its_submitter_straight(
    slack_http, fake_slack, monkeypatch
):
    """review27 M1: the refusal DM of a submit that outlived its ack went through the
    outbox, which lives in the database that refused the change: nobody was told."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.5)
    slack = await slack_http({**POLICY, "admin_groups": ["S0OPS"]})
    fake_slack.groups["S0OPS"] = ["U0GROUPIE"]
    await open_raise_modal(slack)
    fake_slack.stall("usergroups.users.list")
    other = connect(slack.app.ns.settings.db)
    begin_immediate(other)  # another process holds the write lock (or: the disk is full)
    try:
        done = await groupie_raises_to_12(slack)
        assert done.status_code == 200 and done.text == ""  # the form closed at its ack
        fake_slack._stalls.pop("usergroups.users.list").set()
        for _ in range(50):
            if fake_slack.texts("U0GROUPIE"):
                break
            await asyncio.sleep(0.1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    [said] = fake_slack.texts("U0GROUPIE")
    assert said.startswith("Nothing was changed (Raise budget: ")
    assert said.endswith(  # as a command refused by the database says it (audit27 style M2)
        "): Nightshift cannot write to its database right now (OperationalError: database is"
        " locked (another process holds its write lock: a sqlite3 shell or a backup tool in a"
        " transaction? Nightshift's own commands let go within milliseconds)). Agents' calls"
        " are refused too. Run this again in a minute (if a 🔴 notice is in the alerts"
        " channel, once it has its ✅ reply); `/agent status` says whether it can write."
    )
    limits = await slack.app.store.fetch("SELECT limit_micros FROM budget_limits")
    assert 12_000_000 not in [r[0] for r in limits]
