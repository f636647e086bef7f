"""The names of alert storm summaries: ``fold:<pages|posts>:<lane>:<seed>[-<n>]``.

A summary's outbox row is named after the lane (a person's id or a channel) and the
first alert folded into it (the seed: an escalation id for pages, an alert id for
posts); a seed whose summary already went out gets ``-1``, ``-2``... The Acknowledge all
button carries the name, tagged with the seed alert's first firing.

Example:
    >>> summary_parts("fold:pages:U02:17-1")
    ('pages', 'U02')
"""

from __future__ import annotations

import re

from bot.alerts.model import TAG_DIGITS
from guards.errors import InvalidInput
from guards.store import Tx

__all__ = [
    "OPEN_SUMMARY",
    "seed_first_at",
    "storm_ref",
    "summary_parts",
    "summary_ref",
    "summary_seed",
]

# fold:<pages|posts>:<lane>:<seed>[-<n>], as summary_ref names them (a lane holds no ":")
_SUMMARY_REF = re.compile(r"fold:(?:pages|posts):[^:\s]{1,200}:[0-9]{1,18}(?:-[0-9]{1,9})?")
# A summary may still change while it waits and nobody has started sending it.
OPEN_SUMMARY = "state = 'pending' AND claimed_at IS NULL"


def summary_ref(tx: Tx, what: str, lane: str, *, seed: int) -> str:
    """The ref of the lane's waiting summary, or a new, unused one named after ``seed``."""
    row = tx.one(
        f"SELECT ref FROM outbox WHERE channel = ? AND {OPEN_SUMMARY} AND ref LIKE ?"
        " ORDER BY id DESC LIMIT 1",
        (lane, f"fold:{what}:%"),
    )
    if row:
        return str(row[0])
    ref, n = f"fold:{what}:{lane}:{seed}", 0
    while tx.one("SELECT 1 FROM outbox WHERE ref = ?", (ref,)):  # a sent one of that seed
        n += 1
        ref = f"fold:{what}:{lane}:{seed}-{n}"
    return ref


def summary_parts(ref: str) -> tuple[str, str]:
    """``fold:<pages|posts>:<lane>:<seed>`` -> (pages or posts, lane); a lane holds no ":"."""
    _, what, rest = ref.split(":", 2)
    return what, rest.rpartition(":")[0]


def storm_ref(value: str) -> tuple[str, str | None]:
    """The summary ref an Acknowledge all button names, and its tag (None on a summary
    posted before buttons were tagged); InvalidInput when it names none.

    Example:
        >>> storm_ref("fold:pages:U02:17~1767225600000")
        ('fold:pages:U02:17', '1767225600000')
    """
    ref, sep, tag = value.partition("~")
    if not (ref.isascii() and _SUMMARY_REF.fullmatch(ref)) or (
        sep and not (tag.isascii() and tag.isdigit() and len(tag) <= TAG_DIGITS)
    ):
        raise InvalidInput(  # (worded as the buttons' other refusals: recheck28 Kb L3)
            "value",
            "This button does not name an alert storm summary: nothing changed. `/agent alerts`"
            " lists the open alerts, with their own buttons; `/agent ack <id>` takes one.",
        )
    return ref, tag if sep else None


def summary_seed(ref: str) -> int:
    """The seed a summary's ref is named after (``fold:pages:U02:17-1`` -> 17).

    Example:
        >>> summary_seed("fold:pages:U02:17-1")
        17
    """
    return int(ref.rsplit(":", 1)[1].partition("-")[0])


def seed_first_at(tx: Tx, ref: str) -> float | None:
    """When the alert a summary's ref is named after first fired (None: no such alert)."""
    row = tx.one("SELECT first_at FROM alerts WHERE id = ?", (summary_seed(ref),))
    return float(row[0]) if row is not None else None
