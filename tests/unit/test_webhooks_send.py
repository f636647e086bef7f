"""One webhook request's parts: the signature, what an answer means, the backoff, and a
SIGHUP that adds or breaks a webhook (checked as at start-up)."""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from bot.reload import check_reload
from bot.webhooks_send import (
    GIVE_UP_SECONDS,
    Outcome,
    Refused,
    Sent,
    TryAgain,
    backoff,
    client,
    outcome,
    post,
    redact,
    retry_after,
    sign,
)
from guards.config import load_policy
from tests.fakes.tls import tls
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver

__all__ = ["webhook_receiver"]

NOW = 1_767_225_600.0


def test_the_signature_is_an_hmac_of_version_timestamp_and_body():
    body = b'{"event":"trigger","alert_id":1}'
    expected = hmac.new(b"k", b"v1:1767225600:" + body, hashlib.sha256).hexdigest()
    assert sign("k", timestamp=1767225600, body=body) == f"v1={expected}"
    assert sign("k", timestamp=1767225601, body=body) != f"v1={expected}"  # the time counts


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, Sent),
        (202, Sent),
        (204, Sent),
        (500, TryAgain),
        (502, TryAgain),
        (503, TryAgain),
        (408, TryAgain),
        (429, TryAgain),
        (400, Refused),
        (401, Refused),
        (404, Refused),
        (301, Refused),  # redirects are not followed: said as what they are
    ],
)
def test_what_an_answer_means(status: int, kind: type):
    assert isinstance(outcome(status, httpx.Headers(), "", now=NOW), kind)


def test_an_error_answer_is_said_with_its_status_and_a_short_body():
    said = outcome(400, httpx.Headers(), "bad\n  routing key " + "x" * 500, now=NOW)
    assert isinstance(said, Refused)
    assert said.error.startswith("HTTP 400: bad routing key xx")
    assert len(said.error) < 230


def test_retry_after_in_seconds_or_as_a_date_capped():
    assert retry_after("30", now=NOW) == 30
    when = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    assert retry_after(when, now=NOW) == 90
    assert retry_after("999999", now=NOW) == GIVE_UP_SECONDS
    assert retry_after("-5", now=NOW) == 0
    assert retry_after("soon", now=NOW) is None
    assert retry_after(None, now=NOW) is None
    got = outcome(429, httpx.Headers({"Retry-After": "42"}), "", now=NOW)
    assert isinstance(got, TryAgain) and got.after == 42


