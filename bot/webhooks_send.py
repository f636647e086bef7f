"""One webhook request: the signature, the POST, and what its answer means.

The request is ``POST <url>`` with the row's JSON body and the headers:

- ``Content-Type: application/json``
- ``X-Nightshift-Delivery: <delivery id>``: the same on every try of one event, so a
  receiver drops a repeat (delivery is at-least-once);
- with ``secret_env`` set, ``X-Nightshift-Timestamp: <unix seconds>`` and
  ``X-Nightshift-Signature: v1=<hex HMAC-SHA256 of "v1:<timestamp>:<body>">`` with the
  secret as key: the scheme Slack signs its own requests with.

The answer (:func:`outcome`): a 2xx is :class:`Sent`; a network error, a timeout, a
5xx, 408 or 429 is :class:`TryAgain` (a 429's or 503's ``Retry-After`` is honoured);
any other status is :class:`Refused` at once, a redirect said as one (it is not
followed: "HTTP 301 (redirect to https://hooks.example.com): …") whatever its
``Location`` (:func:`client` stops at a redirect before httpx reads where it points: one
it cannot parse was a network error, retried for an hour). So is a receiver whose
TLS certificate does not verify ("TLS certificate verify failed: self-signed
certificate"): a configuration error, which waiting does not heal, so the chain goes on
to its next step at once, as after a 4xx, instead of "Paging via…" for the hour of
retries. :func:`backoff` spaces the tries. A try
may have got there (:func:`may_have_reached`: its incident is resolved) when it was
delivered, went out and got no answer, or got a 5xx; not when it never connected, got a
4xx, or was not sent at all.

The whole try (connect, send, and the answer read to its end) takes at most the
webhook's ``timeout``, and at most :data:`MAX_ANSWER_BYTES` of the answer are read: a
receiver that trickles its answer or sends a huge one holds nothing up for longer. What
is kept of an answer (an error's excerpt, written to the log, the row and the alert's
thread) never quotes the url's secret parts: :func:`redact` takes out its path, query
and user info wherever the receiver echoed them (an error page saying ``Cannot POST
/hook/KEY`` is common).

Example:
    >>> sign("s3cret", timestamp=1767582000, body=b'{"event":"trigger"}')[:12]
    'v1=5e3b32910'
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import ssl
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

import httpx

from bot.escape import mask_secrets
from bot.tls import verified

__all__ = [
    "GIVE_UP_SECONDS",
    "MAX_ANSWER_BYTES",
    "MAX_BACKOFF_SECONDS",
    "MAX_TRIES",
    "Outcome",
    "Refused",
    "Sent",
    "TryAgain",
    "backoff",
    "certificate_refused",
    "client",
    "may_have_reached",
    "outcome",
    "post",
    "redact",
    "redirect_error",
    "retry_after",
    "sign",
]

#: the first try waits this long after a failure; each next one twice as long...
FIRST_BACKOFF_SECONDS = 10.0
#: ... up to this
MAX_BACKOFF_SECONDS = 300.0
#: an event not delivered this long after it was written is given up (a page that late
#: wakes nobody in time; the thread says it failed)
GIVE_UP_SECONDS = 3600.0
#: and one tried this many times, whatever its age
MAX_TRIES = 30
#: the most of a receiver's answer that is read (the rest is not waited for)
MAX_ANSWER_BYTES = 4096
_RETRY_STATUSES = frozenset({408, 429})
#: the statuses that send the request elsewhere (with a Location): never followed, since a
#: webhook's url is where its page goes (and a 301/302/303 would turn the POST into a GET)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: what a host a redirect may name is made of (a name, its IDNA form, an IP address)
_HOST_CHARS = re.compile(r"[A-Za-z0-9._:-]+")
#: a path segment or query value this short is a word (``hook``, ``v1``), not a key
_SHORTEST_SECRET = 6


@dataclass(frozen=True, slots=True)
class Sent:
    status: int


@dataclass(frozen=True, slots=True)
class TryAgain:
    """A failure that may pass: ``after`` is the receiver's ``Retry-After`` (None: none);
    ``reached``: the receiver may have taken it, as the request went out and no answer
    came (a timeout, a connection cut after it was written) or a 5xx came (a gateway's
    502 or 504 passed it on to a receiver that did not answer in time; a receiver may
    fail after opening the incident). A 408 or 429, a connection never made, or a
    request not sent at all did not reach it. (An extra resolve costs nothing: a
    receiver drops one for an incident it does not know; a missing one keeps paging.)"""

    status: int | None
    error: str
    after: float | None = None
    reached: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """An answer that another try will not change (a 4xx other than 408 and 429; None:
    no request could be made)."""

    status: int | None
    error: str


Outcome = Sent | TryAgain | Refused
# failures before the request went out: the receiver got nothing
_NOTHING_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.ProxyError,
)


def may_have_reached(result: Outcome | str) -> bool:
    """Whether the receiver may have taken the try that ended with ``result`` (a str:
    not sent at all): delivered, sent and never answered, or answered with a 5xx."""
    return isinstance(result, Sent) or (isinstance(result, TryAgain) and result.reached)


def sign(secret: str, *, timestamp: int, body: bytes) -> str:
    """The ``X-Nightshift-Signature`` of ``body`` sent at ``timestamp``."""
    base = b"v1:" + str(timestamp).encode() + b":" + body
    return "v1=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def backoff(tries: int) -> float:
    """Seconds before the next try after ``tries`` failed ones: 10, 20, 40 ... up to 5 min."""
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * float(2 ** max(0, tries - 1)))


def retry_after(value: str | None, *, now: float) -> float | None:
    """The seconds a ``Retry-After`` header asks for (seconds, or an HTTP date), capped at
    :data:`GIVE_UP_SECONDS`; None when there is none or it does not parse."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(int(value))
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(0.0, seconds), GIVE_UP_SECONDS)


