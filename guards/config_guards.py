"""The policy's sections for the guard engine: budgets, reservations, breakers and
validation (routing and prices: :mod:`guards.config_routing`; see the README's policy
reference)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from guards.config_models import ModelLimits
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
    "BreakerScope",
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
    # per model, what each namespace may spend on it (guards.model_budgets)
    models: ModelLimits = Field(default_factory=dict)
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
    """Trip on ``consecutive`` failures in a row, or on ``rate`` of the last ``window_calls``.
    ``slow_after``: a call settled that long after its reserve or longer counts as failed,
    whatever its outcome (resilience4j's slow calls; 0, the default: none is)."""

    consecutive: int = Field(5, ge=1, le=10_000)
    rate: float = Field(0.5, gt=0, le=1)
    window_calls: int = Field(20, ge=1, le=10_000)
    min_calls: int = Field(10, ge=1, le=10_000)
    slow_after: Seconds = 0

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


class BreakerScope(Section):
    """The breaker limits of one scope prefix (``breakers.scopes.<prefix>``): any subset of
    the top-level keys; a key left out is the top level's (field by field in
    ``failures``, ``half_open`` and the spend rates), and ``spend_rate: null`` turns the
    spend breaker off under the prefix."""

    spend_rate: SpendRate | None = None
    namespace_spend_rate: SpendRate | None = None
    failures: FailureTrip | None = None
    cooldown_seconds: PositiveSeconds | None = None
    max_cooldown_seconds: PositiveSeconds | None = None
    half_open: HalfOpen | None = None
    failures_half_open_mode: Literal["approval", "auto"] | None = None
    max_attempts_per_task: int | None = Field(None, ge=1, le=1000)

    @field_validator(
        "failures",
        "cooldown_seconds",
        "max_cooldown_seconds",
        "half_open",
        "failures_half_open_mode",
        "max_attempts_per_task",
        mode="before",
    )
    @classmethod
    def _not_empty(cls, value: object) -> object:
        # a key written with nothing after it is null in YAML: only a spend rate may be
        # turned off so; the others crashed the breakers at start or per call (review29 H1)
        if value is None:
            raise ValueError(
                "has no value: leave the key out to keep the top level's (only spend_rate"
                " and namespace_spend_rate may be null, to turn them off)"
            )
        return value


# the keys of a prefix that merge field by field with the top level's (keys left out inherit)
_MERGED: dict[str, type[Section]] = {
    "failures": FailureTrip,
    "half_open": HalfOpen,
    "spend_rate": SpendRate,
    "namespace_spend_rate": SpendRate,
}


def _inherited(kind: type[Section], value: object) -> dict[str, Any]:
    """What a prefix inherits of a top-level section: the keys the file wrote there, if
    they are valid (a bad one is refused at its own key, not again under each prefix)."""
    if isinstance(value, Section):
        return value.model_dump(exclude_unset=True)
    if not isinstance(value, dict):
        return {}
    try:
        kind.model_validate(value)
    except ValueError:
        return {}
    return value


def _prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a breaker prefix (None: it can)."""
    if prefix.startswith("model:"):
        return (
            "a model's breaker is set by breakers.model_failures, model_min_agents and"
            " model_half_open_mode (one for every model); a prefix here is a scope path"
            " such as acme/alice"
        )
    try:
        scope = Scope.parse(prefix)
    except ScopeError as exc:
        return f"not a scope path: {exc}"
    if scope.depth > 3:
        agent = "/".join(prefix.split("/")[:3])
        return f"a conversation's calls count toward its agent's breaker: write {agent}"
    return None


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
    # when a model's breaker closes after its trial, the agents' breakers that tripped on
    # that model's failures start their trial without a person (audit27 parity #2)
    follow_model: bool = True
    # limits per scope prefix; the longest prefix of a breaker's key wins
    scopes: dict[str, BreakerScope] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _scopes_inherit(cls, data: object) -> object:
        """A prefix's ``failures``, ``half_open`` and spend rates are the top level's with
        the keys it wrote on top, checked as one (``min_calls`` against the top level's
        ``window_calls``), as ``model_failures`` merges its defaults."""
        if not isinstance(data, dict) or not isinstance(data.get("scopes"), dict):
            return data
        scopes: dict[object, object] = {}
        for prefix, over in data["scopes"].items():
            if isinstance(over, dict):
                over = dict(over)
                for key, kind in _MERGED.items():
                    if isinstance(over.get(key), dict):
                        over[key] = {**_inherited(kind, data.get(key)), **over[key]}
            scopes[prefix] = over
        return {**data, "scopes": scopes}

    @field_validator("scopes")
    @classmethod
    def _prefixes(cls, value: dict[str, BreakerScope]) -> dict[str, BreakerScope]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for prefix, limits in value.items():
            problem = _prefix_problem(prefix)
            if problem is not None:
                problems.append(((prefix,), problem))
            elif "namespace_spend_rate" in limits.model_fields_set and "/" in prefix:
                namespace = prefix.split("/")[0]
                problems.append(
                    (
                        (prefix, "namespace_spend_rate"),
                        f"only a namespace sets namespace_spend_rate: write it under {namespace}",
                    )
                )
        if problems:
            refuse("Breakers", problems)
        return value

    def for_prefix(self, prefix: str) -> Breakers:
        """The section as it holds under ``prefix``: the top level with the prefix's keys.

        >>> b = Breakers.model_validate({"scopes": {"acme": {"cooldown_seconds": 60}}})
        >>> b.for_prefix("acme").cooldown_seconds, b.for_prefix("acme").max_cooldown_seconds
        (60, 14400)
        """
        limits = self.scopes[prefix]
        written = {key: getattr(limits, key) for key in limits.model_fields_set}
        return self.model_copy(update={**written, "scopes": {}})

    @field_validator("model_failures", mode="before")
    @classmethod
    def _model_defaults(cls, value: object) -> object:
        # a model breaker's own defaults stand for the keys a policy leaves out
        return {**_MODEL_FAILURES, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _cooldowns(self) -> Breakers:
        said = _cooldown_problem(self, self.model_fields_set)
        problems = [] if said is None else [said]
        for prefix, limits in self.scopes.items():
            if not {"cooldown_seconds", "max_cooldown_seconds"} & limits.model_fields_set:
                continue  # the top level's own, said there
            under = _cooldown_problem(self.for_prefix(prefix), limits.model_fields_set)
            if under is not None:
                problems.append((("scopes", prefix, *under[0]), under[1]))
        if problems:
            refuse("Breakers", problems)
        return self


def _cooldown_problem(cfg: Breakers, written: set[str]) -> tuple[tuple[str | int, ...], str] | None:
    """A cool-down longer than its cap, said at the key written: a `cooldown_seconds: 1d`
    alone was refused naming max_cooldown_seconds, which the file never set (audit26
    contract F3)."""
    if cfg.max_cooldown_seconds >= cfg.cooldown_seconds:
        return None
    least, most = format_seconds(cfg.cooldown_seconds), format_seconds(cfg.max_cooldown_seconds)
    if "max_cooldown_seconds" in written:
        return (("max_cooldown_seconds",), f"{most} is shorter than cooldown_seconds ({least})")
    return (
        ("cooldown_seconds",),
        f"{least} is longer than max_cooldown_seconds ({most}, the longest a"
        " cool-down grows to): raise max_cooldown_seconds too",
    )


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
    window_seconds: PositiveSeconds = 3600  # at 0 every rejected batch would be a burst


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
