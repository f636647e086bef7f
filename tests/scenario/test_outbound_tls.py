"""The job runner and the webhook sender share one TLS context (bot.tls, made once per
process instead of a CA bundle loaded per client at each start) and still verify what
they reach: a receiver with a self-signed certificate is refused, sent nothing, as
before. The receiver is a real HTTPS server on 127.0.0.1 (tests/data/self_signed.pem:
CN and address 127.0.0.1, valid until 2126), so only the certificate's signer is wrong."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.scenario.test_jobs import ADMIN, AGENT, T0
from tests.scenario.test_p0_webhook_first import p0, updates, webhook_first
from tests.scenario.test_webhooks import (
    SECRET,
    SECRET_ENV,
    deliveries,
    metric,
    p0_at_the_webhook,
    policy,
    send,
)

PEM = Path(__file__).resolve().parents[1] / "data" / "self_signed.pem"
UNTRUSTED = "certificate verify failed: self-signed certificate"


@pytest.fixture
async def self_signed() -> AsyncIterator[WebhookReceiver]:
    """A receiver speaking HTTPS with a certificate nobody signed."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(PEM)
    receiver = await WebhookReceiver(tls=tls).start()
    yield receiver
    await receiver.stop()


async def test_the_receiver_speaks_tls_to_a_client_that_trusts_its_certificate(
    self_signed: WebhookReceiver,
) -> None:
    """The control: the refusals below are the certificate's, not a broken server's."""
    trusting = ssl.create_default_context(cafile=PEM)
    async with httpx.AsyncClient(verify=trusting) as client:
        assert (await client.post(self_signed.url, json={"event": "x"})).status_code == 200
    assert len(self_signed.requests) == 1


async def test_a_job_to_a_self_signed_receiver_is_refused(
    app_factory, self_signed: WebhookReceiver
) -> None:
    job = {"name": "tls-job", "cron": "0 * * * *", "url": self_signed.url, "scope": AGENT}
    app = await app_factory({"admins": [ADMIN], "jobs": [job]}, clock=ManualClock(T0))
    app.ns.scheduler.pause_job("jobs-tick")
    runner = app.ns.extras["jobs"]
    app.clock.advance(3600)
    await runner.tick()
    await runner.wait_idle()
    [(state, detail)] = await app.store.fetch("SELECT state, detail FROM job_runs")
    assert state == "failed" and UNTRUSTED in detail, detail
    assert self_signed.requests == []


async def test_a_webhook_to_a_self_signed_receiver_is_refused(
    slack_http, self_signed: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    clock = ManualClock()
    slack = await slack_http(policy(self_signed), clock=clock)
    await p0_at_the_webhook(slack, clock)
    await send(slack)
    [row] = await deliveries(slack)
    assert row["attempts"] == 1 and row["state"] != "delivered"
    assert UNTRUSTED in row["last_error"], row["last_error"]
    assert self_signed.requests == []


async def test_a_certificate_that_does_not_verify_fails_the_page_at_once_and_says_why(
    slack_http, self_signed: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """audit28 C3 L4: it was tried for an hour as a network error ("ConnectError: [SSL:
    CERTIFICATE_VERIFY_FAILED] …"), the P0's post saying "📟 Paging via webhook…" all that
    time and the failed-delivery metric an hour late; waiting does not heal a
    certificate. Now it fails as a 4xx does: the chain's next step is named at once."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    clock = ManualClock()
    slack = await slack_http(webhook_first(self_signed), clock=clock)
    await p0(slack)
    await send(slack)
    why = "TLS certificate verify failed: self-signed certificate"
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 1, None)
    assert (row["last_error"], row["reached"]) == (why, 0)  # (no resolve will follow)
    failed = f"⚠️ The page via webhook pager failed ({why}); <@U0ONCALL> is next: 🔴 P0"
    await slack.fake.wait_for(lambda: any(u.startswith(failed) for u in updates(slack)))
    note = f"⚠️ The page to webhook pager (delivery 1) failed: {why}. Check `webhooks.pager`"
    await slack.fake.wait_for(lambda: any(t.startswith(note) for t in slack.fake.texts()))
    assert await metric(slack, "failed") == 1
    clock.advance(60)
    await send(slack)  # not tried again
    [row] = await deliveries(slack)
    assert row["attempts"] == 1 and self_signed.requests == []
