"""Alert figures for a time range: what the daily digest shows.

Example:
    >>> # figures = await alert_summary(store, since=day_start, until=day_end)
    >>> # figures["tiers"]["P0"]["mtta_seconds"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.alerts.model import ALERT_TIERS
from guards.events import NIGHTSHIFT
from guards.store import Store

__all__ = ["alert_summary"]


async def alert_summary(
    store: Store,
    *,
    since: float,
    until: float,
    scope: str | None = None,
    also: Sequence[tuple[str, float, float]] = (),
) -> dict[str, Any]:
    """Alerts whose first firing falls in ``[since, until)``, by tier (within ``scope``;
    with it, also the alerts of each ``(scope, from, to)`` of ``also`` first fired from
    ``from`` to ``to``: the model breakers' outages a namespace's digest counts).

    Returns::

        {"since": ..., "until": ...,
         "total": 7, "firings": 130, "silenced": 2, "open": 1,
         "tiers": {"P0": {"alerts": 1, "firings": 3, "silenced": 0, "silenced_unacked": 0,
                          "acked": 1, "resolved": 1, "open": 0, "mtta_seconds": 240.0,
                          "acked_silenced": 0, "resolved_by_person": 0,
                          "silenced_unanswered": 0, "unanswered_resolved": 0}, ...},
         "top": [{"id": 3, "kind": "budget_exhausted", "scope": "acme/a", "tier": "P1",
                  "count": 90, "state": "resolved", "silenced": False}, ...]}

    ``mtta_seconds`` is the mean time from first firing to acknowledgement of the
    acknowledged alerts of that tier (None when none was acknowledged); ``silenced``
    counts alerts that were silenced at any time (recorded, not posted), and
    ``silenced_unacked`` those of them nobody acknowledged (nobody was asked to).

    How each alert was answered, each alert counted once, in this order:
    ``acked`` (``acked_silenced`` of them silenced too); ``resolved_by_person``, resolved
    by someone's own action (Resolve, a budget raise, an approve, a kill switch) with
    no acknowledgement; ``silenced_unanswered``, silenced and neither; the rest nobody
    answered, ``unanswered_resolved`` of them resolved on their own (the condition
    cleared, a new day, a quiet spell).
    """
    where = "first_at >= ? AND first_at < ?"
    params: tuple[Any, ...] = (since, until)
    if scope is not None:
        within = "scope = ? OR substr(scope, 1, length(?) + 1) = ? || '/'"
        params = (*params, scope, scope, scope)
        for other, lo, hi in also:  # one bound condition per outage, no text from input
            within += " OR (scope = ? AND first_at >= ? AND first_at <= ?)"
            params = (*params, other, lo, hi)
        where += f" AND ({within})"
    by_person = "(resolved_by IS NOT NULL AND resolved_by != ?)"  # ? is NIGHTSHIFT
    quiet = f"(acked_at IS NULL AND NOT {by_person} AND was_silenced)"
    nobody = f"(acked_at IS NULL AND NOT {by_person} AND NOT was_silenced)"
    rows = await store.fetch(
        "SELECT tier, COUNT(*), SUM(count), SUM(was_silenced),"
        " SUM(acked_at IS NOT NULL), SUM(resolved_at IS NOT NULL),"
        " SUM(was_silenced AND acked_at IS NULL),"
        " AVG(CASE WHEN acked_at IS NOT NULL THEN MAX(0, acked_at - first_at) END),"
        " SUM(was_silenced AND acked_at IS NOT NULL),"
        f" SUM(acked_at IS NULL AND {by_person}), SUM({quiet}),"
        f" SUM({nobody} AND resolved_at IS NOT NULL)"
        f" FROM alerts WHERE {where} GROUP BY tier",
        (NIGHTSHIFT, NIGHTSHIFT, NIGHTSHIFT, *params),  # by_person, in quiet, in nobody
    )
    tiers: dict[str, dict[str, Any]] = {
        t: {
            "alerts": 0,
            "firings": 0,
            "silenced": 0,
            "silenced_unacked": 0,
            "acked": 0,
            "resolved": 0,
            "open": 0,
            "mtta_seconds": None,
            "acked_silenced": 0,
            "resolved_by_person": 0,
            "silenced_unanswered": 0,
            "unanswered_resolved": 0,
        }
        for t in ALERT_TIERS
    }
    for (
        tier,
        n,
        firings,
        silenced,
        acked,
        resolved,
        unacked_silenced,
        mtta,
        acked_silenced,
        person,
        silenced_only,
        cleared,
    ) in rows:
        tiers[tier] = {
            "alerts": n,
            "firings": firings or 0,
            "silenced": silenced or 0,
            "silenced_unacked": unacked_silenced or 0,
            "acked": acked or 0,
            "resolved": resolved or 0,
            "open": n - (resolved or 0),
            "mtta_seconds": float(mtta) if mtta is not None else None,
            "acked_silenced": acked_silenced or 0,
            "resolved_by_person": person or 0,
            "silenced_unanswered": silenced_only or 0,
            "unanswered_resolved": cleared or 0,
        }
    top = await store.fetch(
        "SELECT id, kind, scope, tier, count, resolved_at, acked_at, silence_id, was_silenced"
        f" FROM alerts WHERE {where} ORDER BY tier, count DESC, id LIMIT 10",
        params,
    )
    return {
        "since": since,
        "until": until,
        "total": sum(t["alerts"] for t in tiers.values()),
        "firings": sum(t["firings"] for t in tiers.values()),
        "silenced": sum(t["silenced"] for t in tiers.values()),
        "open": sum(t["open"] for t in tiers.values()),
        "tiers": tiers,
        "top": [
            {
                "id": r[0],
                "kind": r[1],
                "scope": r[2],
                "tier": r[3],
                "count": r[4],
                "state": "resolved"
                if r[5] is not None
                else "silenced"
                if r[7] is not None
                else "acked"
                if r[6] is not None
                else "open",
                "silenced": bool(r[8]),
            }
            for r in top
        ],
    }
