"""The routing decision itself: a pure function of the task, the policy and a few facts.

In order:

1. **Tier.** The first policy rule that matches decides; otherwise the classifier
   (with the request's ``intent``, which must be a known one: a built-in intent or
   one a policy rule names).
2. **Floors.** The policy's ``min_tiers`` for the scope, the request's ``min_tier``
   and a learned promotion of the intent raise the tier.
3. **Budget.** When the remaining budget fraction is under a ``routing.degrade``
   threshold the tier is capped (``degraded``), but never below an explicit
   ``min_tier``: an operator who says an agent needs the large model means it, and
   the ledger still refuses a reservation that does not fit.
4. **Breakers and model budgets.** When the tier's model has an open breaker, or its
   namespace's budget for it (``budgets.models``) cannot take the call
   (:mod:`.budget_room`), the ``fallbacks`` chain is tried, then the next tier up
   (within the budget cap), then the tiers below (down to the floor). When none of them
   can serve, a model kept out only by a preference is taken (``degraded``): the tier's
   own model when it has money left but too little for its tier, else the first such
   candidate, else a model over the levels' budget cap. Only when every model above the
   floor is spent or broken is the tier's own model returned, ``degraded``, and the
   reason says what kept the others out. A model passed over for its budget makes the
   decision ``degraded`` whatever model serves.

Every step that changed something adds a clause to ``reason``.

Example:
    >>> from guards.config import Routing
    >>> from guards.scopes import Scope
    >>> d = Router(Routing()).decide(task="Translate this into French.", scope=Scope("a/b/c"))
    >>> (d.tier, d.model, d.degraded)
    ('small', 'claude-haiku-4-5', False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from guards.config import Routing
from guards.errors import InvalidInput
from guards.model_budgets import ModelUsage
from guards.routing.budget_room import (
    Block,
    breaker_block,
    budget_block,
    percent_under,
    threshold_percent,
)
from guards.routing.classifier import Classifier, window
from guards.routing.rules import compile_rules, match_rule
from guards.routing.tiers import TIERS, TierName, higher, rank
from guards.scopes import Scope

__all__ = ["Decision", "Floor", "Router"]


@dataclass(frozen=True, slots=True)
class Floor:
    """A learned promotion: the intent goes at least to ``tier``; ``why`` says since when."""

    tier: TierName
    why: str


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a task goes, and why."""

    model: str
    tier: TierName
    intent: str
    wanted_tier: TierName  # before the budget cap and breaker fallbacks
    degraded: bool
    source: str  # rule, request or classifier
    reason: str


# why a model may not serve a tier's task (None: it may)
_Blocked = Callable[[str, TierName], Block | None]