def _secret_parts(url: str) -> list[str]:
    """The parts of ``url`` that may be a receiver's key, longest first (the whole url,
    its path, query and user info, each path segment and query value long enough to be
    one), each also percent-decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = {url, parts.query, parts.path if len(parts.path) > 1 else ""}
    found.add(parts.netloc.rpartition("@")[0] if "@" in parts.netloc else "")
    found.add(parts.path + ("?" + parts.query if parts.query else ""))
    found.update(seg for seg in parts.path.split("/") if len(seg) >= _SHORTEST_SECRET)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        found.update(v for v in (value, f"{name}={value}") if len(v) >= _SHORTEST_SECRET)
    more = {unquote(p) for p in found} | {unquote_plus(p) for p in found}
    return sorted((p for p in found | more if p), key=len, reverse=True)


def redact(text: str, *, url: str) -> str:
    """``text`` (what a receiver or the HTTP client said) with every part of ``url`` that
    may hold a key replaced by ``…``, then other credentials masked.

    Example:
        >>> redact("Cannot POST /hook/K3YK3YK3Y?t=QS3CR3T", url="https://x.example/hook/K3YK3YK3Y?t=QS3CR3T")
        'Cannot POST …'
    """
    for part in _secret_parts(url):
        text = text.replace(part, "…")
    return mask_secrets(text)


def outcome(
    status: int, headers: httpx.Headers, text: str, *, now: float, url: str = ""
) -> Outcome:
    """What a receiver's answer to a POST to ``url`` means for the delivery."""
    if 200 <= status < 300:
        return Sent(status)
    if status in _REDIRECTS:  # (its body only repeats the status: "301: Moved Permanently")
        return Refused(status, redirect_error(status, headers.get("Location"), url=url))
    said = " ".join(text.split())[:200]
    error = f"HTTP {status}" + (f": {said}" if said else "")
    if status >= 500 or status in _RETRY_STATUSES:
        after = retry_after(headers.get("Retry-After"), now=now)
        return TryAgain(status, error, after, reached=status >= 500)
    return Refused(status, error)


def redirect_error(status: int, location: str | None, *, url: str) -> str:
    """A redirect's words: where it points (its scheme, host and port: its path and query
    may hold a key, and are not quoted) and what to do. A ``Location`` the HTTP client
    cannot parse (a bad host name, a control character, port ``abc``) is "an address
    that does not parse", nothing of it quoted (it is the receiver's text).

    Example:
        >>> said = redirect_error(301, "https://hooks.example.com/v2/K3Y", url="http://a.example/")
        >>> said.split(": ")[0]
        'HTTP 301 (redirect to https://hooks.example.com)'
        >>> said.split(": ")[1]
        "webhooks do not follow redirects; point the webhook's url at the address it redirects to"
        >>> redirect_error(302, "http://h.example:abc/", url="http://a.example/").split(": ")[0]
        'HTTP 302 (a redirect to an address that does not parse)'
    """
    advice = "webhooks do not follow redirects; point the webhook's url at"
    try:
        where = _redirect_target(location, url=url) if location else ""
    except ValueError:
        where = None
    if where:
        return f"HTTP {status} (redirect to {where}): {advice} the address it redirects to"
    to = "no address" if where == "" else "an address that does not parse"
    return f"HTTP {status} (a redirect to {to}): {advice} the receiver itself"


