"""Routing inside a transaction: validate, gather the facts, decide, record.

The process builds one :class:`RoutingService` and hands it callables it does not
own: the ledger's ``remaining_fraction(tx, scope)``, the breaker engine's
``is_model_open(tx, model)`` and where a namespace's budget for a model stands
(``model_budget(tx, namespace, model)``: :func:`guards.model_budgets.model_standing`).
Any may be left out (no degradation, no fallback around breakers or model budgets).
``service.gate`` plugs into ``Ledger.gates`` so that every settle of a reservation
with a ``route_id`` reaches :meth:`Learner.on_settle`.

Example (inside ``store.write``)::

    routing = RoutingService(policy=policy, prices=prices,
                             remaining_fraction=ledger.remaining_fraction)
    req = RouteRequest.parse(scope="acme/alice/rss-bot", task="Summarize this post")
    routing.check(req)   # an unknown intent is a 400 before anything is authorized
    route = routing.route(tx, req)
    route.as_json()   # {"model": ..., "tier": ..., "reason": ..., "degraded": ..., "route_id": ...}
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from guards.client_types import RouteDecision
from guards.config import Policy
from guards.errors import InvalidInput
from guards.model_budgets import ModelUsage, tightest
from guards.prices import PriceTable
from guards.routing import records
from guards.routing.learning import Learner
from guards.routing.router import Decision, Router
from guards.routing.stats import RoutingStats, routing_stats
from guards.routing.tiers import TIERS, TierName, is_tier
from guards.scopes import Scope, ScopeError
from guards.store import Tx

if TYPE_CHECKING:
    from guards.ledger import Reservation

__all__ = [
    "MAX_TASK_CHARS",
    "ModelBudget",
    "ModelOpen",
    "RemainingFraction",
    "Route",
    "RouteRequest",
    "RoutingGate",
    "RoutingService",
]

MAX_TASK_CHARS = 100_000
_INTENT = re.compile(r"[a-z][a-z0-9_]{0,63}")

RemainingFraction = Callable[[Tx, Scope], float | None]
ModelOpen = Callable[[Tx, str], bool]
# (tx, namespace, model) -> each window of the namespace's budget for the model ([]: none)
ModelBudget = Callable[[Tx, str, str], list[ModelUsage]]


def new_route_id() -> str:
    return "rt_" + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Route:
    """A recorded decision: what ``POST /v1/route`` answers."""

    route_id: str
    decision: Decision

    def as_json(self) -> RouteDecision:
        d = self.decision
        return {
            "model": d.model,
            "tier": d.tier,
            "reason": d.reason,
            "degraded": d.degraded,
            "route_id": self.route_id,
            "intent": d.intent,
        }


class RoutingService:
    """The routing feature of one process: decisions, outcomes, promotions, stats."""

    def __init__(
        self,
        *,
        policy: Policy,
        prices: PriceTable | None = None,
        remaining_fraction: RemainingFraction | None = None,
        is_model_open: ModelOpen | None = None,
        model_budget: ModelBudget | None = None,
        new_id: Callable[[], str] = new_route_id,
    ) -> None:
        self.policy = policy
        self.prices = prices or PriceTable()
        self.router = Router(policy.routing)
        self.learner = Learner(policy.routing.promote)
        self.remaining_fraction = remaining_fraction
        self.is_model_open = is_model_open
        self.model_budget = model_budget
        self.new_id = new_id
        self.gate = RoutingGate(self.learner)

    def check(self, req: RouteRequest) -> None:
        """What only the policy can say about a parsed request: is its ``intent`` known?

        Call it before authorizing, like :meth:`RouteRequest.parse`; nothing is written.

        Raises:
            InvalidInput: on ``intent``, listing the built-in and the policy's intents.
        """
        self.router.check_intent(req.intent)

    def route(self, tx: Tx, req: RouteRequest) -> Route:
        """Decide where a validated task goes and record the decision.

        Raises:
            InvalidInput: an unknown ``intent`` (see :meth:`check`).
        """
        namespace = req.scope.namespace
        remaining = self.remaining_fraction(tx, req.scope) if self.remaining_fraction else None
        is_open, budget_of = self.is_model_open, self.model_budget
        decision = self.router.decide(
            task=req.task,
            scope=req.scope,
            intent=req.intent,
            min_tier=req.min_tier,
            floor=lambda name: self.learner.floor(tx, namespace=namespace, intent=name),
            remaining=remaining,
            model_open=(lambda model: is_open(tx, model)) if is_open is not None else None,
            model_budget=(
                (lambda model: tightest(budget_of(tx, namespace, model)))
                if budget_of is not None
                else None
            ),
        )
        route_id = self.new_id()
        records.insert_decision(
            tx,
            route_id=route_id,
            at=tx.clock.now(),
            scope=req.scope.path,
            namespace=namespace,
            decision=decision,
        )
        return Route(route_id, decision)

    def on_settle(
        self, tx: Tx, *, route_id: str | None, outcome: str, now: float, scope: str | None = None
    ) -> None:
        """See :meth:`Learner.on_settle`."""
        self.learner.on_settle(tx, route_id=route_id, outcome=outcome, now=now, scope=scope)

    def on_rejected(
        self,
        tx: Tx,
        *,
        route_id: str,
        within: str,
        reasons: Iterable[str],
        now: float,
        scope: str | None = None,
    ) -> str | None:
        """See :meth:`Learner.on_rejected`."""
        return self.learner.on_rejected(
            tx, route_id=route_id, within=within, reasons=reasons, now=now, scope=scope
        )

    def revert_promotion(
        self, tx: Tx, *, intent: str, actor: str, namespace: str | None = None
    ) -> list[records.Promotion]:
        """See :meth:`Learner.revert_promotion`."""
        return self.learner.revert_promotion(tx, intent=intent, actor=actor, namespace=namespace)

    def prune(self, tx: Tx, *, limit: int = records.PRUNE_LIMIT) -> int:
        """Delete the oldest decisions past ``routing.retention_days``, at most ``limit``;
        returns how many (call again while it returns ``limit``: see :mod:`bot.retention`)."""
        days = self.policy.routing.retention_days
        return records.prune_decisions(tx, before=tx.clock.now() - days * 86400, limit=limit)

    def stats(
        self, tx: Tx, *, since: float, until: float, scope: str | None = None
    ) -> RoutingStats:
        """The decisions, the calls that followed them and the promotions, for
        ``/agent routing`` (promotions whose review is due lapse first)."""
        namespace = scope.split("/", 1)[0] if scope else None
        promotions = self.learner.promotions(tx, namespace=namespace)
        return routing_stats(
            tx,
            routing=self.policy.routing,
            prices=self.prices,
            since=since,
            until=until,
            scope=scope,
            promotions=promotions,
        )


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """A checked ``POST /v1/route`` body."""

    scope: Scope
    task: str
    intent: str | None = None
    min_tier: TierName | None = None

    @classmethod
    def parse(
        cls, *, scope: object, task: object, intent: object = None, min_tier: object = None
    ) -> RouteRequest:
        """Check every field; nothing is written, so validate before authorizing.

        Raises:
            InvalidInput: a bad scope (an agent or below), an empty task or one over
                ``MAX_TASK_CHARS``, a malformed intent, an unknown min_tier.
        """
        try:
            node = Scope.parse(scope, min_depth=3)
        except ScopeError as exc:
            raise InvalidInput("scope", f"scope: {exc}") from None
        if not isinstance(task, str) or not task.strip():
            raise InvalidInput("task", "task: send the text of the task (it is empty)")
        if len(task) > MAX_TASK_CHARS:
            raise InvalidInput(
                "task",
                f"task: {len(task):,} characters is more than {MAX_TASK_CHARS:,}; "
                "send the instructions, not the whole document",
            )
        if isinstance(intent, str):  # `Summary` and ` summary` are summary
            intent = intent.strip().lower()
        if intent is not None and not (isinstance(intent, str) and _INTENT.fullmatch(intent)):
            raise InvalidInput(
                "intent", "intent: a lowercase name like summary, code or review (a-z, 0-9, _)"
            )
        floor: TierName | None = None
        if min_tier is not None:
            if not is_tier(min_tier):
                raise InvalidInput("min_tier", f"min_tier: one of {', '.join(TIERS)}")
            floor = min_tier
        return cls(scope=node, task=task, intent=intent, min_tier=floor)


class RoutingGate:
    """The ledger's view of routing (``ledger.gates.append(service.gate)``).

    Routing refuses nothing; it only learns from settles.
    """

    def __init__(self, learner: Learner) -> None:
        self.learner = learner

    def before_reserve(
        self,
        tx: Tx,
        *,
        scope: Scope,
        task_id: str | None,
        amount_micros: int,
        now: float,
        models: tuple[str, ...] = (),
    ) -> None:
        return None

    def after_reserve(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        return None

    def after_settle(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        self.learner.on_settle(
            tx,
            route_id=reservation.route_id,
            outcome=reservation.outcome or "",
            now=now,
            scope=reservation.scope,
            model=reservation.model,
        )

    def after_release(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        return None
