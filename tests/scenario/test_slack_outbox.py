"""The outbox against the fake Slack: rate limits, errors, order, references, files, metrics."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.outbox import DeliveryFailed, RetryLater, delivered, enqueue, outbox_health
from bot.slack.deliver import SlackDeliverer
from guards.clock import ManualClock
from guards.events import BreakerClosed, BreakerOpened
from tests.fakes.slack_api import BOT_TOKEN
from tests.scenario.test_alerts import ALERTS, alerts_of, emit
from tests.scenario.test_alerts import POLICY as ALERTS_POLICY

POLICY = {"admins": ["U0ADMIN"]}


async def put(slack: Any, method: str, args: dict[str, Any], **kwargs: Any) -> int:
    row_id: int = await slack.app.store.write(
        lambda tx: enqueue(tx, method=method, args=args, **kwargs)
    )
    return row_id


async def rows(slack: Any) -> list[tuple[Any, ...]]:
    found = await slack.app.store.fetch(
        "SELECT method, state, attempts, last_error FROM outbox ORDER BY id"
    )
    return [tuple(r) for r in found]


async def series(slack: Any, name: str) -> list[str]:
    r = await slack.app.client.get("/metrics")
    return sorted(line for line in r.text.splitlines() if line.startswith(name))


async def metric(slack: Any, name: str) -> list[str]:
    """The series of ``name`` that counted something (the usual ones start at 0)."""
    return [line for line in await series(slack, name) if not line.endswith(" 0.0")]


async def test_the_usual_outbox_series_exist_at_zero_before_anything_happens(slack_http):
    """An alert rule on `increase(nightshift_outbox_failed_total[5m]) > 0` needs a series."""
    slack = await slack_http(POLICY)
    for method in ("chat.postMessage", "chat.update"):
        assert f'nightshift_outbox_failed_total{{method="{method}"}} 0.0' in await series(
            slack, "nightshift_outbox_failed_total"
        )
        retried = await series(slack, "nightshift_outbox_retried_total")
        assert f'nightshift_outbox_retried_total{{method="{method}",reason="network"}} 0.0' in (
            retried
        )


async def test_a_429_on_the_first_post_delivers_later_exactly_once(slack_http, fake_slack):
    slack = await slack_http(POLICY)
    fake_slack.fail("chat.postMessage", status=429, retry_after=1)
    await put(slack, "chat.postMessage", {"channel": "C0ALERTS", "text": "budget spent"}, ref="a1")
    await fake_slack.wait_for(lambda: fake_slack.posts("C0ALERTS"), within=5)
    limited, ok = fake_slack.calls_of("chat.postMessage")
    assert limited.status == 429 and ok.ok
    assert ok.at - limited.at >= 0.95  # Retry-After was honoured
    await slack.outbox.drain(0.3)
    assert fake_slack.texts("C0ALERTS") == ["budget spent"]
    assert await rows(slack) == [("chat.postMessage", "delivered", 2, None)]
    assert await delivered(slack.app.store, "a1") == ("C0ALERTS", ok.response["ts"])
    assert await metric(slack, "nightshift_outbox_retried_total") == [
        'nightshift_outbox_retried_total{method="chat.postMessage",reason="ratelimited"} 1.0'
    ]
    assert await metric(slack, "nightshift_outbox_delivered_total") == [
        'nightshift_outbox_delivered_total{method="chat.postMessage"} 1.0'
    ]


async def test_server_errors_are_retried_with_backoff(slack_http, fake_slack):
    slack = await slack_http(POLICY)
    fake_slack.fail("chat.postMessage", status=503, retry_after=None)
    await put(slack, "chat.postMessage", {"channel": "C1", "text": "hello"})
    await fake_slack.wait_for(lambda: fake_slack.posts("C1"), within=5)
    failed, ok = fake_slack.calls_of("chat.postMessage")
    assert failed.status == 503 and ok.at - failed.at >= 0.95  # backoff(1) = 1 s
    await slack.outbox.drain(0.3)
    assert (await rows(slack))[0][:3] == ("chat.postMessage", "delivered", 2)


async def test_order_per_channel_and_references_wait_for_their_post(slack_http, fake_slack):
    slack = await slack_http(POLICY)
    fake_slack.fail("chat.postMessage", status=429, retry_after=1)

    def write(tx):
        enqueue(tx, method="chat.postMessage", args={"channel": "C0ALERTS", "text": "v1"}, ref="p")
        enqueue(
            tx,
            method="chat.update",
            args={"channel": "$ref:p.channel", "ts": "$ref:p.ts", "text": "v2"},
        )
        enqueue(tx, method="chat.postMessage", args={"channel": "C0ALERTS", "text": "second"})

    await slack.app.store.write(write)
    await fake_slack.wait_for(lambda: len(fake_slack.posts("C0ALERTS")) == 2, within=6)
    await fake_slack.wait_for(lambda: fake_slack.calls_of("chat.update", ok=True), within=3)
    ok_calls = [c for c in fake_slack.calls if c.ok and c.method.startswith("chat.")]
    assert [c.args.get("text") for c in ok_calls] == ["v1", "v2", "second"] or [
        c.args.get("text") for c in ok_calls
    ] == ["v1", "second", "v2"]
    first_post = fake_slack.posts("C0ALERTS")[0]
    assert first_post.args["text"] == "v1"
    (update,) = fake_slack.calls_of("chat.update")
    assert update.args["ts"] == first_post.response["ts"]
    assert update.args["channel"] == "C0ALERTS"
    assert fake_slack.messages[("C0ALERTS", first_post.response["ts"])]["text"] == "v2"


async def test_a_permanent_error_fails_the_row_and_its_dependents(slack_http, fake_slack):
    slack = await slack_http(POLICY)
    fake_slack.fail("chat.postMessage", status=200, retry_after=None, error="channel_not_found")

    def write(tx):
        enqueue(tx, method="chat.postMessage", args={"channel": "C0GONE", "text": "x"}, ref="g")
        enqueue(
            tx, method="chat.update", args={"channel": "C0GONE", "ts": "$ref:g.ts", "text": "y"}
        )

    await slack.app.store.write(write)
    await slack.outbox.drain(1.0)
    states = await rows(slack)
    assert [s[1] for s in states] == ["failed", "failed"]
    assert states[0][3] == "Slack error channel_not_found"
    assert "refers to 'g', which failed" in states[1][3]
    assert fake_slack.calls_of("chat.update") == []
    health = await outbox_health(slack.app.store)
    assert (health.pending, health.failed, health.ok) == (0, 2, False)
    assert "chat.update to C0GONE" in (health.last_error or "")
    assert await metric(slack, "nightshift_outbox_failed_total") == [
        'nightshift_outbox_failed_total{method="chat.postMessage"} 1.0',
        'nightshift_outbox_failed_total{method="chat.update"} 1.0',
    ]


async def test_each_channel_is_paced_and_others_are_not_held_back(slack_http, fake_slack):
    slack = await slack_http(POLICY)
    slack.outbox.pace_seconds = 1.0
    fake_slack.rate_limit_per_channel = True  # more than 1 msg/s in a channel → 429

    def write(tx):
        for i in range(3):
            enqueue(tx, method="chat.postMessage", args={"channel": "C0BUSY", "text": f"m{i}"})
        enqueue(tx, method="chat.postMessage", args={"channel": "C0QUIET", "text": "q"})

    await slack.app.store.write(write)
    await fake_slack.wait_for(lambda: len(fake_slack.posts("C0BUSY")) == 3, within=6)
    busy = fake_slack.posts("C0BUSY")
    assert [c.args["text"] for c in busy] == ["m0", "m1", "m2"]
    assert all(b.at - a.at >= 0.95 for a, b in itertools.pairwise(busy))
    assert fake_slack.posts("C0QUIET")[0].at < busy[1].at
    assert [c for c in fake_slack.calls if c.status == 429] == []


async def test_files_upload_uses_the_external_upload_flow(slack_http, fake_slack):
    slack = await slack_http(POLICY)
    content = "# Digest\n3 alerts, 1 P0\n"
    args = {
        "channel": "C0DIGEST",
        "filename": "digest.md",
        "title": "Digest 2026-01-01",
        "initial_comment": "Yesterday in one page",
        "content_b64": base64.b64encode(content.encode()).decode(),
    }
    await put(slack, "files.upload", args, ref="digest")
    await fake_slack.wait_for(lambda: fake_slack.calls_of("files.completeUploadExternal"))
    methods = [c.method for c in fake_slack.calls if c.method != "auth.test"]
    assert methods == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    assert list(fake_slack.uploads.values()) == [content.encode()]
    complete = fake_slack.calls_of("files.completeUploadExternal")[0]
    assert complete.args["channel_id"] == "C0DIGEST"
    assert complete.args["initial_comment"] == "Yesterday in one page"
    await slack.outbox.drain(0.3)
    assert (await rows(slack))[0][1] == "delivered"


async def test_the_deliverer_sorts_slack_answers(fake_slack):
    deliver = SlackDeliverer(AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.url)).deliver
    ok = await deliver("chat.postMessage", {"channel": "U0DANA", "text": "you are paged"})
    assert ok.channel == "U0DANA" and ok.ts
    fake_slack.fail("chat.update", status=429, retry_after=7)
    with pytest.raises(RetryLater) as limited:
        await deliver("chat.update", {"channel": "C", "ts": "1", "text": "x"})
    assert (limited.value.after, limited.value.kind) == (7.0, "ratelimited")
    with pytest.raises(DeliveryFailed, match="message_not_found"):
        await deliver("chat.update", {"channel": "C", "ts": "1", "text": "x"})
    with pytest.raises(DeliveryFailed, match="answered 404"):
        await deliver(
            "response_url", {"url": f"{fake_slack.root}/nowhere", "payload": {"text": "x"}}
        )
    hook = await deliver(
        "response_url", {"url": fake_slack.response_url("h"), "payload": {"text": "x"}}
    )
    assert hook.ts is None and fake_slack.responses["h"] == [{"text": "x"}]
    with pytest.raises(DeliveryFailed, match="not base64"):
        await deliver("files.upload", {"channel": "C", "content_b64": "%%%"})
    down = SlackDeliverer(AsyncWebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/"))
    with pytest.raises(RetryLater) as network:
        await down.deliver("chat.postMessage", {"channel": "C", "text": "x"})
    assert network.value.kind == "network"
    # where it tried, in words (audit16 observability L3: a repr of ConnectionKey(...))
    assert network.value.reason.startswith(
        "network error: cannot reach Slack at http://127.0.0.1:9/api/ (ClientConnectorError"
    )
    assert "ConnectionKey" not in network.value.reason
    # a response_url that cannot be reached names its own host, not the API's (recheck28
    # Kc L3), and not its path (a reply link)
    with pytest.raises(RetryLater) as hook_down:
        args = {"url": "http://127.0.0.1:9/actions/T1/2/secret", "payload": {"text": "x"}}
        await down.deliver("response_url", args)
    assert hook_down.value.kind == "network"
    assert hook_down.value.reason.startswith(
        "network error: cannot reach the response_url's host http://127.0.0.1:9 (ClientConnector"
    ), hook_down.value.reason
    assert "/api/" not in hook_down.value.reason and "secret" not in hook_down.value.reason


async def test_a_resolution_made_while_its_alert_post_is_retried_is_shown_next(
    slack_http, fake_slack
):
    """audit24 B L1: an alert's post refused with a 500 went out 🟠 with its buttons, and
    its resolution waited behind the post of the next alert in the channel. After a 5xx
    (maybe shown) the post goes out as it was and the resolution right after it; after
    a 429 (Slack showed nothing) the post goes out resolved."""
    slack = await slack_http(ALERTS_POLICY, clock=ManualClock())
    app = slack.app

    async def alert(event: Any) -> None:
        await emit(app, event)
        await alerts_of(slack).process()

    def opened(scope: str) -> Any:
        return BreakerOpened(at=app.clock.now(), scope=scope, trip="failures", reason="r")

    def closed(scope: str) -> Any:
        return BreakerClosed(at=app.clock.now(), scope=scope, reason="fixed")

    def lane() -> list[tuple[str, str, str]]:
        """(method, scope, icon) of the calls Slack took in the alerts channel, in order."""
        return [
            (c.method, c.args["text"].split(" — ")[1].split(":")[0], c.args["text"][0])
            for c in fake_slack.calls
            if c.ok
            and c.method in ("chat.postMessage", "chat.update")
            and c.args.get("channel") == ALERTS
        ]

    fake_slack.fail("chat.postMessage", status=500, retry_after=None, times=2)
    await alert(opened("acme/pre/p1"))
    await fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postMessage", ok=False))
    await alert(opened("acme/pre/p2"))  # queued behind p1's post while it waits
    await alert(closed("acme/pre/p1"))
    await fake_slack.wait_for(lambda: len(lane()) == 3, within=10)
    assert lane() == [
        ("chat.postMessage", "acme/pre/p1", "🟠"),  # as it was: the 500 may have shown it
        ("chat.update", "acme/pre/p1", "✅"),  # and resolved at once, before p2's post
        ("chat.postMessage", "acme/pre/p2", "🟠"),
    ]
    fake_slack.fail("chat.postMessage", status=429, retry_after=1)
    await alert(opened("acme/pre/p3"))
    await fake_slack.wait_for(lambda: len(fake_slack.calls_of("chat.postMessage", ok=False)) == 3)
    await alert(opened("acme/pre/p4"))
    await alert(closed("acme/pre/p3"))
    await fake_slack.wait_for(lambda: len(lane()) == 5, within=10)
    await slack.outbox.drain(0.3)
    assert lane()[3:] == [
        ("chat.postMessage", "acme/pre/p3", "✅"),  # the 429: nobody saw it, it shows the end
        ("chat.postMessage", "acme/pre/p4", "🟠"),
    ]
