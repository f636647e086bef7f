"""The routing tables (``migrations/0007_routing.sql``): one query per function.

A decision's calls are the reservations that name its ``route_id``
(``migrations/0025_reservations_by_route.sql`` indexes them).

Scopes below a node are matched with ``GLOB 'node/*'``: a scope segment may contain
``_``, which ``LIKE`` would take as a wildcard, but never ``*``, ``?`` or ``[``.
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.events import NIGHTSHIFT
from guards.routing.router import Decision
from guards.routing.tiers import TierName
from guards.store import Tx

__all__ = [
    "FAILED",
    "PRUNE_LIMIT",
    "CallCount",
    "DecisionCount",
    "Promotion",
    "RouteRow",
    "active_promotion",
    "call_counts",
    "counted_calls",
    "find_decision",
    "insert_decision",
    "insert_promotion",
    "lapse_promotions",
    "last_promotion_change",
    "list_promotions",
    "mark_rejected",
    "prune_decisions",
    "recent_outcomes",
    "revert_promotions",
    "set_outcome",
    "tier_counts",
]

LAPSED_BY = NIGHTSHIFT  # reverted_by of a promotion that lapsed on its own (review_after)

FAILED = ("failure", "timeout", "rejected")


@dataclass(frozen=True, slots=True)
class RouteRow:
    id: str
    scope: str
    namespace: str
    intent: str
    tier: TierName
    outcome: str | None
    model: str
    degraded: bool
    settled_at: float | None


@dataclass(frozen=True, slots=True)
class Promotion:
    id: int
    namespace: str
    intent: str
    from_tier: TierName
    to_tier: TierName
    failures: int
    calls: int
    promoted_at: float
    reverted_at: float | None = None
    reverted_by: str | None = None


def insert_decision(
    tx: Tx, *, route_id: str, at: float, scope: str, namespace: str, decision: Decision
) -> None:
    tx.execute(
        "INSERT INTO routing_decisions (id, at, scope, namespace, intent, tier, wanted_tier,"
        " model, degraded, source, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            route_id,
            at,
            scope,
            namespace,
            decision.intent,
            decision.tier,
            decision.wanted_tier,
            decision.model,
            int(decision.degraded),
            decision.source,
            decision.reason,
        ),
    )


def find_decision(tx: Tx, route_id: str) -> RouteRow | None:
    row = tx.one(
        "SELECT id, scope, namespace, intent, tier, outcome, model, degraded, settled_at"
        " FROM routing_decisions WHERE id = ?",
        (route_id,),
    )
    if not row:
        return None
    return RouteRow(
        id=row[0],
        scope=row[1],
        namespace=row[2],
        intent=row[3],
        tier=row[4],
        outcome=row[5],
        model=row[6],
        degraded=bool(row[7]),
        settled_at=row[8],
    )


def set_outcome(tx: Tx, *, route_id: str, outcome: str, at: float) -> bool:
    """Record the outcome of a decision that has none yet; False when it already had one."""
    cur = tx.execute(
        "UPDATE routing_decisions SET outcome = ?, settled_at = ? WHERE id = ? AND outcome IS NULL",
        (outcome, at, route_id),
    )
    return cur.rowcount > 0


def mark_rejected(tx: Tx, *, route_id: str) -> None:
    tx.execute(
        "UPDATE routing_decisions SET outcome = 'rejected' WHERE id = ? AND outcome = 'success'",
        (route_id,),
    )


def recent_outcomes(
    tx: Tx, *, namespace: str, intent: str, tier: TierName, since: float, limit: int
) -> list[str]:
    """The outcomes of the last ``limit`` settled calls of an intent at a tier.

    Degraded decisions are left out: the router knew the tier's model had an open breaker
    (or the budget capped the tier), so how such a call ended says nothing of the tier.
    The learning index holds none of them, so none is read (``migrations/0048``).
    """
    rows = tx.all(
        "SELECT outcome FROM routing_decisions WHERE namespace = ? AND intent = ? AND tier = ?"
        " AND outcome IS NOT NULL AND settled_at >= ? AND degraded = 0"
        " ORDER BY settled_at DESC LIMIT ?",
        (namespace, intent, tier, since, limit),
    )
    return [r[0] for r in rows]


def counted_calls(tx: Tx, *, namespace: str, intent: str, tier: TierName, limit: int) -> int:
    """How many settled calls of an intent at a tier count for learning since its last
    promotion, revert or lapse (as :func:`recent_outcomes` reads them), up to ``limit``.

    One statement: a seek for the last change in ``routing_promotions`` and at most
    ``limit`` entries of the learning index, which holds no degraded call and covers the
    query (``migrations/0048``): no row of the table is read.
    """
    row = tx.one(
        "SELECT COUNT(*) FROM (SELECT 1 FROM routing_decisions"
        " WHERE namespace = ?1 AND intent = ?2 AND tier = ?3 AND outcome IS NOT NULL"
        " AND degraded = 0 AND settled_at >= (SELECT"
        " COALESCE(MAX(MAX(promoted_at, COALESCE(reverted_at, 0))), 0) FROM routing_promotions"
        " WHERE namespace = ?1 AND intent = ?2) LIMIT ?4)",
        (namespace, intent, tier, limit),
    )
    return int(row[0]) if row else 0


def active_promotion(tx: Tx, *, namespace: str, intent: str) -> Promotion | None:
    """The latest promotion of an intent that is not reverted: it sets the intent's floor."""
    row = tx.one(
        "SELECT id, namespace, intent, from_tier, to_tier, failures, calls, promoted_at,"
        " reverted_at, reverted_by FROM routing_promotions"
        " WHERE namespace = ? AND intent = ? AND reverted_at IS NULL ORDER BY id DESC LIMIT 1",
        (namespace, intent),
    )
    return Promotion(*row) if row else None


