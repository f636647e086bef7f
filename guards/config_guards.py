"""The policy's sections for the guard engine: budgets, reservations, breakers,
validation, routing and prices (see the README's policy reference)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from guards.config_types import (
    WINDOWS,
    Days,
    Limits,
    Micros,
    PositiveMicros,
    PositiveSeconds,
    Seconds,
    Section,
    TimeZone,
    in_words,
    refuse,
)
from guards.money import parse_usd
from guards.patterns import nested_repeat
from guards.prices import LongContext, ModelPrice
from guards.scopes import LEVELS, Scope, ScopeError

__all__ = [
    "DEFAULT_ROUTE_MODELS",
    "ROUTE_TIERS",
    "Breakers",
    "Budgets",
    "Burst",
    "FailureTrip",
    "HalfOpen",
    "LongContextPrice",
    "NearDuplicate",
    "Price",
    "Reservations",
    "RouteTierName",
    "Routing",
    "RoutingPromote",
    "RoutingRule",
    "RoutingTier",
    "ScopeBudget",
    "SpendRate",
    "Validation",
]


class ScopeBudget(Section):
    """Limits of one scope, and for a namespace optionally its time zone."""

    day: Micros | None = None
    week: Micros | None = None
    month: Micros | None = None
    total: Micros | None = None
    timezone: TimeZone | None = None

    def limits(self) -> dict[str, int]:
        return {w: v for w in WINDOWS if (v := getattr(self, w)) is not None}


class Budgets(Section):
    defaults: dict[str, Limits] = Field(default_factory=dict)
    scopes: dict[str, ScopeBudget] = Field(default_factory=dict)
    warn_at: list[float] = Field(default_factory=lambda: [0.8])

    @model_validator(mode="after")
    def _levels(self) -> Budgets:
        """Each unknown level or window is named with its own key path."""
        levels, windows = ", ".join(LEVELS), ", ".join(WINDOWS)
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for level, limits in self.defaults.items():
            if level not in LEVELS:
                problems.append(
                    (("defaults", level), f"unknown level {level!r}; levels are {levels}")
                )
                continue
            problems.extend(
                (("defaults", level, window), f"unknown window {window!r}; windows are {windows}")
                for window in limits
                if window not in WINDOWS
            )
        if problems:
            refuse("Budgets", problems)
        return self

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: dict[str, ScopeBudget]) -> dict[str, ScopeBudget]:
        for path, budget in value.items():
            try:
                scope = Scope.parse(path)
            except ScopeError as exc:
                raise ValueError(str(exc)) from None
            if budget.timezone is not None and scope.depth != 1:
                said = f"only a namespace sets a timezone: {path} follows {scope.namespace}'s"
                refuse("Budgets", [((path, "timezone"), said)])
        return value

    @field_validator("warn_at")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < f < 1 for f in value):
            raise ValueError("warn_at fractions are between 0 and 1, e.g. [0.8]")
        twice = sorted({f for f in value if value.count(f) > 1})
        if twice:
            raise ValueError(
                f"{', '.join(map(str, twice))} appears more than once; list each fraction once,"
                " e.g. [0.5, 0.8]"
            )
        return sorted(value)


class Reservations(Section):
    """A hold's lifetime when the request names none, and the most a request may ask."""

    ttl_seconds: PositiveSeconds = 600
    max_ttl_seconds: PositiveSeconds = 86400

    @model_validator(mode="after")
    def _ttl_within_max(self) -> Reservations:
        if self.ttl_seconds > self.max_ttl_seconds:
            ttl, most = in_words(self.ttl_seconds), in_words(self.max_ttl_seconds)
            refuse(
                "Reservations",
                [
                    (
                        ("ttl_seconds",),
                        f"{ttl} is longer than max_ttl_seconds ({most}), so every hold without"
                        f" its own ttl would be refused; lower ttl_seconds to at most {most}"
                        f" or raise max_ttl_seconds to at least {ttl}",
                    )
                ],
            )
        return self


class FailureTrip(Section):
    """Trip on ``consecutive`` failures in a row, or on ``rate`` of the last ``window_calls``."""

    consecutive: int = Field(5, ge=1, le=10_000)
    rate: float = Field(0.5, gt=0, le=1)
    window_calls: int = Field(20, ge=1, le=10_000)
    min_calls: int = Field(10, ge=1, le=10_000)

    @model_validator(mode="after")
    def _window(self) -> FailureTrip:
        if self.min_calls > self.window_calls:
            refuse("FailureTrip", [(("min_calls",), "cannot be larger than window_calls")])
        return self


class SpendRate(Section):
    """Trip when the money charged within ``per_seconds`` reaches ``max`` (>=, not >)."""

    max: PositiveMicros = 2_000_000
    per_seconds: Seconds = Field(600, ge=1)


