"""The policy's checks across sections, and the first of them: every model routing
hands out has a price.

A tier's model, a model with fallbacks and each of its fallbacks must be priced (the
shipped prices or the policy's ``prices:``), or every estimate for it fails. The check
runs on the validated ``routing`` section (:class:`guards.config.Policy`'s own check),
and, when that section is refused for something else, on its raw YAML as well, so one
refusal says every problem of the file (README, "The policy file"). Their refusals
carry the error type :data:`ACROSS`, so a refused file can tell whether they ran.

Example:
    >>> known = known_models(["local-llama"])
    >>> raw = {"tiers": {"small": {"model": "local-lama"}, "large": {"model": 5}}}
    >>> [(loc, why[:47]) for loc, why in unpriced(raw_routed_models(raw), known)]
    [(('tiers', 'small', 'model'), "no price for 'local-lama' (did you mean 'local-")]
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, TypeGuard

from pydantic import ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from guards.config_routing import Routing
from guards.prices import DEFAULT_PRICES, undated

__all__ = [
    "ACROSS",
    "Loc",
    "cross_section_errors",
    "known_models",
    "raw_routed_models",
    "refuse_across",
    "routed_models",
    "unpriced",
]

ACROSS = "policy_across"  # the error type of a check across sections
Loc = tuple[str | int, ...]
_MAX_NAME = 200  # RoutingTier.model's own limit: a longer name is refused for its length


def cross_section_errors(
    data: dict[str, Any],
    exc: ValidationError,
    *,
    validate: Callable[[dict[str, Any]], object],
) -> list[ErrorDetails]:
    """The errors of the checks across sections for a file refused with ``exc``: pydantic
    runs them only when every section is valid, so ``validate`` (the policy's own
    validation) runs them on the sections they read that are valid, and a refused
    routing section's models are read as written. A section left out is its default:
    routing's default models are priced, and no step pages a webhook."""
    if any(err["type"] == ACROSS for err in exc.errors()):  # (they have run)
        return []
    failed = {err["loc"][0] for err in exc.errors() if err["loc"]}
    if not failed:
        return []
    kept = {"routing", "prices", "oncall", "webhooks"} - failed
    if "prices" in failed:  # a price the broken section may hold is not guessed at
        kept.discard("routing")
    if failed & {"oncall", "webhooks"}:
        kept -= {"oncall", "webhooks"}
    errors: list[ErrorDetails] = []
    try:
        validate({key: data[key] for key in kept if key in data})
    except ValidationError as late:
        errors += late.errors()
    if "routing" in failed and "prices" not in failed:
        known = known_models(data.get("prices") or {})
        problems = unpriced(raw_routed_models(data.get("routing")), known)
        try:
            if problems:
                refuse_across([(("routing", *loc), why) for loc, why in problems])
        except ValidationError as late:
            errors += late.errors()
    return errors


def refuse_across(problems: Iterable[tuple[Loc, str]]) -> NoReturn:
    """Refuse the policy for ``(key path, message)`` problems found across its sections."""
    raise ValidationError.from_exception_data(
        "Policy",
        [
            InitErrorDetails(type=PydanticCustomError(ACROSS, message), loc=loc, input=None)
            for loc, message in problems
        ],
    )


def known_models(prices: Iterable[str]) -> set[str]:
    """The models with a price, shipped or in the policy's ``prices:``, as PriceTable
    compares them (lower case)."""
    return {m.lower() for m in (*DEFAULT_PRICES, *prices)}


def unpriced(models: Iterable[tuple[Loc, str]], known: set[str]) -> list[tuple[Loc, str]]:
    """``(key path, what to do)`` for each of ``models`` without a price in ``known``."""
    return [
        (loc, _no_price(model, known))
        for loc, model in models
        if model.strip().lower() not in known and undated(model) not in known
    ]


def routed_models(routing: Routing) -> Iterator[tuple[Loc, str]]:
    """Every model a valid routing section may hand out, with its key path under it."""
    for tier, spec in routing.tiers.items():
        yield ("tiers", tier, "model"), spec.model
    for model, chain in routing.fallbacks.items():
        yield ("fallbacks", model), model
        for i, fallback in enumerate(chain):
            yield ("fallbacks", model, i), fallback


def raw_routed_models(section: object) -> Iterator[tuple[Loc, str]]:
    """The models a refused routing section names, read off its YAML as written: what
    is not a mapping, a list or a model's name is skipped (its own error says it)."""
    if not isinstance(section, dict):
        return
    tiers = section.get("tiers")
    for tier, spec in tiers.items() if isinstance(tiers, dict) else ():
        model = spec.get("model") if isinstance(spec, dict) else None
        if isinstance(tier, str) and _named(model):
            yield ("tiers", tier, "model"), model
    fallbacks = section.get("fallbacks")
    for model, chain in fallbacks.items() if isinstance(fallbacks, dict) else ():
        if _named(model):
            yield ("fallbacks", model), model
        for i, fallback in enumerate(chain) if isinstance(chain, list) else ():
            if _named(fallback):
                yield ("fallbacks", str(model), i), fallback


def _named(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value.strip()) <= _MAX_NAME


def _no_price(model: str, known: set[str]) -> str:
    close = difflib.get_close_matches(undated(model), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"no price for {model!r}{hint}; add it under prices: (known: {', '.join(sorted(known))})"
