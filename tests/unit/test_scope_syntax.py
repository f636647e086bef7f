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


@pytest.mark.parametrize(
    "text",
    ["acme/alice/svc-xapp-1", "acme/alice/xoxb-2", "acme/xapp-1-dev/bot", "acme/a/b/xoxp-12-c"],
)
def test_a_name_merely_like_a_slack_token_is_a_scope(text):
    """review28 R4 M2: `svc-xapp-1` was refused as a Slack token, locking out an agent
    named so before the upgrade."""
    assert Scope.parse(text).path == text


@pytest.mark.parametrize(
    "text",
    [
        "acme/alice/xoxb-1234567890-2345678901-abcdefghijklmnopqrstuvwx",
        "acme/alice/bot_xoxp-4-1234-5678-0123456789abcdef0123",
        "acme/alice/xapp-1-A0123ABC-1234567890-0123456789abcdef0123",
    ],
)
def test_a_slack_token_as_a_scope_is_refused_without_repeating_it(text):
    with pytest.raises(ScopeError) as err:
        Scope.parse(text)
    assert "looks like a Slack token" in str(err.value) and "0123" not in str(err.value)