class Router:
    """Decides routes for one routing policy; build it once (rules compile here)."""

    def __init__(self, routing: Routing) -> None:
        self.routing = routing
        self.classifier = Classifier(default_tier=routing.default_tier)
        self.rules = compile_rules(routing.rules)
        self.known_intents = self.classifier.intents | {
            r.intent for r in routing.rules if r.intent is not None
        }
        self._tier_of_model = {t.model: name for name, t in routing.tiers.items()}

    def model_of(self, tier: TierName) -> str:
        return self.routing.tiers[tier].model

    def check_intent(self, intent: str | None) -> None:
        """Refuse an intent that neither the classifier nor a policy rule knows.

        A typo ("planing") would otherwise lose the caller's instruction silently.

        Raises:
            InvalidInput: on ``intent``, listing the known intents.
        """
        if intent is None or intent in self.known_intents:
            return
        raise InvalidInput(
            "intent",
            f"intent: {intent!r} is not a known intent; use one of "
            f"{', '.join(sorted(self.known_intents))} (or leave it out to classify the task)",
        )

    def decide(
        self,
        *,
        task: str,
        scope: Scope,
        intent: str | None = None,
        min_tier: TierName | None = None,
        floor: Callable[[str], Floor | None] | None = None,
        remaining: float | None = None,
        model_open: Callable[[str], bool] | None = None,
        model_budget: Callable[[str], ModelUsage | None] | None = None,
    ) -> Decision:
        """Route one task. The arguments are facts; nothing here reads a clock or a database.

        Args:
            task: the task's text (already validated: non-empty, bounded).
            scope: where the call is made.
            intent: the caller's intent (``InvalidInput`` when it is not known).
            min_tier: the caller's floor.
            floor: the learned promotion of an intent, if any.
            remaining: the smallest remaining budget fraction over the scope's levels.
            model_open: whether a model's breaker is open.
            model_budget: the tightest window of the scope's namespace's budget for a
                model (``budgets.models``; None: it limits the model in no window).
        """
        self.check_intent(intent)
        text = window(task)
        reasons: list[str] = []
        builtin = intent if intent in self.classifier.intents else None
        found = self.classifier.classify(text, intent=builtin)
        chosen = intent or found.intent

        matched = match_rule(self.rules, text=text, intent=chosen, scope=scope)
        if matched is not None:
            compiled, why = matched
            tier: TierName = compiled.rule.tier
            source = "rule"
            reasons.append(f"{compiled.label} ({why}) → {tier}")
        else:
            tier = found.tier
            source = "request" if builtin is not None else "classifier"
            explained = found.explain()
            reasons.append(("request " + explained) if builtin is not None else explained)

        tier, hard_floor = self._floors(tier, scope, min_tier, chosen, floor, reasons)
        wanted = tier
        tier = self._cap(tier, hard_floor, remaining, reasons)
        blocked = self._blocked(model_open, model_budget)
        model, tier, fell = self._fallback(tier, remaining, hard_floor, blocked, reasons)
        return Decision(
            model=model,
            tier=tier,
            intent=chosen,
            wanted_tier=wanted,
            # a lower tier than wanted, a model that cannot serve, one passed over for its
            # budget, or a preference given up: degraded service
            degraded=fell or rank(tier) < rank(wanted),
            source=source,
            reason="; ".join(reasons),
        )

    def _floors(
        self,
        tier: TierName,
        scope: Scope,
        min_tier: TierName | None,
        intent: str,
        floor: Callable[[str], Floor | None] | None,
        reasons: list[str],
    ) -> tuple[TierName, TierName]:
        """Apply min_tiers, the request's min_tier and a promotion; return (tier, hard floor)."""
        hard: TierName = "small"
        for prefix, minimum in self.routing.min_tiers.items():
            if scope.within(prefix) and rank(minimum) > rank(hard):
                hard = minimum
                if rank(minimum) > rank(tier):
                    reasons.append(f"min_tier {minimum} for {prefix}")
        if min_tier is not None and rank(min_tier) > rank(hard):
            hard = min_tier
            if rank(min_tier) > rank(tier):
                reasons.append(f"request min_tier {min_tier}")
        tier = higher(tier, hard)
        promoted = floor(intent) if floor is not None else None
        if promoted is not None and rank(promoted.tier) > rank(tier):
            tier = promoted.tier
            reasons.append(f"intent {intent} promoted to {promoted.tier} ({promoted.why})")
        return tier, hard

    def _budget_cap(self, remaining: float | None) -> tuple[TierName, float] | None:
        """The tier the remaining budget allows, with the threshold that set it."""
        if remaining is None:
            return None
        caps = [(t, f) for t, f in self.routing.degrade.items() if remaining < f]
        if not caps:
            return None
        return min(caps, key=lambda c: rank(c[0]))

    def _cap(
        self, tier: TierName, hard: TierName, remaining: float | None, reasons: list[str]
    ) -> TierName:
        cap = self._budget_cap(remaining)
        if cap is None or remaining is None or rank(tier) <= rank(cap[0]):
            return tier
        capped, threshold = cap
        left = (
            f"budget {percent_under(remaining, threshold)} left"
            f" (under {threshold_percent(threshold)})"
        )
        if rank(hard) > rank(capped):
            if rank(hard) < rank(tier):
                reasons.append(f"{left}: capped at {hard}, the min_tier")
                return hard
            reasons.append(f"{left}, but min_tier {hard} holds")
            return tier
        reasons.append(f"{left}: capped at {capped}")
        return capped

    def _blocked(
        self,
        model_open: Callable[[str], bool] | None,
        model_budget: Callable[[str], ModelUsage | None] | None,
    ) -> _Blocked | None:
        """Why a model may not serve a tier's task: its breaker first, then its budget."""
        if model_open is None and model_budget is None:
            return None

        def blocked(model: str, tier: TierName) -> Block | None:
            if model_open is not None and model_open(model):
                return breaker_block(model)
            if model_budget is None:
                return None
            return budget_block(model_budget(model), tier=tier, cap=self._budget_cap)

        return blocked

    def _fallback(
        self,
        tier: TierName,
        remaining: float | None,
        hard: TierName,
        blocked: _Blocked | None,
        reasons: list[str],
    ) -> tuple[str, TierName, bool]:
        """The tier's model, or the first candidate that can serve; failing those, a model
        kept out only by a preference (too little budget left for its tier, or over the
        levels' budget cap), before a model that cannot serve at all.

        Returns (model, tier, whether the fallback degraded the decision).
        """
        model = self.model_of(tier)
        why = blocked(model, tier) if blocked is not None else None
        if blocked is None or why is None:
            return model, tier, False
        cap = self._budget_cap(remaining)
        ceiling = rank(TIERS[-1]) if cap is None else max(rank(cap[0]), rank(hard))
        candidates: list[tuple[str, TierName, str]] = [
            (m, self._tier_of_model.get(m, tier), "fallback")
            for m in self.routing.fallbacks.get(model, [])
        ]
        up = [t for t in TIERS if rank(tier) < rank(t) <= ceiling]
        down = [t for t in reversed(TIERS) if rank(hard) <= rank(t) < rank(tier)]
        candidates += [(self.model_of(t), t, f"next tier {t}") for t in up + down]
        seen = {model}
        passed: list[Block] = []
        spare: list[tuple[str, TierName, str]] = []  # kept out by a preference only
        for candidate, candidate_tier, how in candidates:
            if candidate in seen:
                continue
            seen.add(candidate)
            other = blocked(candidate, candidate_tier)
            if other is None:
                reasons.append(f"{why.long} → {candidate} ({how})")
                return candidate, candidate_tier, why.budget or _any_budget(passed)
            passed.append(other)
            if other.soft:
                spare.append((candidate, candidate_tier, f"{how}, though {other.short}"))
        if why.soft:  # the tier's own model has money left: before any other preference
            reasons.append(why.long + self._kept(hard, blocked, passed))
            return model, tier, True
        # the levels' budget cap is a preference too: a model over it beats a certain refusal
        for over in (t for t in TIERS if rank(t) > ceiling):
            candidate = self.model_of(over)
            if candidate in seen:
                continue
            seen.add(candidate)
            other = blocked(candidate, over)
            if other is not None:
                passed.append(other)
            if other is None or other.soft:
                how = f"next tier {over}, over the budget cap at {TIERS[ceiling]}"
                spare.append((candidate, over, how + (f", though {other.short}" if other else "")))
        if spare:
            candidate, candidate_tier, how = spare[0]
            reasons.append(f"{why.long} → {candidate} ({how}: taken, as no other model can serve)")
            return candidate, candidate_tier, True
        budgeted = why.budget or _any_budget(passed)
        reasons.append(why.long + self._kept_out(hard, blocked, passed, budgeted=budgeted))
        return model, tier, True

    def _kept(self, hard: TierName, blocked: _Blocked, passed: list[Block]) -> str:
        """Why the tier's own model, short of budget for its tier, serves all the same."""
        if passed:
            return "; kept, as no other model fits better: " + ", ".join(b.short for b in passed)
        if self._below(hard, blocked):
            return f"; kept: min_tier {hard} allows no other model"
        return "; kept, as no other model fits better"

    def _below(self, hard: TierName, blocked: _Blocked) -> bool:
        """Whether a tier under the floor has a model that could take the call."""
        return any(_can_serve(blocked(self.model_of(t), t)) for t in TIERS if rank(t) < rank(hard))

    def _kept_out(
        self, hard: TierName, blocked: _Blocked, passed: list[Block], *, budgeted: bool
    ) -> str:
        """Why no model that can serve was taken: the floor, or none can (every fallback's
        breaker open, or the models passed over, each with why)."""
        if self._below(hard, blocked):
            return f"; min_tier {hard} allows no other model"
        if not budgeted:
            return " and no fallback is closed"
        listed = ", ".join(b.short for b in passed)
        return "; no other model can serve" + (f": {listed}" if listed else "")


def _can_serve(block: Block | None) -> bool:
    """Whether a model kept out by ``block`` could still take the call (a preference)."""
    return block is None or block.soft


def _any_budget(blocks: list[Block]) -> bool:
    return any(b.budget for b in blocks)
