"""A storm summary fits one Slack message however long its scopes are."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.alerts.model import Alert
from bot.alerts.render_storm import fold_message
from bot.slack.limits import text_chars
from tests.fakes.alerts import new_alert
from tests.fakes.block_kit import message_errors

KINDS = [
    "heartbeat_missed",
    "budget_exhausted",
    "breaker_opened_spend",
    "breaker_opened_failure",
    "runaway",
    "duplicate_burst",
    "overrun",
    "hold_expired",
]


def alert(n: int, kind: str, scope: str) -> Alert:
    return new_alert(n, kind, scope)


def test_eight_kinds_of_the_longest_scopes_fit_and_say_how_many_are_not_named():
    long = "/".join(["n" * 64, "u" * 64, "a" * 64])  # a scope at its longest
    alerts = [
        alert(i * 10 + j, kind, f"{long}{j}"[-194:])
        for i, kind in enumerate(KINDS)
        for j in range(9)
    ]
    text, blocks = fold_message(
        alerts, paged=True, mention="U1", tz=ZoneInfo("UTC"), now=0.0, ref="fold:pages:U1:1"
    )
    assert message_errors({"channel": "U1", "text": text, "blocks": blocks}) is None
    assert text_chars(blocks) < 10_000
    groups = [b["text"]["text"] for b in blocks if b["type"] == "section"][1:]
    assert len(groups) == len(KINDS)
    for group in groups:
        named = group.count("`#")
        assert 1 <= named < 9
        assert f"… and {9 - named} more" in group  # nothing left out without a count


def test_short_scopes_are_named_six_to_a_group():
    alerts = [alert(i, "heartbeat_missed", f"acme/u/bot{i}") for i in range(8)]
    _, blocks = fold_message(alerts, paged=False, mention=None, tz=ZoneInfo("UTC"), now=0.0)
    group = [b["text"]["text"] for b in blocks if b["type"] == "section"][1]
    assert group.count("`#") == 6 and "… and 2 more" in group
