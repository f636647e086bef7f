"""A routing rule's pattern that can backtrack for hours is refused at load (audit18
routing finding 5: `^(\\w+\\s?)*$` held the writer, and every agent, 16 s for one task)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from guards.config import Policy
from guards.patterns import nested_repeat


def rules(pattern: str) -> dict[str, object]:
    return {"routing": {"rules": [{"name": "plain", "tier": "small", "pattern": pattern}]}}


def test_the_audit_s_pattern_is_refused_with_the_way_out():
    with pytest.raises(ValidationError) as refused:
        Policy.model_validate(rules(r"^(\w+\s?)*$"))
    [error] = refused.value.errors()
    assert error["loc"] == ("routing", "rules", 0, "pattern")
    assert "repeats a part that itself repeats" in error["msg"]
    assert "use keywords" in error["msg"]


@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+", r"(a*)*", r"((ab)*c)+", r"x(?=(a+)+)", r"(\w+\s)*$", r"(a|b+){2,9}"],
)
def test_repeats_inside_repeats_are_found(pattern: str):
    assert nested_repeat(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        r"\b(invoice|receipt)s?\b",
        r"(ab)*",
        r"(a{2})*",
        r"(?>a+)+",  # atomic: never backtracks
        r"(a++)*",  # possessive
        r"[a-z]+@[a-z]+\.com",
        r"^(translate|traduire)\b.*\b(french|german)\b",
    ],
)
def test_ordinary_patterns_load(pattern: str):
    assert not nested_repeat(pattern)
    Policy.model_validate(rules(pattern))
