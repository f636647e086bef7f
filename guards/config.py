"""The policy file (YAML): budgets, breakers, validation, alerts, on-call, jobs, routing,
retention.

Every key is checked at load; an unknown key or a bad value raises :class:`PolicyError`
naming the key path and the problem, and the process does not start.

Example:
    >>> policy = Policy.model_validate({"budgets": {"defaults": {"agent": {"day": "10.00"}}}})
    >>> policy.budgets.defaults["agent"]["day"]
    10000000
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from guards.config_across import (
    cross_section_errors,
    known_models,
    refuse_across,
    routed_models,
    unpriced,
)
from guards.config_guards import (
    Breakers,
    Budgets,
    Burst,
    FailureTrip,
    HalfOpen,
    NearDuplicate,
    Reservations,
    ScopeBudget,
    SpendRate,
    Validation,
)
from guards.config_oncall import EscalationStep, OnCall, Rotation
from guards.config_people import (
    ALERT_KINDS,
    DEFAULT_TIERS,
    Alerts,
    Channels,
    Digest,
    GroupId,
    Heartbeats,
    Job,
    MemberId,
)
from guards.config_retention import RetentionPeriods
from guards.config_routing import (
    LongContextPrice,
    Price,
    Routing,
    RoutingPromote,
    RoutingRule,
    RoutingTier,
)
from guards.config_types import WINDOWS, PolicyError, Section, TimeZone, parse_duration
from guards.config_webhooks import Webhooks, resolve_secret_files, undefined_webhooks
from guards.config_yaml import Repeat, read_yaml

__all__ = [
    "ALERT_KINDS",
    "DEFAULT_TIERS",
    "REPEATS_READ_LAST",
    "WINDOWS",
    "Alerts",
    "Breakers",
    "Budgets",
    "Burst",
    "Channels",
    "Digest",
    "EscalationStep",
    "FailureTrip",
    "FileCheck",
    "HalfOpen",
    "Heartbeats",
    "Job",
    "LongContextPrice",
    "NearDuplicate",
    "OnCall",
    "Policy",
    "PolicyError",
    "Price",
    "Reservations",
    "RetentionPeriods",
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
    admins: list[MemberId] = Field(default_factory=list)
    admin_groups: list[GroupId] = Field(default_factory=list)
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
    retention: RetentionPeriods = RetentionPeriods()
    jobs: list[Job] = Field(default_factory=list)
    prices: dict[str, Price] = Field(default_factory=dict)
    webhooks: Webhooks = Field(default_factory=dict)

    @model_validator(mode="after")
    def _routed_models_have_prices(self) -> Policy:
        """A model that routing hands out must have a price, or every estimate for it fails."""
        known = known_models(self.prices)
        problems = [
            (("routing", *loc), why) for loc, why in unpriced(routed_models(self.routing), known)
        ]
        problems += undefined_webhooks([s.notify for s in self.oncall.escalation], self.webhooks)
        if problems:
            refuse_across(problems)
        return self

    def namespace_timezone(self, namespace: str) -> str:
        budget = self.budgets.scopes.get(namespace)
        return budget.timezone if budget and budget.timezone else self.timezone


def _keys_at(loc: Sequence[Any]) -> list[str] | None:
    """The keys the section at ``loc`` (a pydantic error location) takes; None if unsure."""
    kind: Any = Policy
    for part in loc:
        kind = _unwrap(kind)
        fields = getattr(kind, "model_fields", None)
        if fields is not None:
            if part not in fields:
                return None
            kind = fields[part].annotation
        elif get_origin(kind) in (dict, list) and get_args(kind):
            kind = get_args(kind)[-1]  # a mapping's value or a list's item
        else:
            return None
    fields = getattr(_unwrap(kind), "model_fields", None)
    return list(fields) if fields else None


def _unwrap(kind: Any) -> Any:
    """``X`` from ``Annotated[X, ...]`` and ``X | None``."""
    while True:
        args = get_args(kind)
        if get_origin(kind) is Annotated:
            kind = args[0]
        elif (
            get_origin(kind) in (Union, UnionType)
            and len(real := [a for a in args if a is not type(None)]) == 1
        ):
            kind = real[0]
        else:
            return kind


def _format_errors(errors: Sequence[ErrorDetails], source: str, *, first: Sequence[str]) -> str:
    lines = [f"{source}: the policy is not valid:", *(f"  {problem}" for problem in first)]
    for err in errors:
        loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
        msg = err["msg"].removeprefix("Value error, ")
        if loc and loc[-1] == "[key]":  # pydantic's marker: the key itself is wrong
            loc.pop()
            msg = f"not allowed as a key here: {msg}"
        if err.get("input", ...) is None and (err["type"].endswith("_type") or "NoneType" in msg):
            # `key:` or `key: null` in YAML: pydantic would say "got NoneType"
            msg = "no value given (give one, or leave the key out for the default)"
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            # `budgets: 5`: pydantic would name the class (instance of Budgets)
            got = type(err.get("input")).__name__
            msg = f"a mapping of keys (`key: value` lines indented under it), not {got}"
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the README's policy reference)"
            keys = _keys_at(err["loc"][:-1]) or []
            close = difflib.get_close_matches(str(loc[-1]), keys, n=1) if loc else []
            if close:
                msg = f"unknown key (did you mean {close[0]!r}?); the keys here: {', '.join(keys)}"
        lines.append(f"  {'.'.join(loc) or '(top level)'}: {msg}")
    return "\n".join(lines)


# A check of the file that guards cannot make itself (bot.jobs.lint's, of the jobs'
# schedules: the dependency arrow points from bot to guards). It needs a valid file and
# runs once the file has loaded; when the file is refused, parse_policy runs it on what
# it has, so one message says every problem. It returns what it refuses, in the words it
# uses once the file loads (None: nothing).
FileCheck = Callable[[dict[str, Any], str], str | None]


def parse_policy(
    data: Any,
    *,
    source: str = "policy",
    also: FileCheck | None = None,
    repeated: Sequence[Repeat] = (),
) -> Policy:
    """Validate already-parsed YAML into a :class:`Policy`.

    ``also``: a check of the file whose refusals join the message when the keys are
    refused (``bot.jobs.lint.refused_jobs``: a file refused for ``jobs.1.bogus`` then
    also says that ``jobs.0``'s cron does not parse). ``repeated``: the keys the file
    writes twice (:func:`guards.config_yaml.read_yaml`), which refuse it, said first of
    its problems. YAML keeps only the last copy of such a key, so what is wrong under it
    may be wrong only of that copy ("oncall.rotations defines none" when the first
    ``oncall:`` defines them): that is left out, said once the key is written once, and
    the other problems are said to have been read so (review26 R2 L3).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            f"{source}: the policy must be a mapping of keys, not {type(data).__name__}"
        )
    try:
        policy = Policy.model_validate(data)
        errors: list[ErrorDetails] = []
    except ValidationError as exc:
        errors = [*exc.errors(), *cross_section_errors(data, exc, validate=Policy.model_validate)]
    if not errors and not repeated:
        return policy
    first = [_repeat_said(r, errors) for r in repeated]
    errors = [err for err in errors if not any(_under(err["loc"], r.path) for r in repeated)]
    if any(r.path[0] == "jobs" for r in repeated):
        also = None  # (the jobs' check would read only the last copy too)
    if repeated and errors:
        first.append(REPEATS_READ_LAST)
    said = [_format_errors(errors, source, first=first)]
    if also is not None and (problem := also(data, source)):
        said.append(problem)
    raise PolicyError("\n".join(said))


