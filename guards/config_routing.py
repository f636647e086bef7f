"""The policy's ``routing`` and ``prices`` sections: tiers, rules, learning, and the
price of each model (:mod:`guards.config` puts them together).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from guards.config_types import (
    Days,
    PositiveSeconds,
    Seconds,
    Section,
    refuse,
)
from guards.money import parse_usd
from guards.patterns import exponential
from guards.prices import LongContext, ModelPrice
from guards.scopes import Scope, ScopeError

__all__ = [
    "DEFAULT_ROUTE_MODELS",
    "ROUTE_TIERS",
    "LongContextPrice",
    "Price",
    "RouteTierName",
    "Routing",
    "RoutingPromote",
    "RoutingRule",
    "RoutingTier",
]


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
            why = exponential(value)
            if why:
                raise ValueError(
                    f"{value!r} can take exponential time on a task it does not match ({why}):"
                    " it runs on the writer every agent waits on; write it so that each part"
                    " of the text matches one way (`^[\\w\\s]*$` for `^(\\w+\\s?)*$`, `(ab?)*`"
                    " for `(a|ab)*`), or use keywords"
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
    # at 0 no rejection would count: refused while enabled (recheck26 Ka L1: off, it ran)
    rejection_window_seconds: Seconds = 3600
    # a bad week (an outage, a burst of rate limits) must not cost a tier up for good
    review_after: PositiveSeconds | None = 7 * 86400

    @model_validator(mode="after")
    def _window(self) -> RoutingPromote:
        if self.min_calls > self.window_calls:
            refuse("RoutingPromote", [(("min_calls",), "cannot be larger than window_calls")])
        if self.enabled and not self.rejection_window_seconds:
            refuse(
                "RoutingPromote",
                [
                    (
                        ("rejection_window_seconds",),
                        "0 is out of range while promote is enabled: must be at least 1s, or"
                        " no validation rejection would count (write e.g. 1h); with"
                        " enabled: false it may be 0",
                    )
                ],
            )
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
