"""Webhooks after review25 (H2): a resolve whose recorded ``secret_env`` is gone is held,
never sent unsigned; a delivery held back here is not told as the receiver's refusal; a
SIGHUP giving a webhook another url says so; a channel's storm summary of P0s whose chain
pages a webhook first mentions nobody. The whole app in Slack HTTP mode, a real receiver
on 127.0.0.1, time on a ManualClock."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhook_storms import agents, trip
from tests.scenario.test_webhooks import ALERTS, SECRET_ENV, deliveries, policy, send
from tests.scenario.test_webhooks_reload import _secret, paged_then_reloaded, renamed, sighup

__all__ = ["_secret", "webhook_receiver"]


async def test_a_resolve_whose_secret_variable_is_gone_is_held_not_sent_unsigned(
    slack_http,
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    before = policy(webhook_receiver, webhook_after="0m")
    after = renamed(before, "pd", url=webhook_receiver.url + "/N3WK3Y0123")  # taken out
    after["webhooks"]["pd"].pop("secret_env")
    second, alert_id = await paged_then_reloaded(slack_http, tmp_path, before, after)
    monkeypatch.delenv(SECRET_ENV)  # taken out of the unit file with its webhook
    await second.command(f"resolve {alert_id}")
    await send(second)
    assert webhook_receiver.events() == ["trigger"]  # (it went, unsigned)
    resolve = (await deliveries(second))[-1]
    assert (resolve["event"], resolve["state"], resolve["last_status"]) == (
        "resolve",
        "pending",
        None,
    )
    assert resolve["last_error"] == (
        f"not sent: its secret_env variable {SECRET_ENV} is no longer set in Nightshift's"
        " environment: set it and restart, or the incident at the receiver stays open"
    )
    note = f"⚠️ The resolve to webhook pager (delivery {resolve['id']}) was not sent: its"
    await second.fake.wait_for(lambda: any(t.startswith(note) for t in second.fake.texts()))
    assert not any("did not take" in t for t in second.fake.texts())  # (the receiver's)


async def test_a_sighup_giving_a_webhook_another_url_says_where_its_resolves_go(
    webhook_receiver: WebhookReceiver, tmp_path: Path, caplog: Any
):
    before = policy(webhook_receiver)
    after = policy(webhook_receiver)
    after["webhooks"]["pager"]["url"] = "https://bridge.example/hook"
    said = sighup(tmp_path, before, after, caplog)
    assert said is not None
    was = f"127.0.0.1:{urlsplit(webhook_receiver.url).port}"  # (its port: recheck25c L3)
    assert (
        f"webhook pager's url changed ({was} to bridge.example): its events still waiting,"
        f" and the resolves of the incidents it opened at {was}, go to bridge.example now" in said
    ), said


async def test_a_storm_summary_of_p0s_paging_a_webhook_first_mentions_nobody(
    slack_http, webhook_receiver: WebhookReceiver
):
    p = policy(webhook_receiver)
    p["oncall"]["escalation"] = [
        {"notify": "webhook:pager", "after": "0m"},
        {"notify": "rotation:primary", "after": "5m"},
    ]
    p["alerts"] = {"repeat_escalation": 0, "fold_after": 2}
    slack = await slack_http(p, clock=ManualClock())
    await trip(slack, agents(0, 8))

    def summaries() -> list[str]:
        posts = [str(c.args["text"]) for c in slack.fake.posts(ALERTS)]
        return [t for t in posts if "Alert storm" in t]

    await slack.fake.wait_for(summaries)
    [text] = summaries()
    # (how its alerts' pages went when it went out: follows them since recheck26 Kc M1)
    assert text.startswith(("📟 Paging via webhook pager… ", "📟 Paged via webhook pager: ")), text
    assert "<@" not in text, text  # U0ONCALL is paged at the second step, 5 minutes on