class HalfOpen(Section):
    mode: Literal["approval", "auto"] = "approval"
    trial_calls: int = Field(3, ge=1, le=1000)
    trial_budget: PositiveMicros = 500_000


# A model fails for many agents at once: it takes more to trip than one agent's failures.
_MODEL_FAILURES: dict[str, Any] = {
    "consecutive": 10,
    "rate": 0.5,
    "window_calls": 40,
    "min_calls": 20,
}


class Breakers(Section):
    enabled: bool = True
    failures: FailureTrip = FailureTrip()
    spend_rate: SpendRate | None = SpendRate()
    namespace_spend_rate: SpendRate | None = None
    max_attempts_per_task: int = Field(3, ge=1, le=1000)
    cooldown_seconds: PositiveSeconds = 900  # 0 would let a tripped spend breaker pass every call
    max_cooldown_seconds: PositiveSeconds = 4 * 3600
    half_open: HalfOpen = HalfOpen()
    # failures-tripped breakers may use a different half-open mode than spend trips
    failures_half_open_mode: Literal["approval", "auto"] | None = None
    model_failures: FailureTrip = FailureTrip(**_MODEL_FAILURES)
    # a model breaker trips only when its failures come from at least this many agents
    model_min_agents: int = Field(2, ge=1, le=10_000)
    # a model's outage needs no human: its trial starts by itself after the cool-down
    model_half_open_mode: Literal["approval", "auto"] = "auto"

    @field_validator("model_failures", mode="before")
    @classmethod
    def _model_defaults(cls, value: object) -> object:
        # a model breaker's own defaults stand for the keys a policy leaves out
        return {**_MODEL_FAILURES, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _cooldowns(self) -> Breakers:
        if self.max_cooldown_seconds < self.cooldown_seconds:
            refuse(
                "Breakers", [(("max_cooldown_seconds",), "cannot be smaller than cooldown_seconds")]
            )
        return self


class NearDuplicate(Section):
    """How near is a near-duplicate (see guards/validation/index.py).

    ``minhash`` (the default) rejects an item whose estimated similarity to a
    remembered one reaches ``threshold``; ``simhash`` rejects one within
    ``max_distance`` bits of 64. On the labelled corpus (tests/data/near_duplicates.tsv)
    minhash at 0.7 finds far more re-published items at about the same precision.
    ``enabled: false`` keeps only the exact-duplicate check.
    """

    enabled: bool = True
    method: Literal["minhash", "simhash"] = "minhash"
    threshold: float = Field(0.7, ge=0.3, le=1.0)
    max_distance: int = Field(3, ge=0, le=11)


class Burst(Section):
    """DuplicateBurst fires once when a stream's duplicate rejections reach ``count``
    within ``window_seconds``, and again only after a quiet window."""

    count: int = Field(5, ge=1, le=100_000)
    window_seconds: Seconds = 3600


class Validation(Section):
    window_days: Days = Field(7, ge=1, le=365)
    near_duplicate: NearDuplicate = NearDuplicate()
    runaway_factor: float = Field(1.5, ge=1.0, le=1000)
    max_item_chars: int = Field(20_000, ge=1, le=1_000_000)
    max_items: int = Field(1000, ge=1, le=10_000)
    burst: Burst = Burst()
    rejections_retention_days: Days = Field(30, ge=1, le=3650)
    # the near-duplicate indexes held in memory; past it the least recently used streams
    # are dropped and reload their window from SQLite on their next batch
    index_memory_mb: int = Field(256, ge=1, le=1_000_000)


RouteTierName = Literal["small", "medium", "large"]
ROUTE_TIERS: tuple[RouteTierName, ...] = ("small", "medium", "large")
DEFAULT_ROUTE_MODELS: dict[RouteTierName, str] = {
    "small": "claude-haiku-4-5",
    "medium": "claude-sonnet-4-5",
    "large": "claude-opus-4-5",
}


class RoutingTier(Section):
    model: str = Field(min_length=1, max_length=200)


class RoutingRule(Section):
    """A policy rule: when every condition it names holds, the task goes to ``tier``.

    ``intent`` matches the request's or the classifier's intent, ``keywords`` match
    whole words or phrases of the task (any one, case-insensitive), ``pattern`` is a
    regular expression searched in the task, ``scope`` a scope prefix.
    """

    tier: RouteTierName
    name: str | None = Field(None, min_length=1, max_length=80)
    intent: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    keywords: list[str] = Field(default_factory=list)
    pattern: str | None = None
    scope: str | None = None

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        if any(not k.strip() for k in value):
            raise ValueError("keywords are non-empty words or phrases")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
            if nested_repeat(value):
                raise ValueError(
                    f"{value!r} repeats a part that itself repeats (like `(\\w+\\s?)*`):"
                    " on a task it does not match it can run for hours, and every agent"
                    " waits; write it with one repeat (`^[\\w\\s]*$`), or use keywords"
                )
        return value

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Scope.parse(value)
            except ScopeError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _has_condition(self) -> RoutingRule:
        if not (self.intent or self.keywords or self.pattern or self.scope):
            raise ValueError("a rule needs at least one of intent, keywords, pattern or scope")
        return self


class RoutingPromote(Section):
    """Learning: promote an intent one tier when its calls at its lowest tier fail too often.

    A promotion is reviewed ``review_after`` it was made: it lapses, the intent goes back
    to its own tier and learns again (``null``: it stays until an admin reverts it).
    """

    enabled: bool = True
    rate: float = Field(0.3, gt=0, le=1)
    window_calls: int = Field(20, ge=1, le=10_000)
    min_calls: int = Field(10, ge=1, le=10_000)
    max_tier: RouteTierName = "large"
    # a validation rejection naming a route_id counts when that call settled this recently
    rejection_window_seconds: Seconds = 3600
    # a bad week (an outage, a burst of rate limits) must not cost a tier up for good
    review_after: PositiveSeconds | None = 7 * 86400

    @model_validator(mode="after")
    def _window(self) -> RoutingPromote:
        if self.min_calls > self.window_calls:
            refuse("RoutingPromote", [(("min_calls",), "cannot be larger than window_calls")])
        return self


def _default_degrade() -> dict[Literal["small", "medium"], float]:
    return {"medium": 0.20, "small": 0.05}


class Routing(Section):
    tiers: dict[RouteTierName, RoutingTier] = Field(
        default_factory=lambda: {t: RoutingTier(model=m) for t, m in DEFAULT_ROUTE_MODELS.items()}
    )
    rules: list[RoutingRule] = Field(default_factory=list)
    # scope prefix -> the lowest tier any task under it may get
    min_tiers: dict[str, RouteTierName] = Field(default_factory=dict)
    # cap the tier when the remaining budget fraction falls under these: {medium: 0.2, small: 0.05}
    degrade: dict[Literal["small", "medium"], float] = Field(default_factory=_default_degrade)
    # model -> models to try, in order, when its breaker is open
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    promote: RoutingPromote = RoutingPromote()
    # the tier of a task the classifier recognises nothing in
    default_tier: RouteTierName = "medium"
    # share of input tokens assumed when blending input and output prices into one $/MTok
    blend_input_share: float = Field(0.75, ge=0, le=1)
    # decisions older than this are deleted by the pruning job (promotions are kept)
    retention_days: Days = Field(90, ge=1, le=3650)

    @field_validator("tiers", mode="before")
    @classmethod
    def _fill_tiers(cls, value: object) -> object:
        if isinstance(value, dict):
            return {**{t: {"model": m} for t, m in DEFAULT_ROUTE_MODELS.items()}, **value}
        return value

    @field_validator("min_tiers")
    @classmethod
    def _min_tier_scopes(cls, value: dict[str, str]) -> dict[str, str]:
        for path in value:
            try:
                Scope.parse(path)
            except ScopeError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("degrade")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0 < f < 1 for f in value.values()):
            raise ValueError("degrade fractions are between 0 and 1, e.g. {medium: 0.2}")
        if "small" in value and "medium" in value and value["small"] >= value["medium"]:
            raise ValueError(
                f"small ({value['small']}) must be below medium ({value['medium']}): the cap"
                " drops to medium first, then to small as the budget runs out"
            )
        return value

    @field_validator("fallbacks")
    @classmethod
    def _chains(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for model, chain in value.items():
            if not chain or any(not m.strip() for m in chain):
                raise ValueError(f"{model}: a fallback chain is a non-empty list of model names")
        return value


class LongContextPrice(Section):
    """The rates of a request whose prompt has more than ``above_input_tokens`` input
    tokens; they price the whole request (Anthropic's 1M-token window for Sonnet 4/4.5)."""

    above_input_tokens: int = Field(200_000, ge=1, le=10**9)
    input: Annotated[int, BeforeValidator(parse_usd)]  # micros per million tokens
    output: Annotated[int, BeforeValidator(parse_usd)]


class Price(Section):
    input: Annotated[int, BeforeValidator(parse_usd)]  # micros per million tokens
    output: Annotated[int, BeforeValidator(parse_usd)]
    # left out: a model with a shipped long-context price keeps it (see guards.prices)
    long_context: LongContextPrice | None = None

    def model_price(self) -> ModelPrice:
        """The price as :class:`guards.prices.PriceTable` takes it."""
        long = self.long_context
        return ModelPrice(
            self.input,
            self.output,
            None if long is None else LongContext(long.above_input_tokens, long.input, long.output),
        )