def last_promotion_change(tx: Tx, *, namespace: str, intent: str) -> float:
    """When the intent was last promoted or reverted (0 when never): learning starts there."""
    row = tx.one(
        "SELECT MAX(MAX(promoted_at, COALESCE(reverted_at, 0))) FROM routing_promotions"
        " WHERE namespace = ? AND intent = ?",
        (namespace, intent),
    )
    return float(row[0]) if row and row[0] is not None else 0.0


def insert_promotion(
    tx: Tx,
    *,
    namespace: str,
    intent: str,
    from_tier: TierName,
    to_tier: TierName,
    failures: int,
    calls: int,
    at: float,
) -> int:
    cur = tx.execute(
        "INSERT INTO routing_promotions (namespace, intent, from_tier, to_tier, failures, calls,"
        " promoted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (namespace, intent, from_tier, to_tier, failures, calls, at),
    )
    return int(cur.lastrowid or 0)


def revert_promotions(
    tx: Tx, *, intent: str, namespace: str | None, actor: str, at: float
) -> list[Promotion]:
    """Revert every active promotion of an intent (in one namespace, or in all)."""
    rows = tx.all(
        "UPDATE routing_promotions SET reverted_at = ?, reverted_by = ?"
        " WHERE intent = ? AND reverted_at IS NULL AND (? IS NULL OR namespace = ?)"
        " RETURNING id, namespace, intent, from_tier, to_tier, failures, calls, promoted_at,"
        " reverted_at, reverted_by",
        (at, actor, intent, namespace, namespace),
    )
    return sorted((Promotion(*r) for r in rows), key=lambda p: p.id)


def lapse_promotions(tx: Tx, *, namespace: str, intent: str, at: float) -> list[Promotion]:
    """End an intent's active promotions in a namespace as lapsed at ``at``, oldest first."""
    rows = tx.all(
        "UPDATE routing_promotions SET reverted_at = ?, reverted_by = ?"
        " WHERE namespace = ? AND intent = ? AND reverted_at IS NULL"
        " RETURNING id, namespace, intent, from_tier, to_tier, failures, calls, promoted_at,"
        " reverted_at, reverted_by",
        (at, LAPSED_BY, namespace, intent),
    )
    return sorted((Promotion(*r) for r in rows), key=lambda p: p.id)


