"""The policy's sections for the guard engine: budgets, reservations, breakers and
validation (routing and prices: :mod:`guards.config_routing`; see the README's policy
reference)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

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
    format_seconds,
    in_words,
    refuse,
)
from guards.scopes import LEVELS, Scope, ScopeError

__all__ = [
    "Breakers",
    "Budgets",
    "Burst",
    "FailureTrip",
    "HalfOpen",
    "NearDuplicate",
    "Reservations",
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
    per_seconds: PositiveSeconds = 600


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
            # said at the key written: a `cooldown_seconds: 1d` alone was refused naming
            # max_cooldown_seconds, which the file never set (audit26 contract F3)
            least, most = (
                format_seconds(self.cooldown_seconds),
                format_seconds(self.max_cooldown_seconds),
            )
            if "max_cooldown_seconds" in self.model_fields_set:
                said = (
                    ("max_cooldown_seconds",),
                    f"{most} is shorter than cooldown_seconds ({least})",
                )
            else:
                said = (
                    ("cooldown_seconds",),
                    f"{least} is longer than max_cooldown_seconds ({most}, the longest a"
                    " cool-down grows to): raise max_cooldown_seconds too",
                )
            refuse("Breakers", [said])
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
