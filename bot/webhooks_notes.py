"""What the alert's thread says about a webhook delivery (:mod:`bot.webhooks`).

Each note is said once (its outbox ``ref``): the first failed try of a page, with until
when it is tried again; a page that got through after failed tries; a delivery given
up. The error is the one :func:`bot.webhooks_send.post` kept, already redacted of the
url's secret parts, and is cut short here (the log and the row keep more of it).

Example:
    >>> row = {"id": 7, "webhook": "pager", "event": "trigger"}
    >>> failed_note(row, error="HTTP 404: not found")[1]
    'webhook:7:failed'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.render_time import clock_time
from bot.escape import slack_text
from bot.webhooks_rows import ERROR_CHARS
from guards.words import clip_chars, plural

__all__ = ["GONE", "NOT_SENT", "failed_note", "retrying_note", "taken_out", "took_it_note"]

#: the most of an error the thread quotes
SHOWN = 160
#: how an error begins when the request was not sent at all (its secret could not be
#: read): the receiver refused nothing
NOT_SENT = "not sent: "
#: why a delivery of a webhook a reload took out is not sent (nothing to check: on purpose)
GONE = "is no longer in the policy (webhooks:)"


def _what(row: Mapping[str, Any]) -> str:
    return "page" if row["event"] == "trigger" else "resolve"


def failed_note(row: Mapping[str, Any], *, error: str) -> tuple[str, str]:
    """The thread's note for a delivery given up, and its ref (with no advice to check a
    webhook a reload took out on purpose: :func:`taken_out`)."""
    name = row["webhook"]
    check = f" Check `webhooks.{name}` in the policy and the receiver."
    if error.startswith(f"the webhook {name} {GONE}"):
        check = ""
    return (
        f"⚠️ The {_what(row)} to webhook {name} (delivery {row['id']}) failed:"
        f" {slack_text(error, SHOWN)}.{check}",
        f"webhook:{row['id']}:failed",
    )


def taken_out(row: Mapping[str, Any]) -> str:
    """Why a delivery of a webhook a reload took out is not sent (a trigger: a resolve
    goes where its trigger went): nothing was sent yet, or what its earlier tries got.

    Example:
        >>> row = {"webhook": "wd", "attempts": 1, "last_status": 503, "last_error": "x"}
        >>> taken_out(row).split(": ", 1)[1]
        'not tried again after 1 try; the receiver answered the last (HTTP 503)'
    """
    said = f"the webhook {row['webhook']} {GONE}"
    tries = int(row["attempts"])
    if tries == 0:
        return f"{said}: nothing was sent"
    many = plural(tries, "try", many="tries")
    if row["last_status"] is not None:
        answered = f"the receiver answered the last (HTTP {row['last_status']})"
        return f"{said}: not tried again after {many}; {answered}"
    error = str(row["last_error"] or "no answer")
    if error.startswith(NOT_SENT):  # held back here (its secret): it reached nobody
        held = clip_chars(error.removeprefix(NOT_SENT), ERROR_CHARS)
        return f"{said}: not tried again after {many}; the last was not sent ({held})"
    last = f"the last got no answer ({clip_chars(error, ERROR_CHARS)})"
    if row["reached"]:  # (its request went out: bot.webhooks_send.TryAgain.reached)
        last += ": it may have got there"
    return f"{said}: not tried again after {many}; {last}"


def retrying_note(
    row: Mapping[str, Any], *, error: str, until: float, tz: ZoneInfo, now: float
) -> tuple[str, str]:
    """The note for a delivery's first failed try (tried again until ``until``)."""
    if error.startswith(NOT_SENT):  # held back here: not the receiver's doing
        return (
            f"⚠️ The {_what(row)} to webhook {row['webhook']} (delivery {row['id']}) was"
            f" not sent: {slack_text(error.removeprefix(NOT_SENT), SHOWN)}; trying again"
            f" until {clock_time(until, tz, now=now)}.",
            f"webhook:{row['id']}:retrying",
        )
    return (
        f"⚠️ Webhook {row['webhook']} did not take the {_what(row)} (delivery {row['id']}:"
        f" {slack_text(error, SHOWN)}); trying again until {clock_time(until, tz, now=now)}.",
        f"webhook:{row['id']}:retrying",
    )


def took_it_note(row: Mapping[str, Any], *, tries: int) -> tuple[str, str]:
    """The note for a delivery that got through after failed tries."""
    return (
        f"✅ Webhook {row['webhook']} took the {_what(row)} at try {tries} (delivery {row['id']}).",
        f"webhook:{row['id']}:delivered",
    )