def _redirect_target(location: str, *, url: str) -> str:
    """``scheme://host[:port]`` of where ``location`` sends a POST to ``url``, read as
    httpx reads it (a relative one: the same receiver's); "" when it is no http(s)
    address.

    Raises:
        ValueError: it does not parse (httpx refuses it, its host is no host name or
            address, or its port is out of range).
    """
    try:
        target = httpx.URL(location)
        if target.scheme and target.scheme not in ("http", "https"):
            return ""  # (ftp:, javascript:, mailto:)
        if not target.host:  # (as httpx: a path, or https:/path, is the same receiver's)
            base = httpx.URL(url)
            target = target.copy_with(host=base.host) if target.scheme else base.join(target)
        elif not target.scheme:  # //host/path: the webhook's own scheme
            target = httpx.URL(url).join(target)
    except httpx.InvalidURL as exc:
        raise ValueError(str(exc)) from None
    host, port = target.raw_host.decode("ascii"), target.port
    if not host:
        return ""
    if not _HOST_CHARS.fullmatch(host) or (port is not None and not 0 < port < 65536):
        raise ValueError("no host name or port")
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    return f"{target.scheme}://{host}{f':{port}' if port else ''}"


def certificate_refused(exc: BaseException) -> str | None:
    """Why the receiver's TLS certificate did not verify, when that is what ended
    ``exc``'s try (the chain of causes holds an ``ssl.SSLCertVerificationError``: a
    certificate no trusted CA signed, for another host name, or out of its dates); None:
    something else."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return str(cause.verify_message or cause.reason or cause)
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


class _Redirected(Exception):
    """A redirect's answer, stopped before httpx reads its ``Location``."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.status, self.headers = response.status_code, response.headers


async def _stop_at_a_redirect(response: httpx.Response) -> None:
    """httpx builds the request a redirect asks for even when it follows none, and a
    ``Location`` it cannot parse then raises a protocol error, which lost the status: the
    try was retried for an hour as a network error (recheck28 Ka L1). This response hook
    runs before that, and ends the try with the redirect (:func:`post` says it)."""
    if response.status_code in _REDIRECTS:
        raise _Redirected(response)


def client(verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """The HTTP client webhook tries go through: it follows no redirect, and stops at
    one before reading where it points, so a redirect is said whatever its
    ``Location``. ``verify``: the TLS context (the process's, :func:`bot.tls.verified`,
    by default)."""
    return httpx.AsyncClient(
        follow_redirects=False,
        verify=verify or verified(),
        event_hooks={"response": [_stop_at_a_redirect]},
    )


async def post(
    client: httpx.AsyncClient,
    *,
    url: str,
    body: str,
    delivery_id: int,
    secret: str | None,
    seconds: float,
    now: float,
) -> Outcome:
    """Send one try, taking at most ``seconds`` in all; never raises for the receiver's
    sake (its failures are outcomes, their words redacted of the url's secret parts)."""
    said = await _post(
        client,
        url=url,
        body=body,
        delivery_id=delivery_id,
        secret=secret,
        seconds=seconds,
        now=now,
    )
    if isinstance(said, Sent):
        return said
    error = redact(said.error, url=url)
    if isinstance(said, TryAgain):
        return replace(said, error=error)
    return Refused(said.status, error)


async def _post(
    client: httpx.AsyncClient,
    *,
    url: str,
    body: str,
    delivery_id: int,
    secret: str | None,
    seconds: float,
    now: float,
) -> Outcome:
    raw = body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Nightshift-Webhook/1",
        "X-Nightshift-Delivery": str(delivery_id),
    }
    if secret is not None:
        timestamp = int(now)
        headers["X-Nightshift-Timestamp"] = str(timestamp)
        headers["X-Nightshift-Signature"] = sign(secret, timestamp=timestamp, body=raw)
    try:
        # the whole try, not each of its reads: a receiver trickling bytes is cut too
        async with asyncio.timeout(seconds):
            async with client.stream(
                "POST", url, content=raw, headers=headers, timeout=seconds
            ) as response:
                answer = await _first_bytes(response)
    except _Redirected as redirect:  # (its body only repeats the status)
        return outcome(redirect.status, redirect.headers, "", now=now, url=url)
    except httpx.InvalidURL as exc:  # (the policy's check lets none through; said if one is)
        return Refused(None, f"the url is refused by the HTTP client: {exc}")
    except (TimeoutError, httpx.TimeoutException) as exc:
        sent = not isinstance(exc, _NOTHING_SENT)  # (the whole try's: it may have gone out)
        return TryAgain(None, f"no answer within {seconds:g}s", reached=sent)
    except httpx.HTTPError as exc:
        unverified = certificate_refused(exc)
        if unverified is not None:  # no request went out; another try meets the same
            return Refused(None, f"TLS certificate verify failed: {unverified}")
        error = f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
        return TryAgain(None, error, reached=not isinstance(exc, _NOTHING_SENT))
    text = answer.decode(response.encoding or "utf-8", errors="replace")
    return outcome(response.status_code, response.headers, text, now=now, url=url)


async def _first_bytes(response: httpx.Response) -> bytes:
    """At most :data:`MAX_ANSWER_BYTES` of the answer (the rest is not read)."""
    got = bytearray()
    async for chunk in response.aiter_bytes():
        got += chunk
        if len(got) >= MAX_ANSWER_BYTES:
            break
    return bytes(got[:MAX_ANSWER_BYTES])