def test_the_backoff_doubles_up_to_five_minutes():
    assert [backoff(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]


HOOKED = (
    "webhooks:\n  pager: {url: 'https://x.example/hook', secret_env: NIGHTSHIFT_TEST_RELOAD}\n"
    "oncall:\n  rotations:\n    - {name: primary, users: [U01]}\n"
    "  escalation:\n    - {notify: 'rotation:primary'}\n"
    "    - {notify: 'webhook:pager', after: 5m}\n"
)


def test_a_sighup_applies_a_webhook_and_refuses_one_whose_secret_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    config = tmp_path / "nightshift.yml"
    config.write_text("oncall:\n  rotations:\n    - {name: primary, users: [U01]}\n")
    current = load_policy(config)
    monkeypatch.setenv("NIGHTSHIFT_TEST_RELOAD", "s3cret")
    config.write_text(HOOKED)
    snapshot = check_reload(str(config), current, had_file=True)
    assert snapshot is not None
    os.unlink(snapshot)
    assert "changed (oncall, webhooks)" in caplog.text
    monkeypatch.delenv("NIGHTSHIFT_TEST_RELOAD")
    caplog.clear()
    assert check_reload(str(config), current, had_file=True) is None
    assert "webhooks.pager.secret_env: the environment variable NIGHTSHIFT_TEST_RELOAD" in (
        caplog.text
    )
    assert "still running on the policy it last applied" in caplog.text
    config.write_text(HOOKED.replace("webhook:pager", "webhook:pagr"))
    monkeypatch.setenv("NIGHTSHIFT_TEST_RELOAD", "s3cret")
    caplog.clear()
    assert check_reload(str(config), current, had_file=True) is None
    assert "oncall.escalation.1.notify: unknown webhook 'pagr'; webhooks are pager" in caplog.text


URL = "https://u:pw@pager.example/hook/K3YK3YK3Y%2F1/v1?token=QS3CR3T%20x&n=5"


@pytest.mark.parametrize(
    "echoed",
    [
        "Cannot POST /hook/K3YK3YK3Y%2F1/v1?token=QS3CR3T%20x&n=5",
        "unknown key K3YK3YK3Y%2F1",
        "unknown key K3YK3YK3Y/1 for /hook/K3YK3YK3Y/1/v1",  # percent-decoded
        "token QS3CR3T x is not valid",
        "user u:pw is locked",
        URL,
    ],
)
def test_the_urls_secret_parts_are_redacted_wherever_echoed(echoed: str):
    said = redact(f"HTTP 404: {echoed}", url=URL)
    for secret in ("K3YK3YK3Y", "QS3CR3T", "u:pw"):
        assert secret not in said, said
    assert said.startswith("HTTP 404: ")


def test_short_path_words_are_not_redacted():
    # a word of the path (`hook`, `v1`) is no key: "Not found" stays readable
    assert redact("HTTP 404: hook v1 Not found", url=URL) == "HTTP 404: hook v1 Not found"


SAYS = "webhooks do not follow redirects; point the webhook's url at"


@pytest.mark.parametrize(
    ("location", "said"),
    [
        ("https://hooks.example.com/v2/K3YK3YK3Y", "redirect to https://hooks.example.com"),
        ("https://hooks.example.com:8443/x", "redirect to https://hooks.example.com:8443"),
        ("/v2/hook", "redirect to https://pager.example"),  # relative: the same receiver
        ("https://u:pw@evil.example/?token=S3CR3T", "redirect to https://evil.example"),
        ("http://[::1]:8080/hook", "redirect to http://[::1]:8080"),
    ],
)
def test_a_redirect_says_where_it_points_and_what_to_do(location: str, said: str):
    """audit28 C3 L4: a 301 was "HTTP 301: 301: Moved Permanently" (the status twice, and
    not where it points). Only the scheme, host and port are quoted: a path or query
    may hold a key."""
    for status in (301, 302, 303, 307, 308):
        got = outcome(
            status,
            httpx.Headers({"Location": location}),
            f"{status}: Moved Permanently",
            now=NOW,
            url="https://pager.example/hook/K3YK3YK3Y",
        )
        assert got == Refused(
            status, f"HTTP {status} ({said}): {SAYS} the address it redirects to"
        ), got


@pytest.mark.parametrize(
    "location", [None, "", "javascript:alert(1)", "ftp://files.example/x", "mailto:a@b.example"]
)
def test_a_redirect_to_no_address_says_so(location: str | None):
    headers = httpx.Headers({} if location is None else {"Location": location})
    got = outcome(301, headers, "", now=NOW, url="https://pager.example/hook")
    assert got == Refused(301, f"HTTP 301 (a redirect to no address): {SAYS} the receiver itself")


UNPARSED = "a redirect to an address that does not parse"
#: Locations httpx cannot parse, or that name no host or port: nothing of them is quoted
HOSTILE_LOCATIONS = [
    "https://hoo\u202eks.example.com/p?key=K3YK3YK3Y",  # a bidi control in the host
    "https://h.example.com/p\x01?key=K3YK3YK3Y",  # a control character
    "http://h.example.com:abc/p",  # a port that is no number
    "http://h.example.com:99999/p",  # out of range
    "https://[bad/x",  # half an IPv6 address
    "https://a b.example/",  # a space in the host
]


@pytest.mark.parametrize("location", [*HOSTILE_LOCATIONS, "http://[::1"])
def test_a_redirect_to_an_address_that_does_not_parse_says_only_that(location: str):
    """recheck28 Ka L1: nothing of an unparseable Location is said (it is the
    receiver's text), only that it does not parse."""
    headers = httpx.Headers([(b"Location", location.encode())])  # (as read off the wire)
    got = outcome(302, headers, "", now=NOW, url=URL)
    assert got == Refused(302, f"HTTP 302 ({UNPARSED}): {SAYS} the receiver itself")


async def post_once(webhook_receiver: WebhookReceiver) -> Outcome:
    """One try of a delivery to the receiver's url (its path a key), as the sender's
    client sends it."""
    async with client(tls()) as http:
        return await post(
            http,
            url=f"{webhook_receiver.url}/K3YK3YK3Y",
            body="{}",
            delivery_id=1,
            secret=None,
            seconds=5,
            now=NOW,
        )


# (aiohttp sends no control character in a header: that one is said above)
@pytest.mark.parametrize(
    "location", [*(h for h in HOSTILE_LOCATIONS if "\x01" not in h), "javascript:alert(1)//x"]
)
async def test_a_redirect_fails_at_once_whatever_its_location(
    webhook_receiver: WebhookReceiver, location: str
):
    """recheck28 Ka L1: httpx builds the request a redirect asks for even when it
    follows none, and raised on a Location it could not parse ("RemoteProtocolError:
    Invalid URL in location header: …"): the try was retried for an hour as a network
    error; a ``javascript:`` one was "the url is refused by the HTTP client", blaming
    the webhook's own url. The sender's client stops at the redirect first."""
    webhook_receiver.script = [301]
    webhook_receiver.location = location
    got = await post_once(webhook_receiver)
    assert isinstance(got, Refused), got
    assert got.status == 301 and got.error.startswith("HTTP 301 (a redirect to "), got
    assert "K3Y" not in got.error and "example" not in got.error
    assert len(webhook_receiver.requests) == 1


async def test_a_receivers_redirect_is_not_followed_and_said_as_one(
    webhook_receiver: WebhookReceiver,
):
    webhook_receiver.script = [308]
    webhook_receiver.location = "https://moved.example/hook/K3YK3YK3Y"
    got = await post_once(webhook_receiver)
    assert got == Refused(
        308, f"HTTP 308 (redirect to https://moved.example): {SAYS} the address it redirects to"
    )
    assert len(webhook_receiver.requests) == 1
