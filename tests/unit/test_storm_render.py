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


def test_acknowledge_all_says_which_alerts_it_took_when_it_took_the_first_pages_too():
    """recheck27 Kd: a summary headed "199 alerts" read "✅ 201 acknowledged" (it took the
    storm's first 2 pages, above it, too): the line says which."""
    from bot.alerts.operations import StormAck
    from bot.alerts.render_storm import storm_acked_line, storm_split

    utc = ZoneInfo("UTC")

    def took(acked: int, before: int, **others: int) -> StormAck:
        return StormAck(
            "fold:pages:U01:3",
            "U01",
            0.0,
            tuple(range(1, acked + 1)),
            {},
            others.get("resolved", 0),
            0,
            before,
        )

    assert storm_acked_line(took(201, 2), tz=utc, now=0.0) == (
        "✅ 201 acknowledged (199 here and the 2 pages before) by <@U01> at 00:00"
    )
    assert storm_split(took(200, 1)) == "(199 here and the page before)"
    assert storm_split(took(2, 2, resolved=199)) == "(the 2 pages before)"  # none here open
    assert storm_acked_line(took(199, 0, resolved=2), tz=utc, now=0.0) == (
        "✅ 199 acknowledged by <@U01> at 00:00; 2 were already resolved"  # as before
    )


def test_what_acknowledge_all_left_and_found_handled_counts_here_and_before_apart():
    """review28 R3 L1 and L2: a summary headed "5 alerts" answered a second click "all 8
    of its alerts are already handled", and "6 acknowledged (4 here and the 2 pages
    before) …; 2 were already resolved" summed to 6 of a 5-alert head. Each count says
    which were here."""
    from bot.alerts.operations import StormAck
    from bot.alerts.render_storm import storm_acked_line, storm_handled

    utc = ZoneInfo("UTC")

    def took(acked: int, before: int, *, left: dict[str, int], **n: int) -> StormAck:
        earlier = {"U01": n["earlier"]} if n.get("earlier") else {}
        return StormAck(
            "fold:pages:U01:3",
            "U09",
            0.0,
            tuple(range(1, acked + 1)),
            earlier,
            n.get("resolved", 0),
            n.get("silenced", 0),
            before,
            left,
        )

    # 8 agents: #1-#3 the pages before, #4-#8 here; #1 and #5 resolved
    assert storm_acked_line(took(6, 2, left={"resolved": 1}, resolved=2), tz=utc, now=0) == (
        "✅ 6 acknowledged (4 here and the 2 pages before) by <@U09> at 00:00;"
        " 2 were already resolved (1 here and the page before)"
    )
    second = took(0, 0, left={"acked": 3}, earlier=8)  # the losing click of two
    assert storm_handled(second) == (
        "Nothing to acknowledge in this storm: all 5 of its alerts and the 3 pages before"
        " are already handled (8 acknowledged by <@U01>). Nothing changed."
    )
    mixed = took(0, 0, left={"acked": 1, "silenced": 1}, earlier=2, silenced=1)
    assert storm_handled(mixed) == (
        "Nothing to acknowledge in this storm: its alert and the 2 pages before are"
        " already handled (2 acknowledged by <@U01>, 1 silenced). Nothing changed."
    )
    only_before = took(0, 0, left={"resolved": 1}, resolved=1)
    assert storm_handled(only_before) == (
        "Nothing to acknowledge in this storm: the page before it is already handled"
        " (1 resolved). Nothing changed."
    )
    assert storm_handled(took(0, 0, left={}, earlier=5)) == (  # a channel's: as before
        "Nothing to acknowledge in this storm: all 5 of its alerts are already handled"
        " (5 acknowledged by <@U01>). Nothing changed."
    )
    assert storm_acked_line(  # the pages before left, all of them: none here is
        took(5, 0, left={"acked": 2}, earlier=2), tz=utc, now=0
    ) == (
        "✅ 5 acknowledged by <@U09> at 00:00;"
        " 2 were already acknowledged (the 2 pages before) by <@U01>"
    )


def test_a_summary_open_again_says_what_is_still_handled():
    """recheck28 Kb L1: after Acknowledge all and `/agent unack 5`, the summary was drawn
    with its button as it was first posted ("You are paged for 203 alerts at once"), no
    word that 202 of them and the pages before were acknowledged. Its line says so, in
    the words of its handled line, and which are open again."""
    from dataclasses import replace

    from bot.alerts.render_storm import storm_reopened_line

    def a(n: int, state: str = "open", by: str | None = None) -> Alert:
        return replace(
            alert(n, "runaway", f"acme/a/b{n}"),
            acked_at=1.0 if state == "acked" else None,
            acked_by=by,
            resolved_at=1.0 if state == "resolved" else None,
            silence_id=1 if state == "silenced" else None,
        )

    here = [a(4, "acked", "U03"), a(5), a(6, "acked", "U03"), a(7, "acked", "U02")]
    assert storm_reopened_line(here) == (
        "3 of them acknowledged by <@U03> and <@U02>; `#5` open again"
    )
    leads = [a(1, "acked", "U03"), a(2, "resolved"), a(3, "acked", "U03")]
    assert storm_reopened_line([*here, a(8, "silenced")], leads=leads) == (
        "5 acknowledged (3 here and the 2 pages before) by <@U03> and <@U02>,"
        " 1 resolved (the page before), 1 of them silenced; `#5` open again"
    )
    many = [a(n) for n in range(20, 10, -1)] + [a(9, "resolved")]
    assert storm_reopened_line(many) == (
        "1 of them resolved; `#11`, `#12`, `#13`, `#14`, `#15`, `#16` and 4 more open again"
    )
    assert storm_reopened_line([a(5), a(6)]) == "`#5` and `#6` open again"
