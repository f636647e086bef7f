"""Webhooks across a reload (SIGHUP): a webhook renamed or taken out still resolves the
incidents it opened; a rotated ``secret_file`` signs the next delivery. The whole app in
Slack HTTP mode, a real receiver on 127.0.0.1, time on a ManualClock; a reload is the
check a SIGHUP makes (:func:`bot.reload.check_reload`) and then a start of the app on
the same database with the new policy, as the ``exec`` does."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.reload import check_reload
from guards.clock import ManualClock
from guards.config import load_policy
from tests.fakes.webhook_receiver import Received, WebhookReceiver, webhook_receiver
from tests.scenario.test_slack_commands import spend
from tests.scenario.test_webhooks import BOT, SECRET, SECRET_ENV, deliveries, policy, send

__all__ = ["webhook_receiver"]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def signed_with(secret: str, received: Received) -> bool:
    timestamp = received.headers["X-Nightshift-Timestamp"]
    base = b"v1:" + timestamp.encode() + b":" + received.body
    expected = "v1=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.headers["X-Nightshift-Signature"])


def sighup(
    tmp_path: Path, before: dict[str, Any], after: dict[str, Any], caplog: Any
) -> str | None:
    """What a SIGHUP says moving from ``before`` to ``after``: its log; the snapshot
    it would restart on is dropped (the test starts the app on ``after`` itself)."""
    config = tmp_path / "nightshift.yml"
    config.write_text(yaml.safe_dump(before))
    current = load_policy(config)
    config.write_text(yaml.safe_dump(after))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nightshift"):
        snapshot = check_reload(str(config), current, had_file=True)
    if snapshot is not None:
        os.unlink(snapshot)
    return caplog.text if snapshot is not None else None


async def paged_then_reloaded(
    slack_http: Any, tmp_path: Path, before: dict[str, Any], after: dict[str, Any]
) -> tuple[Any, int]:
    """A P0 pages the webhook of ``before`` (delivered), then the app restarts on ``after``."""
    clock = ManualClock()
    db = tmp_path / "reload.db"
    first = await slack_http(before, clock=clock, db=db)
    await spend(first.app, BOT, micros=2_000_000, key="k1")
    await first.app.ns.extras["alerts"].tick()
    await send(first)
    [(alert_id,)] = await first.app.store.fetch("SELECT id FROM alerts WHERE tier = 'P0'")
    await first.app.ns.stop()
    clock.advance(60)
    return await slack_http(after, clock=clock, db=db), int(alert_id)


def renamed(p: dict[str, Any], name: str, *, url: str | None = None) -> dict[str, Any]:
    """``p`` with its webhook ``pager`` named ``name`` (at ``url``, when given)."""
    hook = dict(p["webhooks"]["pager"])
    if url is not None:
        hook["url"] = url
    steps = [
        {**s, "notify": f"webhook:{name}"} if s["notify"] == "webhook:pager" else s
        for s in p["oncall"]["escalation"]
    ]
    return {**p, "webhooks": {name: hook}, "oncall": {**p["oncall"], "escalation": steps}}


async def test_a_webhook_renamed_at_a_reload_still_resolves_what_it_opened(
    slack_http, webhook_receiver: WebhookReceiver, tmp_path: Path, caplog: Any
):
    before = policy(webhook_receiver, webhook_after="0m")
    after = renamed(before, "phone")
    said = sighup(tmp_path, before, after, caplog)
    assert said is not None
    assert "webhook pager is now named phone (the same url): its events still waiting" in said
    second, alert_id = await paged_then_reloaded(slack_http, tmp_path, before, after)
    acked = await second.command(f"ack {alert_id}", user="U0ONCALL")
    assert "acknowledged" in acked["text"], acked["text"]
    await send(second)
    assert webhook_receiver.events() == ["trigger", "resolve"]
    trigger, resolve = webhook_receiver.requests
    assert resolve.json["dedup_key"] == trigger.json["dedup_key"]
    assert signed_with(SECRET, resolve)
    assert [r["state"] for r in await deliveries(second)] == ["delivered", "delivered"]


async def test_a_webhook_taken_out_at_a_reload_resolves_at_the_receiver_its_trigger_reached(
    slack_http, webhook_receiver: WebhookReceiver, tmp_path: Path, caplog: Any
):
    before = policy(webhook_receiver, webhook_after="0m")
    moved = webhook_receiver.url + "/N3WK3Y0123"  # another receiver, under another name
    after = renamed(before, "pd", url=moved)
    said = sighup(tmp_path, before, after, caplog)
    assert said is not None
    assert (
        "webhook pager is gone from the policy: the incidents it opened still get their"
        " resolve as their alerts end, sent to 127.0.0.1 as their triggers were" in said
    )
    second, alert_id = await paged_then_reloaded(slack_http, tmp_path, before, after)
    await second.command(f"resolve {alert_id}")
    await send(second)
    assert webhook_receiver.events() == ["trigger", "resolve"]
    assert [r.path for r in webhook_receiver.requests] == ["/hook", "/hook"]  # where it opened
    assert signed_with(SECRET, webhook_receiver.requests[1])  # signed as its trigger was
    rows = await deliveries(second)
    assert [(r["webhook"], r["event"], r["state"]) for r in rows] == [
        ("pager", "trigger", "delivered"),
        ("pager", "resolve", "delivered"),
    ]
    recorded = json.loads(rows[0]["target"])
    assert (recorded["url"], recorded["secret_env"]) == (webhook_receiver.url, SECRET_ENV)
    assert SECRET not in rows[0]["target"]  # names, never the secret


async def test_a_rewritten_secret_file_signs_the_next_delivery_without_a_restart(
    slack_http, webhook_receiver: WebhookReceiver, tmp_path: Path, caplog: Any
):
    secret = tmp_path / "pager.secret"
    secret.write_text("first-s3cret\n")
    p = policy(webhook_receiver, webhook_after="0m")
    p["webhooks"]["pager"] = {"url": webhook_receiver.url, "secret_file": str(secret)}
    clock = ManualClock()
    slack = await slack_http(p, clock=clock)
    await spend(slack.app, BOT, micros=2_000_000, key="k1")
    await slack.app.ns.extras["alerts"].tick()
    await send(slack)
    [trigger] = webhook_receiver.requests
    assert signed_with("first-s3cret", trigger)

    secret.write_text("")  # being rewritten: nothing goes out unsigned, it is tried again
    [(alert_id,)] = await slack.app.store.fetch("SELECT id FROM alerts WHERE tier = 'P0'")
    await slack.command(f"ack {alert_id}", user="U0ONCALL")
    await send(slack)
    assert webhook_receiver.events() == ["trigger"]
    resolve_row = (await deliveries(slack))[1]
    assert resolve_row["state"] == "pending"
    assert f"not sent: the secret_file {secret} is empty" in resolve_row["last_error"]

    secret.write_text("second-s3cret\n")
    # a SIGHUP has nothing to restart for, and says why
    said = check_reload_text(tmp_path, p, caplog)
    assert "has not changed since it was read; nothing to apply (a secret_file is read at" in said
    assert "for pager, is in use already)" in said
    clock.advance(10)
    await send(slack)
    assert webhook_receiver.events() == ["trigger", "resolve"]
    assert signed_with("second-s3cret", webhook_receiver.requests[1])


def check_reload_text(tmp_path: Path, p: dict[str, Any], caplog: Any) -> str:
    config = tmp_path / "same.yml"
    config.write_text(yaml.safe_dump(p))
    current = load_policy(config)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nightshift"):
        assert check_reload(str(config), current, had_file=True) is None
    return str(caplog.text)
