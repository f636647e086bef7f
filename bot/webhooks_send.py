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
any other status is :class:`Refused` at once. :func:`backoff` spaces the tries.

Example:
    >>> sign("s3cret", timestamp=1767582000, body=b'{"event":"trigger"}')[:12]
    'v1=5e3b32910'
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

__all__ = [
    "GIVE_UP_SECONDS",
    "MAX_BACKOFF_SECONDS",
    "MAX_TRIES",
    "Outcome",
    "Refused",
    "Sent",
    "TryAgain",
    "backoff",
    "outcome",
    "post",
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
_RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Sent:
    status: int


@dataclass(frozen=True, slots=True)
class TryAgain:
    """A failure that may pass: ``after`` is the receiver's ``Retry-After`` (None: none)."""

    status: int | None
    error: str
    after: float | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """An answer that another try will not change (a 4xx other than 408 and 429; None:
    no request could be made)."""

    status: int | None
    error: str


Outcome = Sent | TryAgain | Refused


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


def outcome(status: int, headers: httpx.Headers, text: str, *, now: float) -> Outcome:
    """What a receiver's answer means for the delivery."""
    if 200 <= status < 300:
        return Sent(status)
    said = " ".join(text.split())[:200]
    error = f"HTTP {status}" + (f": {said}" if said else "")
    if status >= 500 or status in _RETRY_STATUSES:
        return TryAgain(status, error, retry_after(headers.get("Retry-After"), now=now))
    return Refused(status, error)


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
    """Send one try, taking at most ``seconds``; never raises for the receiver's sake (its
    failures are outcomes)."""
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
        response = await client.post(url, content=raw, headers=headers, timeout=seconds)
    except httpx.InvalidURL as exc:  # (the policy's check lets none through; said if one is)
        return Refused(None, f"the url is refused by the HTTP client: {exc}")
    except httpx.TimeoutException:
        return TryAgain(None, f"no answer within {seconds:g}s")
    except httpx.HTTPError as exc:
        return TryAgain(None, f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__)
    return outcome(response.status_code, response.headers, response.text, now=now)
