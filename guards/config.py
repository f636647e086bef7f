"""The policy file (YAML): budgets, breakers, validation, alerts, on-call, jobs, routing.

Every key is checked at load; an unknown key or a bad value raises :class:`PolicyError`
naming the key path and the problem, and the process does not start.

Example:
    >>> policy = Policy.model_validate({"budgets": {"defaults": {"agent": {"day": "10.00"}}}})
    >>> policy.budgets.defaults["agent"]["day"]
    10000000
"""

from __future__ import annotations

import logging
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from guards.money import parse_usd
from guards.scopes import LEVELS, Scope, ScopeError

__all__ = ["Policy", "PolicyError", "load_policy", "parse_duration"]

log = logging.getLogger(__name__)

WINDOWS = ("day", "week", "month", "total")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class PolicyError(Exception):
    """The policy file is unusable; the message names the key and the problem."""


def parse_duration(value: object) -> int:
    """``30s``, ``5m``, ``2h``, ``1d`` (or a plain number of seconds) to whole seconds.

    >>> parse_duration("5m")
    300
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m, 2h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (write 30s, 5m, 2h or 1d)")
    if seconds < 0 or seconds > 366 * 86400:
        raise ValueError(f"{value!r} is out of range (0 to 366 days)")
    return int(seconds)


def _check_tz(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("a time zone is a name like Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return value


Micros = Annotated[int, BeforeValidator(parse_usd)]
Seconds = Annotated[int, BeforeValidator(parse_duration)]
TimeZone = Annotated[str, BeforeValidator(_check_tz)]
Tier = Literal["P0", "P1", "P2"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_windows(value: dict[str, int]) -> dict[str, int]:
    for key in value:
        if key not in WINDOWS:
            raise ValueError(f"unknown window {key!r}; windows are {', '.join(WINDOWS)}")
    return value


Limits = Annotated[dict[str, Micros], BeforeValidator(lambda v: v if v is not None else {})]


class ScopeBudget(_Model):
    """Limits of one scope, and for a namespace optionally its time zone."""

    day: Micros | None = None
    week: Micros | None = None
    month: Micros | None = None
    total: Micros | None = None
    timezone: TimeZone | None = None

    def limits(self) -> dict[str, int]:
        return {w: v for w in WINDOWS if (v := getattr(self, w)) is not None}


class Budgets(_Model):
    defaults: dict[str, Limits] = Field(default_factory=dict)
    scopes: dict[str, ScopeBudget] = Field(default_factory=dict)
    warn_at: list[float] = Field(default_factory=lambda: [0.8])

    @field_validator("defaults")
    @classmethod
    def _levels(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for level, limits in value.items():
            if level not in LEVELS:
                raise ValueError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
            _check_windows(limits)
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: dict[str, ScopeBudget]) -> dict[str, ScopeBudget]:
        for path, budget in value.items():
            try:
                scope = Scope.parse(path)
            except ScopeError as exc:
                raise ValueError(str(exc)) from None
            if budget.timezone is not None and scope.depth != 1:
                raise ValueError(f"{path}: only a namespace can set a timezone")
        return value

    @field_validator("warn_at")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < f < 1 for f in value):
            raise ValueError("warn_at fractions are between 0 and 1, e.g. [0.8]")
        return sorted(value)


class Reservations(_Model):
    ttl_seconds: Seconds = 600
    max_ttl_seconds: Seconds = 86400


class FailureTrip(_Model):
    """Trip on ``consecutive`` failures in a row, or on ``rate`` of the last ``window_calls``."""

    consecutive: int = Field(5, ge=1, le=10_000)
    rate: float = Field(0.5, gt=0, le=1)
    window_calls: int = Field(20, ge=1, le=10_000)
    min_calls: int = Field(10, ge=1, le=10_000)

    @model_validator(mode="after")
    def _window(self) -> FailureTrip:
        if self.min_calls > self.window_calls:
            raise ValueError("min_calls cannot be larger than window_calls")
        return self


class SpendRate(_Model):
    """Trip when the money charged within ``per_seconds`` reaches ``max`` (>=, not >)."""

    max: Micros = Field(2_000_000, ge=1)
    per_seconds: Seconds = Field(600, ge=1)


class HalfOpen(_Model):
    mode: Literal["approval", "auto"] = "approval"
    trial_calls: int = Field(3, ge=1, le=1000)
    trial_budget: Micros = Field(500_000, ge=1)


class Breakers(_Model):
    enabled: bool = True
    failures: FailureTrip = FailureTrip()
    spend_rate: SpendRate | None = SpendRate()
    namespace_spend_rate: SpendRate | None = None
    max_attempts_per_task: int = Field(3, ge=1, le=1000)
    cooldown_seconds: Seconds = 900
    max_cooldown_seconds: Seconds = 4 * 3600
    half_open: HalfOpen = HalfOpen()
    # failures-tripped breakers may use a different half-open mode than spend trips
    failures_half_open_mode: Literal["approval", "auto"] | None = None
    model_failures: FailureTrip = FailureTrip(
        consecutive=10, rate=0.5, window_calls=40, min_calls=20
    )
    # a model breaker trips only when its failures come from at least this many agents
    model_min_agents: int = Field(2, ge=1, le=10_000)
    # a model's outage needs no human: its trial starts by itself after the cool-down
    model_half_open_mode: Literal["approval", "auto"] = "auto"

    @model_validator(mode="after")
    def _cooldowns(self) -> Breakers:
        if self.max_cooldown_seconds < self.cooldown_seconds:
            raise ValueError("max_cooldown_seconds cannot be smaller than cooldown_seconds")
        return self


class NearDuplicate(_Model):
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


class Burst(_Model):
    """DuplicateBurst fires once when a stream's duplicate rejections reach ``count``
    within ``window_seconds``, and again only after a quiet window."""

    count: int = Field(5, ge=1, le=100_000)
    window_seconds: Seconds = 3600


class Validation(_Model):
    window_days: int = Field(7, ge=1, le=365)
    near_duplicate: NearDuplicate = NearDuplicate()
    runaway_factor: float = Field(1.5, ge=1.0, le=1000)
    max_item_chars: int = Field(20_000, ge=1, le=1_000_000)
    max_items: int = Field(1000, ge=1, le=10_000)
    burst: Burst = Burst()
    rejections_retention_days: int = Field(30, ge=1, le=3650)


class Heartbeats(_Model):
    timeout_seconds: Seconds = 300
    misses_before_alert: int = Field(2, ge=1, le=1000)


DEFAULT_TIERS: dict[str, Tier] = {
    "breaker_opened_spend": "P0",
    "runaway": "P0",
    "heartbeat_missed": "P0",
    "breaker_opened_failures": "P1",
    "breaker_opened_manual": "P2",
    "budget_exhausted": "P1",
    "overrun": "P1",
    "duplicate_burst": "P1",
    "half_open_requested": "P1",
    "attempts_exhausted": "P2",
    "scope_violation": "P1",
    "job_run_cap": "P1",
    "budget_threshold": "P2",
    "hold_expired": "P2",
    "routing_promoted": "P2",
}


class Alerts(_Model):
    """Tiers per alert kind, and the timers of grouping and escalation.

    ``repeat_escalation``: how many times the chain runs again after its last step
    (waiting ``repeat_escalation_after`` first) while nobody acknowledges.
    ``auto_resolve_after``: an alert with no clearing condition (overrun, runaway, ...)
    resolves after this long without a new firing, unless it is an unacknowledged P0.
    """

    tiers: dict[str, Tier] = Field(default_factory=dict)
    p1_escalate_after: Seconds = 1800
    update_interval_seconds: Seconds = 30
    repeat_escalation: int = Field(1, ge=0, le=100)
    repeat_escalation_after: Seconds = 900
    auto_resolve_after: Seconds = 3600

    def tier_of(self, kind: str) -> Tier:
        return self.tiers.get(kind) or DEFAULT_TIERS.get(kind, "P1")


class Rotation(_Model):
    name: str
    users: list[str] = Field(min_length=1)
    period: Literal["day", "week"] = "week"
    handoff: str = "mon 09:00"
    start: str | None = None  # ISO date the first user started; defaults to 2026-01-05

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str) -> str:
        if not re.fullmatch(r"((mon|tue|wed|thu|fri|sat|sun) )?([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r}: write a hand-off as 'mon 09:00' or '09:00'")
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r}: write the start as a date, e.g. 2026-01-05") from None
        return value

    @model_validator(mode="after")
    def _weekday_needs_week(self) -> Rotation:
        if self.period == "day" and " " in self.handoff:
            raise ValueError(f"a daily rotation hands off every day: write '{self.handoff[4:]}'")
        return self


class EscalationStep(_Model):
    notify: str
    after: Seconds = 0

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: str) -> str:
        if value != "channel" and not re.fullmatch(r"(rotation|user):\S+", value):
            raise ValueError(f"{value!r}: notify is rotation:NAME, user:ID or channel")
        return value


class OnCall(_Model):
    rotations: list[Rotation] = Field(default_factory=list)
    escalation: list[EscalationStep] = Field(default_factory=list)

    @model_validator(mode="after")
    def _refs(self) -> OnCall:
        names = {r.name for r in self.rotations}
        for step in self.escalation:
            if step.notify.startswith("rotation:") and step.notify[9:] not in names:
                raise ValueError(f"escalation names unknown rotation {step.notify[9:]!r}")
        return self


class Digest(_Model):
    time: str = "09:00"
    enabled: bool = True

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r}: write the digest time as HH:MM")
        return value


RouteTierName = Literal["small", "medium", "large"]
ROUTE_TIERS: tuple[RouteTierName, ...] = ("small", "medium", "large")
DEFAULT_ROUTE_MODELS: dict[RouteTierName, str] = {
    "small": "claude-haiku-4-5",
    "medium": "claude-sonnet-4-5",
    "large": "claude-opus-4-1",
}


class RoutingTier(_Model):
    model: str = Field(min_length=1, max_length=200)


class RoutingRule(_Model):
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


class RoutingPromote(_Model):
    """Learning: promote an intent one tier when its calls at its lowest tier fail too often."""

    enabled: bool = True
    rate: float = Field(0.3, gt=0, le=1)
    window_calls: int = Field(20, ge=1, le=10_000)
    min_calls: int = Field(10, ge=1, le=10_000)
    max_tier: RouteTierName = "large"
    # a validation rejection counts against the agent's last successful call this recent
    rejection_window_seconds: Seconds = 3600

    @model_validator(mode="after")
    def _window(self) -> RoutingPromote:
        if self.min_calls > self.window_calls:
            raise ValueError("min_calls cannot be larger than window_calls")
        return self


def _default_degrade() -> dict[Literal["small", "medium"], float]:
    return {"medium": 0.20, "small": 0.05}


class Routing(_Model):
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
    retention_days: int = Field(90, ge=1, le=3650)

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
        return value

    @field_validator("fallbacks")
    @classmethod
    def _chains(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for model, chain in value.items():
            if not chain or any(not m.strip() for m in chain):
                raise ValueError(f"{model}: a fallback chain is a non-empty list of model names")
        return value


class Job(_Model):
    """An agent's scheduled job: Nightshift POSTs ``{job, run_id, scheduled_for}`` to ``url``.

    ``timezone`` defaults to the job's namespace time zone (the policy's unless the
    namespace sets one). ``secret`` is sent as ``X-Nightshift-Job-Secret``; without
    it a secret is derived per database (``nightshift jobs preview --secrets``).
    ``misfire_grace_seconds``: after downtime, missed fires coalesce into one run if
    the latest is at most this old; older ones are recorded as missed.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    cron: str
    url: str
    scope: str
    timezone: TimeZone | None = None
    max_runs_per_hour: int = Field(60, ge=1, le=3600)
    timeout_seconds: Seconds = Field(300, ge=1)
    allow_frequent: bool = False
    secret: str | None = Field(None, min_length=16, max_length=256)
    misfire_grace_seconds: Seconds = 3600

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        try:
            Scope.parse(value, min_depth=3)
        except ScopeError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError(f"{value!r}: a job url starts with http:// or https://")
        return value


