"""The policy's ``budgets.models``: a limit per model on what each namespace spends on it.

Keys are model names, counted as reservations count them: undated and lower case
(``claude-opus-4-1-20250805`` and ``Claude-Opus-4-1`` are ``claude-opus-4-1``), so the
key is normalised the same way and two keys that normalise alike are refused. Windows
are the levels' (day, week, month, total); a key must give at least one. A key naming a
model Nightshift does not know is not refused (a new model may not be priced yet): the
start warns of it (:func:`guards.model_budgets.unknown_models`).

Example:
    >>> check_model_limits({"Claude-Opus-4-1-20250805": {"day": 50_000_000}})
    {'claude-opus-4-1': {'day': 50000000}}
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from guards.config_types import WINDOWS, Limits, refuse
from guards.prices import MODEL_NAME_RULE, is_model_name, undated

__all__ = ["ModelLimits", "check_model_limits"]


def check_model_limits(value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The limits by model, keys normalised; each bad key refused at its own key path."""
    windows = ", ".join(WINDOWS)
    problems: list[tuple[tuple[str | int, ...], str]] = []
    named: dict[str, str] = {}  # normalised -> the key as written
    out: dict[str, dict[str, int]] = {}
    for key, limits in value.items():
        name = key.strip()
        if not is_model_name(name):
            problems.append(((key,), f"{key!r} is not a model name: {MODEL_NAME_RULE}"))
            continue
        counted = undated(name)
        if counted in named:
            problems.append(
                (
                    (key,),
                    f"{key!r} and {named[counted]!r} are one model (counted as {counted!r}:"
                    " a snapshot's date, -latest and case do not count); keep one key",
                )
            )
            continue
        named[counted] = key
        unknown = [w for w in limits if w not in WINDOWS]
        problems.extend(((key, w), f"unknown window {w!r}; windows are {windows}") for w in unknown)
        if not limits:  # `model:`, `model: null`, `model: {}`: it would cap nothing
            problems.append(
                (
                    (key,),
                    f"no window given, so it caps nothing: give at least one of {windows}"
                    f" (as {name}: {{day: 50.00}}), or leave the key out",
                )
            )
        out[counted] = {w: limits[w] for w in WINDOWS if w in limits}
    if problems:
        refuse("Budgets", problems)
    return out


# model name -> window -> micro-dollars, keys as counted (see check_model_limits)
ModelLimits = Annotated[dict[str, Limits], AfterValidator(check_model_limits)]
