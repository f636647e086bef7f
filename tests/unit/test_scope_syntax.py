"""Scope syntax errors say what is wrong with the segment."""

from __future__ import annotations

import pytest

from guards.scopes import Scope, ScopeError


@pytest.mark.parametrize("text", ["..", "acme/..", "acme/./bot", "../x"])
def test_dot_segments_are_refused_as_reserved_not_as_bad_characters(text):
    with pytest.raises(ScopeError) as err:
        Scope.parse(text)
    assert "the segments . and .. are reserved" in str(err.value)
    assert "each segment is 1-64" not in str(err.value)  # that rule allows dots


@pytest.mark.parametrize("text", ["acme/al ice", "acme/" + "x" * 65, "acme//bot"])
def test_other_bad_segments_name_the_allowed_characters(text):
    with pytest.raises(ScopeError) as err:
        Scope.parse(text)
    assert "each segment is 1-64 of A-Z a-z 0-9 . _ -" in str(err.value)


def test_dots_inside_a_segment_are_fine():
    assert Scope.parse("acme.io/a.b/bot-1.2").path == "acme.io/a.b/bot-1.2"
