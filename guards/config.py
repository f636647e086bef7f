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
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from guards.config_guards import (
    Breakers,
    Budgets,
    Burst,
    FailureTrip,
    HalfOpen,
    NearDuplicate,
    Price,
    Reservations,
    Routing,
    RoutingPromote,
    RoutingRule,
    RoutingTier,
    ScopeBudget,
    SpendRate,
    Validation,
)
from guards.config_people import (
    DEFAULT_TIERS,
    Alerts,
    Channels,
    Digest,
    EscalationStep,
    Heartbeats,
    Job,
    OnCall,
    Rotation,
)
from guards.config_types import WINDOWS, PolicyError, Section, TimeZone, parse_duration

__all__ = [
    "DEFAULT_TIERS",
    "WINDOWS",
    "Alerts",
    "Breakers",
    "Budgets",
    "Burst",
    "Channels",
    "Digest",
    "EscalationStep",
    "FailureTrip",
    "HalfOpen",
    "Heartbeats",
    "Job",
    "NearDuplicate",
    "OnCall",
    "Policy",
    "PolicyError",
    "Price",
    "Reservations",
    "Rotation",
    "Routing",
    "RoutingPromote",
    "RoutingRule",
    "RoutingTier",
    "ScopeBudget",
    "SpendRate",
    "Validation",
    "load_policy",
    "parse_duration",
    "parse_policy",
]

log = logging.getLogger(__name__)


class Policy(Section):
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
