"""Model routing: the cheapest model that can do the task.

Rules first, then a built-in intent classifier (:mod:`.classifier`, no network, no
model download); floors from ``min_tier`` and learned promotions; a cap under budget
pressure; fallbacks around open breakers (:mod:`.router`). Every decision is
recorded, outcomes feed promotions (:mod:`.learning`), and :mod:`.stats` reports the
decisions, the calls that followed them (by the model charged) and their saving
against the large tier's model.

Example:
    >>> from guards.config import Routing
    >>> from guards.scopes import Scope
    >>> Router(Routing()).decide(task="Extract the due date as JSON", scope=Scope("a/b/c")).tier
    'small'
"""

from __future__ import annotations

from guards.routing.classifier import Classification, Classifier
from guards.routing.learning import Learner
from guards.routing.records import Promotion
from guards.routing.router import Decision, Floor, Router
from guards.routing.service import (
    MAX_TASK_CHARS,
    Route,
    RouteRequest,
    RoutingGate,
    RoutingService,
)
from guards.routing.stats import RoutingStats, routing_stats
from guards.routing.tiers import TIERS, TierName

__all__ = [
    "MAX_TASK_CHARS",
    "TIERS",
    "Classification",
    "Classifier",
    "Decision",
    "Floor",
    "Learner",
    "Promotion",
    "Route",
    "RouteRequest",
    "Router",
    "RoutingGate",
    "RoutingService",
    "RoutingStats",
    "TierName",
    "routing_stats",
]