def list_promotions(tx: Tx, *, namespace: str | None = None) -> list[Promotion]:
    """Active promotions, oldest first."""
    rows = tx.all(
        "SELECT id, namespace, intent, from_tier, to_tier, failures, calls, promoted_at,"
        " reverted_at, reverted_by FROM routing_promotions WHERE reverted_at IS NULL"
        " AND (? IS NULL OR namespace = ?) ORDER BY id",
        (namespace, namespace),
    )
    return [Promotion(*r) for r in rows]


PRUNE_LIMIT = 2000  # rows per prune call (one write on the shared writer)


def prune_decisions(tx: Tx, *, before: float, limit: int = PRUNE_LIMIT) -> int:
    """Delete the oldest decisions made before ``before``, at most ``limit``; returns how many.

    The writer is shared: a backlog is deleted by calling again, one write each.
    """
    cur = tx.execute(
        "DELETE FROM routing_decisions WHERE id IN (SELECT id FROM routing_decisions"
        " WHERE at < ? ORDER BY at LIMIT ?)",
        (before, limit),
    )
    return int(cur.rowcount)


# A reservation follows a decision only from the decision's own agent (its scope, or a
# conversation below it), as learning takes its settle: ``r.scope`` and ``d.scope`` (both
# an agent or deeper) agree up to the '/' that ends their third segment.
_D = "(d.scope || '/')"
_P1 = f"instr({_D}, '/')"
_P2 = f"({_P1} + instr(substr({_D}, {_P1} + 1), '/'))"
_P3 = f"({_P2} + instr(substr({_D}, {_P2} + 1), '/'))"
_SAME_AGENT = f"substr(r.scope || '/', 1, {_P3}) = substr({_D}, 1, {_P3})"


@dataclass(frozen=True, slots=True)
class DecisionCount:
    """Route decisions of one tier in a period, and how many a settled call followed."""

    tier: TierName
    decisions: int
    degraded: int
    followed: int


def tier_counts(
    tx: Tx, *, since: float, until: float, scope: str | None = None
) -> list[DecisionCount]:
    """Decisions per tier made in ``[since, until)``, under ``scope`` when given.

    A decision is *followed* when a settled reservation of its agent names it.
    """
    rows = tx.all(
        "SELECT d.tier, COUNT(*), SUM(d.degraded), SUM(EXISTS (SELECT 1 FROM reservations AS r"
        " WHERE r.route_id = d.id AND r.state = 'settled' AND " + _SAME_AGENT + "))"
        " FROM routing_decisions AS d WHERE d.at >= ? AND d.at < ?"
        " AND (? IS NULL OR d.scope = ? OR d.scope GLOB ?) GROUP BY d.tier",
        (since, until, scope, scope, (scope or "") + "/*"),
    )
    return [DecisionCount(r[0], int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows]


@dataclass(frozen=True, slots=True)
class CallCount:
    """Settled calls that followed decisions of one tier and model, by the model charged."""

    tier: TierName  # the tier routed to
    routed_model: str
    model: str | None  # the model the reservation (or its settle's usage) named
    calls: int
    charged_micros: int
    failed: int  # settled as failure or timeout


def call_counts(tx: Tx, *, since: float, until: float, scope: str | None = None) -> list[CallCount]:
    """The settled calls that followed the decisions made in ``[since, until)``.

    A call follows a decision when its reservation names the ``route_id``; one
    decision may be followed by several (a retry reserves again). Only reservations
    of the decision's agent count, as for learning: a route id is no key to another
    agent's books.
    """
    rows = tx.all(
        "SELECT d.tier, d.model, r.model, COUNT(*), SUM(r.charged_micros),"
        " SUM(CASE WHEN r.outcome IN ('failure', 'timeout') THEN 1 ELSE 0 END)"
        " FROM routing_decisions AS d JOIN reservations AS r ON r.route_id = d.id"
        " WHERE d.at >= ? AND d.at < ? AND (? IS NULL OR d.scope = ? OR d.scope GLOB ?)"
        " AND r.state = 'settled' AND " + _SAME_AGENT + " GROUP BY d.tier, d.model, r.model",
        (since, until, scope, scope, (scope or "") + "/*"),
    )
    return [CallCount(r[0], r[1], r[2], int(r[3]), int(r[4] or 0), int(r[5] or 0)) for r in rows]
