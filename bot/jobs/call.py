"""One run's call: the ``POST`` to a job's url, and what its answer says (secret masked).

:func:`post_run` sends ``{"job", "run_id", "scheduled_for"}`` with the job's secret in
:data:`SECRET_HEADER` and the run's id in :data:`RUN_HEADER`, and says how it went: a
2xx answer ``succeeded``; any other answer or a network error ``failed`` (with the
start of what it said); no answer within ``timeout_seconds`` ``timeout``.

Example:
    >>> _hidden("echo: s3cr3t-key, s3cr3", "s3cr3t-key")
    "echo: [the job's secret], [the job's secret]"
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from bot.escape import mask_secrets
from bot.jobs.guard import Decision
from guards.clock import to_datetime
from guards.config import Job

__all__ = ["RUN_HEADER", "SECRET_HEADER", "SECRET_MASK", "CallResult", "post_run"]

SECRET_HEADER = "X-Nightshift-Job-Secret"
RUN_HEADER = "X-Nightshift-Run-Id"
EXCERPT_BYTES = 1024  # of a failed run's answer, kept for its record and the log
SECRET_MASK = "[the job's secret]"


@dataclass(frozen=True)
class CallResult:
    """How a run's call went: ``succeeded``, ``failed`` or ``timeout``, and its figures."""

    outcome: str
    status: int | None
    detail: str | None
    duration_ms: int


async def post_run(
    client: httpx.AsyncClient, job: Job, decision: Decision, *, secret: str
) -> CallResult:
    """POST the run to ``job.url``; any failure is its result, never an exception."""
    body = {
        "job": job.name,
        "run_id": decision.run_id,
        "scheduled_for": to_datetime(decision.scheduled_for).isoformat().replace("+00:00", "Z"),
    }
    headers = {SECRET_HEADER: secret, RUN_HEADER: decision.run_id}
    started = time.perf_counter()
    status: int | None = None
    detail: str | None = None
    try:
        async with (
            asyncio.timeout(job.timeout_seconds),
            client.stream(
                "POST", job.url, json=body, headers=headers, timeout=job.timeout_seconds
            ) as response,
        ):
            status = response.status_code
            outcome = "succeeded" if 200 <= status < 300 else "failed"
            if outcome == "failed":  # what it said, not all of it: a body may be huge
                said = await _excerpt(response, hide=headers[SECRET_HEADER])
                detail = f"{job.url} answered {status}: {said}"
    except (TimeoutError, httpx.TimeoutException):
        outcome = "timeout"
        detail = f"no answer from {job.url} within {job.timeout_seconds}s"
    except Exception as exc:  # any failure ends the run, recorded (never left "running")
        outcome = "failed"
        detail = f"{type(exc).__name__}: {exc}"[:300]
    duration_ms = int((time.perf_counter() - started) * 1000)
    # a key in the URL's query (api_key=...) is logged and stored as "…" (audit21 L5)
    return CallResult(outcome, status, mask_secrets(detail) if detail else detail, duration_ms)


async def _excerpt(response: httpx.Response, *, hide: str) -> str:
    """The start of an answer's body (up to 200 characters), never more read than that
    (a compressed answer is not inflated: it is named, not shown), without ``hide`` (the
    job's secret, which a debug page may echo), even cut at the end of what was read."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return f"(a {encoding[:20]}-encoded answer)"
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= EXCERPT_BYTES:
            break
    return _hidden(data[:EXCERPT_BYTES].decode("utf-8", "replace"), hide)[:200]


def _hidden(text: str, secret: str) -> str:
    """``text`` with every ``secret`` in it, and a start of it at its end, masked."""
    masked = text.replace(secret, SECRET_MASK)
    for n in range(len(secret) - 1, 3, -1):
        if masked.endswith(secret[:n]):
            return masked[:-n] + SECRET_MASK
    return masked
