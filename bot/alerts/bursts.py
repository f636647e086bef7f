"""A duplicate burst's counts: how many duplicates each of its streams had rejected in the
window, counted from the rejection rows at each firing.

An agent's bursts on several streams are one ``duplicate_burst`` alert. Each firing (a
stream reaching ``validation.burst.count``, then again at most every quarter window
while it goes on) counts every stream of the alert anew over the window that ends at
that firing: a stream's count was frozen at its own latest firing, so the total read as
the whole burst's undercounted it (review26 R3 L1: 13 rejections shown as 9), and a
stream whose burst ended hours ago kept adding its old count to "rejected in 1h". A
stream with none left in the window drops out of the counts.

Example:
    >>> # facts[STREAM_COUNTS] = stream_counts(tx, agent=scope, before=before, facts=facts, at=at)
"""

from __future__ import annotations

from typing import Any

from bot.alerts.model import STREAM_COUNTS, STREAMS
from guards.store import Tx
from guards.validation.types import DUPLICATE_REASONS

__all__ = ["MAX_COUNTED_STREAMS", "stream_counts"]

MAX_COUNTED_STREAMS = 50  # the most streams a duplicate burst counts (the first seen)


def _named(before: dict[str, Any], stream: object) -> list[str]:
    """The alert's streams, first seen first: those it counted, those that fired in it
    (an alert opened before the counts names them in ``streams`` / ``stream``), this one."""
    seen = [
        *(before.get(STREAM_COUNTS) or {}),
        *(before.get(STREAMS) or []),
        before.get("stream"),
        stream,
    ]
    return [s for s in dict.fromkeys(seen) if isinstance(s, str) and s][:MAX_COUNTED_STREAMS]


def stream_counts(
    tx: Tx, *, agent: str, before: dict[str, Any], facts: dict[str, Any], at: float
) -> dict[str, int]:
    """Each stream's duplicate and near-duplicate rejections in the window that ends at
    this firing (``at``), for the alert's streams (``before``: its facts so far) and the
    one that fired (``facts``), at most :data:`MAX_COUNTED_STREAMS`; a stream with none
    in the window is left out."""
    stream, rejected = facts.get("stream"), facts.get("rejected")
    window = facts.get("window_seconds")
    names = _named(before, stream)
    if not isinstance(window, int | float) or isinstance(window, bool) or not names:
        return {}
    marks = ", ".join("?" for _ in names)
    rows = tx.all(
        "SELECT s.name, count(*) FROM validation_streams s"
        " JOIN validation_rejections r ON r.stream_id = s.id"
        f" WHERE s.agent = ? AND s.name IN ({marks}) AND r.at > ? AND r.at <= ?"
        " AND r.reason IN (?, ?) GROUP BY s.name",
        (agent, *names, at - window, at, *DUPLICATE_REASONS),
    )
    found = {str(name): int(n) for name, n in rows}
    if isinstance(stream, str) and isinstance(rejected, int) and not isinstance(rejected, bool):
        found[stream] = max(found.get(stream, 0), rejected)  # the guard counted these rows
    return {s: found[s] for s in names if found.get(s)}