#: said after the keys written twice when the file has other problems too
REPEATS_READ_LAST = (
    "(of each key written twice, only its last copy was read: a problem below may come from that)"
)


def _under(loc: tuple[str | int, ...], path: tuple[str, ...]) -> bool:
    """Whether an error at ``loc`` is at or under the key ``path``."""
    where = [str(p) for p in loc if not str(p).startswith("function-")]
    return tuple(where[: len(path)]) == path


def _repeat_said(repeat: Repeat, errors: Sequence[ErrorDetails]) -> str:
    if any(_under(err["loc"], repeat.path) for err in errors):
        return f"{repeat.said}; what it holds is checked once it is written once"
    return repeat.said


def load_policy(
    path: str | Path,
    *,
    missing_ok: bool = True,
    also: FileCheck | None = None,
    base: str | Path | None = None,
) -> Policy:
    """Read and validate the policy file; an absent file gives the built-in defaults.

    Besides what :func:`parse_policy` checks, the file must be a regular file of at most
    1 MiB, UTF-8, and no mapping may repeat a key (said with the file's other problems).
    A relative ``webhooks.<name>.secret_file`` is read from ``base``
    (a directory; the file's own when None: a reload reads a copy of the file).
    """
    file = Path(path)
    if not file.exists():
        if not missing_ok:
            raise PolicyError(f"{file}: no such policy file")
        log.debug("no policy file at %s: using built-in defaults", file)  # the CLI logs it
        return Policy()
    data, repeated = read_yaml(file)
    resolve_secret_files(data, base=Path(base) if base is not None else file.absolute().parent)
    return parse_policy(data, source=str(file), also=also, repeated=repeated)
