"""A routing rule's pattern that can backtrack for hours is refused at load (audit18
routing finding 5: `^(\\w+\\s?)*$` held the writer, and every agent, 16 s for one task)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from guards.config import Policy
from guards.patterns import exponential


def rules(pattern: str) -> dict[str, object]:
    return {"routing": {"rules": [{"name": "plain", "tier": "small", "pattern": pattern}]}}


def test_the_audit_s_pattern_is_refused_with_the_way_out():
    with pytest.raises(ValidationError) as refused:
        Policy.model_validate(rules(r"^(\w+\s?)*$"))
    [error] = refused.value.errors()
    assert error["loc"] == ("routing", "rules", 0, "pattern")
    assert "can take exponential time" in error["msg"] and "repeat inside a repeat" in error["msg"]
    assert "use keywords" in error["msg"]


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a+)+",
        r"(a*)*",
        r"x(?=(a+)+)",
        r"\s*(\w+\s*)*",
        r"(a|b+){2,9}",
        # alternations in a repeat (review18 M3: 2 to 5 s for 24 characters, accepted)
        r"^(.|\s)*x$",
        r"^(a|a?)*$",
        r"^(a|a)*$",
        r"^(a|aa)*$",
        r"^(?:invoice|inv|in|i|n|v|o|c|e)*$",
    ],
)
def test_parts_that_match_one_text_more_than_one_way_in_a_repeat_are_found(pattern: str):
    assert exponential(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        r"\b(invoice|receipt)s?\b",
        r"(ab)*",
        r"(a{2})*",
        r"(a|b)*",  # re makes it one character set
        r"(?>a+)+",  # atomic: never backtracks
        r"(a++)*",  # possessive
        r"[a-z]+@[a-z]+\.com",
        r"^(translate|traduire)\b.*\b(french|german)\b",
        # a repeat ended by what it cannot match is linear (review18 M3: these were refused)
        r"^(\w+\.)*com$",
        r"^(\w+\s)*end$",
        r"(\d+,)*\d+",
        r"((ab)*c)+",
        r"(?:https?://)?(\w+\.)+\w+",
    ],
)
def test_ordinary_patterns_load(pattern: str):
    assert exponential(pattern) is None
    Policy.model_validate(rules(pattern))