class Price(_Model):
    input: Annotated[int, BeforeValidator(parse_usd)]  # micros per million tokens
    output: Annotated[int, BeforeValidator(parse_usd)]


class Channels(_Model):
    """Slack channels; ``alerts_by_scope`` sends a subtree's alerts elsewhere (longest prefix)."""

    alerts: str | None = None
    digest: str | None = None
    alerts_by_scope: dict[str, str] = Field(default_factory=dict)

    def alerts_for(self, scope: str) -> str | None:
        """The channel for alerts about ``scope``: the longest matching prefix, else ``alerts``."""
        best: tuple[int, str] | None = None
        for prefix, channel in self.alerts_by_scope.items():
            if (scope == prefix or scope.startswith(prefix + "/")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), channel)
        return best[1] if best else self.alerts


class Policy(_Model):
    """The whole policy file. Every key has a default: an empty file is valid."""

    timezone: TimeZone = "UTC"
    admins: list[str] = Field(default_factory=list)
    admin_groups: list[str] = Field(default_factory=list)
    channels: Channels = Channels()
    budgets: Budgets = Budgets()
    reservations: Reservations = Reservations()
    breakers: Breakers = Breakers()
    validation: Validation = Validation()
    heartbeats: Heartbeats = Heartbeats()
    alerts: Alerts = Alerts()
    oncall: OnCall = OnCall()
    digest: Digest = Digest()
    routing: Routing = Routing()
    jobs: list[Job] = Field(default_factory=list)
    prices: dict[str, Price] = Field(default_factory=dict)

    def namespace_timezone(self, namespace: str) -> str:
        budget = self.budgets.scopes.get(namespace)
        return budget.timezone if budget and budget.timezone else self.timezone


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: the policy is not valid:"]
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the README's policy reference)"
        lines.append(f"  {path or '(top level)'}: {msg}")
    return "\n".join(lines)


def parse_policy(data: Any, *, source: str = "policy") -> Policy:
    """Validate already-parsed YAML into a :class:`Policy`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            f"{source}: the policy must be a mapping of keys, not {type(data).__name__}"
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_format_errors(exc, source)) from None


def load_policy(path: str | Path, *, missing_ok: bool = True) -> Policy:
    """Read and validate the policy file; an absent file gives the built-in defaults."""
    file = Path(path)
    if not file.exists():
        if not missing_ok:
            raise PolicyError(f"{file}: no such policy file")
        log.info("no policy file at %s: using built-in defaults", file)
        return Policy()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{file}: not valid YAML: {exc}") from None
    return parse_policy(data, source=str(file))
