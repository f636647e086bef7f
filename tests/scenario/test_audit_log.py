"""`/agent audit`: who did what, readable at 3 a.m., complete, and out of anyone's reach
to rewrite or drown (audit 15, accountability)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from guards.clock import ManualClock

ADMIN = "U0ADMIN"
ONCALL = "U0ONCALL"
STRANGER = "U0STRANGER"
BOT = "acme/alice/rss-bot"
REFUSED = "refused"
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "budgets": {"defaults": {"agent": {"day": "10.00"}}},
    "breakers": {"failures": {"consecutive": 2}, "half_open": {"mode": "approval"}},
    "oncall": {"rotations": [{"name": "primary", "users": [ONCALL]}]},
}


def blocks_text(reply: dict[str, Any]) -> str:
    return "\n".join(
        b["text"]["text"] for b in reply.get("blocks", []) if b.get("type") == "section"
    )


async def test_long_rows_are_all_shown_and_each_is_cut_not_the_listing(slack_http):
    """audit15 H1: the reply was cut at 3,000 characters after the header counted every
    row: `audit 10` said "Last 10 changes" and showed 4."""
    slack = await slack_http(POLICY)
    reason = "provider incident INC-4711, see the runbook " + "x" * 480
    for i in range(10):
        await slack.command(f"breaker acme/long/bot{i} open {reason}")
    reply = await slack.command("audit 10")
    shown = blocks_text(reply)
    assert reply["blocks"][0]["text"]["text"].startswith("*Last 10 changes* (times in UTC)")
    assert all(f"`acme/long/bot{i}`" in shown for i in range(10))
    assert shown.count("*breaker.force_open*") == 10
    assert "…" in shown  # each 500-character reason cut, the rows all there


async def test_a_burst_of_refusals_folds_into_one_line_and_keeps_the_change_in_reach(
    slack_http,
):
    """audit15 M1: 60 refused commands pushed an admin's budget change out of `audit 50`."""
    slack = await slack_http(POLICY)
    await slack.command(f"budget set {BOT} $9 day")
    for _ in range(60):
        await slack.command("pause all", user=STRANGER)
    reply = await slack.command("audit 5")
    shown = blocks_text(reply)
    assert "<@U0STRANGER> *refused* ×60: `pause jobs` (the last: not an admin: pause all)" in shown
    refused_line = next(line for line in shown.split("\n") if "×60" in line)
    assert "–" not in refused_line.split("`")[1]  # all in one minute: `00:00`, not `00:00–00:00`
    assert f"<@U0ADMIN> *budget.set* `{BOT} day`: $10.00 → $9.00" in shown
    assert reply["blocks"][0]["text"]["text"].startswith("*Last 61 changes* in 2 lines")
    rows = await slack.app.store.fetch("SELECT COUNT(*) FROM audit WHERE action = 'refused'")
    assert rows[0][0] == 60  # every refusal is kept; only the listing folds them
    for i in range(20):  # two accounts taking turns (audit15 recheck N7)
        await slack.command("pause all", user=STRANGER if i % 2 else "U0OTHER")
    shown = blocks_text(await slack.command("audit 5"))
    assert "<@U0STRANGER>, <@U0OTHER> *refused* ×80" in shown
    assert f"<@U0ADMIN> *budget.set* `{BOT} day`" in shown


async def test_the_heading_counts_the_changes_its_lines_fold(slack_http):
    """audit24 B L3: "*Last 1 change*" above a line folding two refusals (×2); review24
    trial L6: what narrows the lines comes before "in N lines"."""
    slack = await slack_http(POLICY)
    await slack.command(f"budget set {BOT} $5 day", user=STRANGER)
    await slack.command(f"breaker {BOT} open", user=STRANGER)
    folded = await slack.command("audit")
    assert folded["text"].startswith("*Last 2 changes* in 1 line (times in UTC)\n")
    assert "<@U0STRANGER> *refused* ×2" in folded["text"]
    each = await slack.command("audit each")
    assert each["text"].startswith("*Last 2 changes* (times in UTC)\n")
    await slack.command(f"budget set {BOT} $9 day")
    mixed = await slack.command("audit 1")  # the lines asked for: the newest, one row
    assert mixed["text"].startswith("*Last 1 change* (times in UTC)\n")
    # review24 trial L6: "in 1 line matching `refused`" read as if the line matched
    narrowed = await slack.command("audit 5 refused")
    assert narrowed["text"].startswith("*Last 2 changes* matching `refused`, in 1 line (times")
    by = await slack.command(f"audit <@{STRANGER}|stranger>")
    assert by["text"].startswith(f"*Last 2 changes* by <@{STRANGER}>, in 1 line (times in UTC)")
    by_each = await slack.command(f"audit each <@{STRANGER}|stranger>")
    assert by_each["text"].startswith(f"*Last 2 changes* by <@{STRANGER}> (times in UTC)\n")


async def test_audit_narrows_to_a_person_a_change_or_a_scope(slack_http):
    slack = await slack_http(POLICY)
    await slack.command(f"budget set {BOT} $9 day")
    await slack.command("budget set acme/bob/bot $3 day")
    await slack.command("budget set acme/bob/bot $4 day", user=STRANGER)
    await slack.command("budget set acme/alice-x/bot $5 day")
    mine = blocks_text(await slack.command(f"audit <@{ADMIN}|admin>"))
    assert "by <@U0ADMIN>" in mine and "refused" not in mine and "$10.00 → $3.00" in mine
    alice = blocks_text(await slack.command("audit 50 acme/alice"))
    assert "rss-bot" in alice and "acme/bob" not in alice
    assert "alice-x" not in alice  # the scope and below, not every target that starts so
    assert "alice-x" in blocks_text(await slack.command("audit acme/alice-x/bot"))
    refused = blocks_text(await slack.command("audit refused"))
    assert "*refused*" in refused and "budget.set" not in refused
    budget = blocks_text(await slack.command("audit budget"))
    assert budget.count("*budget.set*") == 3
    # a kind by its last part, as the lines show it (recheck24: "No changes matching
    # `silence` recorded" beside four alert.silence rows)
    assert blocks_text(await slack.command("audit set")).count("*budget.set*") == 3
    assert "refused" not in blocks_text(await slack.command("audit set"))
    none = await slack.command("audit acme/nobody")
    assert none["text"] == "No changes matching `acme/nobody` recorded."
    # a scope in its own case: `Acme` is another namespace (audit23 tenants F3)
    twin_bot = "Acme/bob/bot"
    for agent in (BOT, twin_bot):  # both namespaces in use: their scopes exist
        used = await slack.app.request(
            "POST",
            "/v1/reservations",
            token=await slack.app.token(agent),
            json={"scope": agent, "idempotency_key": "k", "max_cost_micros": 1000},
        )
        assert used.status_code == 201, used.text
    await slack.command(f"budget set {twin_bot} $6 day")
    twin = blocks_text(await slack.command("audit 50 Acme"))
    assert "Acme/bob/bot" in twin and "acme/" not in twin
    assert "Acme/" not in blocks_text(await slack.command("audit 50 acme"))
    assert blocks_text(await slack.command("audit BUDGET")).count("*budget.set*") == 4
    assert "Acme/" in blocks_text(await slack.command("audit 50 ACME"))  # no such scope: any case


async def test_a_malformed_admin_command_from_a_non_admin_is_refused_and_audited(slack_http):
    """audit15 L4: a usage error answered, and nothing was audited."""
    slack = await slack_http(POLICY)
    for text in (
        f"budget set {BOT} $abc day",
        f"breaker {BOT} explode",
        "pause nosuchjob",
        "oncall override <@U0STRANGER> 10y",
    ):
        reply = await slack.command(text, user=STRANGER)
        assert "Only admins" in reply["text"], reply["text"]
    rows = await slack.app.store.fetch("SELECT target, detail FROM audit")
    assert [tuple(r) for r in rows] == [
        ("change budgets", f"not an admin: budget set {BOT} $abc day"),
        ("operate breakers", f"not an admin: breaker {BOT} explode"),
        ("pause jobs", "not an admin: pause nosuchjob"),
        (
            "change who is on call",
            "not an admin nor on call: oncall override <@U0STRANGER> 10y",
        ),
    ]


async def test_an_alert_action_refused_says_who_may(slack_http):
    """audit15 L3: the row said "not an admin" of an action open to the people on call."""
    slack = await slack_http(POLICY)
    reply = await slack.command("silence acme 1h", user=STRANGER)
    assert "on call" in reply["text"]
    rows = await slack.app.store.fetch("SELECT detail FROM audit WHERE action = 'refused'")
    assert rows[0][0] == "not an admin nor on call: silence acme 1h"


async def test_what_a_breaker_does_on_its_own_is_in_the_log_beside_what_people_did(
    slack_http,
):
    """audit15 M2: trips, trial requests and closes were only in breaker_transitions."""
    slack = await slack_http(POLICY, clock=ManualClock())
    tok = await slack.app.token(BOT)
    for i in range(2):
        r = await slack.app.request(
            "POST",
            "/v1/reservations",
            token=tok,
            json={"scope": BOT, "idempotency_key": f"f{i}", "max_cost_micros": 1000},
        )
        rid = r.json()["reservation_id"]
        s = await slack.app.request(
            "POST",
            f"/v1/reservations/{rid}/settle",
            token=tok,
            json={"actual_cost_micros": 10, "outcome": "failure"},
        )
        assert s.status_code == 200
    rows = await slack.app.store.fetch(
        "SELECT actor, action, target, before, after FROM audit WHERE action LIKE 'breaker.%'"
    )
    assert [tuple(r) for r in rows] == [("nightshift", "breaker.trip", BOT, "closed", "open")]
    shown = blocks_text(await slack.command("audit"))
    assert "@nightshift *breaker.trip* `acme/alice/rss-bot`: closed → open" in shown
    assert "<@nightshift>" not in shown  # a mention of nobody


async def test_the_audit_log_cannot_be_rewritten(app_factory):
    """audit15 L2: unlike the journal, audit rows could be updated or deleted."""
    app = await app_factory(POLICY)
    await app.token("acme")  # token.create is audited
    conn = sqlite3.connect(app.ns.settings.db)
    try:
        for sql in ("UPDATE audit SET actor = 'someone-else'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
    finally:
        conn.close()


async def test_a_start_on_a_changed_policy_is_audited_with_the_keys_that_changed(
    app_factory, tmp_path
):
    """audit15 L6: a limit or an admin changed in the file left no trace."""
    db = tmp_path / "same.db"
    first = await app_factory(POLICY, db=db)
    await first.ns.stop()
    again = await app_factory(POLICY, db=db)  # the same policy: nothing to say
    await again.ns.stop()
    changed = {**POLICY, "admins": [ADMIN, "U0NEW"]}
    third = await app_factory(changed, db=db)
    rows = await third.store.fetch("SELECT actor, action, detail FROM audit")
    assert [tuple(r) for r in rows] == [
        ("nightshift", "policy.load", "changed since the last start: admins")
    ]
    loads = await third.store.fetch("SELECT digests FROM policy_loads")
    assert len(loads) == 2 and "budgets" in json.loads(loads[-1][0])


async def test_a_breaker_storm_is_one_line_and_leaves_peoples_changes_in_reach(slack_http):
    """review15 M2: 300 automatic trips filled `audit 50`, pushing a budget change out."""
    slack = await slack_http(POLICY)
    await slack.command(f"budget set {BOT} $9 day")

    def storm(tx: Any) -> None:
        for i in range(300):  # trips and failed trials, taking turns (review15b L8)
            tx.audit(
                actor="nightshift",
                action="breaker.trip" if i % 2 else "breaker.trial_failed",
                target=f"acme/fleet/bot{i}",
                before="closed",
                after="open",
                detail="5 failures in a row",
            )

    await slack.app.store.write(storm)
    shown = blocks_text(await slack.command("audit 5"))
    assert (
        "@nightshift *breaker.trip/trial_failed* ×300: `acme/fleet/bot299`, `acme/fleet/bot298`"
        in shown
    )
    assert f"<@U0ADMIN> *budget.set* `{BOT} day`" in shown
    by_nightshift = blocks_text(await slack.command("audit @nightshift"))
    assert "by @nightshift" in by_nightshift and "budget.set" not in by_nightshift


async def test_restarts_on_a_changed_policy_fold_into_one_line_naming_every_change(slack_http):
    """audit17 policy L2: 22 reloads folded into one line that named the last change only."""
    slack = await slack_http(POLICY)

    def reloads(tx: Any) -> None:
        for keys in ("budgets", "oncall, budgets", "alerts"):  # oldest first
            tx.audit(
                actor="nightshift",
                action="policy.load",
                target="/etc/nightshift/p.yml",
                detail=f"changed since the last start: {keys}",
            )

    await slack.app.store.write(reloads)
    shown = blocks_text(await slack.command("audit 5"))
    assert (
        "@nightshift *policy.load* ×3: `/etc/nightshift/p.yml` (changed: alerts, oncall, budgets)"
        in shown
    )


async def test_each_unfolds_every_row_to_the_second_and_a_fold_says_so(slack_http):
    """audit23 forensics L5: a storm's fold showed the newest detail only, and nothing
    listed the rows one by one: loop-bot's failed trial was out of reach."""
    clock = ManualClock(1_795_770_000.0)  # Fri 2026-11-27 09:00:00 UTC
    slack = await slack_http(POLICY, clock=clock)
    rows = [
        ("breaker.trip", "acme/bob/big-bot", "5 failures in a row"),
        ("breaker.trip", "acme/alice/loop-bot", "spent $0.60 in the last 10m"),
        ("breaker.trial_failed", "acme/alice/loop-bot", "trial call res_1 failed: 500"),
        ("breaker.trip", "acme/bob/big-bot", "trial call res_2 failed: 429"),
    ]
    for action, target, detail in rows:
        clock.advance(17)

        def one(tx: Any, action: str = action, target: str = target, detail: str = detail) -> None:
            tx.audit(actor="nightshift", action=action, target=target, detail=detail)

        await slack.app.store.write(one)
    clock.set(1_795_770_000.0 + 86_400)  # the next day: times carry their date

    folded = await slack.command("audit 5")
    shown = blocks_text(folded)
    assert "`Fri 27 Nov 09:00–09:01` @nightshift *breaker.trip/trial_failed* ×4" in shown
    hint = folded["blocks"][-1]
    assert hint["type"] == "context"
    assert "`/agent audit 5 each` lists each one" in hint["elements"][0]["text"]

    each = await slack.command("audit 5 each")
    lines = blocks_text(each).split("\n")[1:]
    assert lines == [
        "`Fri 27 Nov 09:01:08` @nightshift *breaker.trip* `acme/bob/big-bot`"
        " (trial call res_2 failed: 429)",
        "`Fri 27 Nov 09:00:51` @nightshift *breaker.trial_failed* `acme/alice/loop-bot`"
        " (trial call res_1 failed: 500)",
        "`Fri 27 Nov 09:00:34` @nightshift *breaker.trip* `acme/alice/loop-bot`"
        " (spent $0.60 in the last 10m)",
        "`Fri 27 Nov 09:00:17` @nightshift *breaker.trip* `acme/bob/big-bot` (5 failures in a row)",
    ]
    assert all(b["type"] != "context" for b in each["blocks"])
    # in any order, with a narrowing word
    narrowed = blocks_text(await slack.command("audit each acme/alice 3"))
    assert narrowed.count("acme/alice/loop-bot") == 2 and "big-bot" not in narrowed


async def test_the_person_who_moved_a_breaker_is_a_mention_in_the_audit(slack_http):
    """audit24 agreement F4: "(trial of 2 calls up to $0.50 approved by U0DANA)", a bare
    member id, where `/agent breakers` and `status` showed <@U0DANA>; the row keeps the id."""
    slack = await slack_http(POLICY, clock=ManualClock())
    assert "forced open" in (await slack.command(f"breaker {BOT} open looping"))["text"]
    assert "approved" in (await slack.command(f"breaker {BOT} approve"))["text"]

    def typed(tx: Any) -> None:  # what someone typed is shown, never a ping
        tx.audit(actor=STRANGER, action=REFUSED, target=BOT, detail="approved by U0CEO1234")

    await slack.app.store.write(typed)
    lines = blocks_text(await slack.command("audit 3 each")).split("\n")[1:]
    assert lines[0].endswith(f"*refused* `{BOT}` (approved by U0CEO1234)"), lines
    assert lines[1].endswith(
        f"*breaker.approve* `{BOT}`: forced_open → half_open"
        f" (trial of 3 calls up to $0.50 approved by <@{ADMIN}>)"
    ), lines
    assert lines[2].endswith(
        f"*breaker.force_open* `{BOT}`: closed → forced_open (forced open by <@{ADMIN}>: looping)"
    ), lines
    rows = await slack.app.store.fetch("SELECT detail FROM audit WHERE action LIKE 'breaker.%'")
    assert [r[0] for r in rows] == [
        f"forced open by {ADMIN}: looping",
        f"trial of 3 calls up to $0.50 approved by {ADMIN}",
    ]


async def test_times_rows_store_as_iso_text_read_in_the_policy_zone(slack_http):
    """audit24 L4: a budget set for a while and an override showed their ends as raw ISO,
    one UTC with microseconds, one with an offset, under "(times in Europe/Berlin)"."""
    policy = {**POLICY, "timezone": "Europe/Berlin"}
    clock = ManualClock(1_795_930_613.335070)  # 2026-11-29T05:36:53.33507Z: 06:36 in Berlin
    slack = await slack_http(policy, clock=clock)
    await slack.command(f"budget set {BOT} 25 day for 2h")
    await slack.command(f"oncall override <@{ADMIN}|dana> 1h")
    stored = await slack.app.store.fetch("SELECT after, detail FROM audit ORDER BY id")
    assert [tuple(r) for r in stored][-2:] == [  # the rows keep their ISO text
        ("25000000", "until 2026-11-29T07:36:53.335070Z"),
        (f"{ADMIN} for 1h, until 2026-11-29T07:36:53+01:00", None),
    ]
    shown = blocks_text(await slack.command("audit 2"))
    assert "(times in Europe/Berlin)" in shown
    assert f"`{BOT} day`: $10.00 → $25.00 (until 08:36)" in shown
    assert f"`primary`: {ONCALL} → {ADMIN} for 1h, until 07:36" in shown
    assert "2026-11-29T" not in shown


async def test_a_reason_typed_with_a_time_in_it_is_shown_as_typed(slack_http):
    """review24 L5: `/agent audit` rewrote every ISO-looking text of a detail, a reason
    people typed too ("until 2026-12-01T10:00Z per vendor" showed as "until Tue 01 Dec
    11:00 per vendor", reading like a second end of the silence). Only the times Nightshift
    wrote are converted: the silence's end, a booked silence's start, a budget's "until"."""
    policy = {**POLICY, "timezone": "Europe/Berlin"}
    clock = ManualClock(1_795_930_613.335070)  # 2026-11-29T05:36:53.33507Z: 06:36 in Berlin
    slack = await slack_http(policy, clock=clock)
    typed = "until 2026-12-01T10:00Z per vendor, see 2026-12-01T09:00:00+01:00"
    await slack.command(f"silence acme 3d -- {typed}")
    await slack.command(f"silence {BOT} 1h from 22:00 -- {typed}")
    await slack.command(f"budget set {BOT} 25 day for 2h")
    stored = await slack.app.store.fetch("SELECT after, detail FROM audit ORDER BY id")
    assert [tuple(r) for r in stored] == [
        ("2026-12-02T06:36:53+01:00", typed),
        ("2026-11-29T23:00:00+01:00", f"from 2026-11-29T22:00:00+01:00 — {typed}"),
        ("25000000", "until 2026-11-29T07:36:53.335070Z"),
    ]
    shown = blocks_text(await slack.command("audit 3"))  # the two silences fold
    assert f"(the last: from 22:00 — {typed})" in shown
    assert f"`{BOT} day`: $10.00 → $25.00 (until 08:36)" in shown
    each = blocks_text(await slack.command("audit 3 each"))
    assert f"`acme and below`: — → Wed 02 Dec 06:36:53 ({typed})" in each
    assert f"`{BOT} and below`: — → 23:00:00 (from 22:00:00 — {typed})" in each


async def test_each_shows_the_times_nightshift_wrote_to_the_second(slack_http):
    """review24 L6: `audit … each` shows rows to the second (for a post-mortem), but the
    converted ends to the minute: "until 08:36" for a limit that holds until 08:36:53."""
    policy = {**POLICY, "timezone": "Europe/Berlin"}
    clock = ManualClock(1_795_930_613.335070)  # 2026-11-29T05:36:53.33507Z: 06:36 in Berlin
    slack = await slack_http(policy, clock=clock)
    await slack.command(f"budget set {BOT} 25 day for 2h")
    await slack.command(f"oncall override <@{ADMIN}|dana> 1h")
    shown = blocks_text(await slack.command("audit 2 each"))
    assert f"`{BOT} day`: $10.00 → $25.00 (until 08:36:53)" in shown
    assert f"`primary`: {ONCALL} → {ADMIN} for 1h, until 07:36:53" in shown
    assert "`06:36:53`" in shown  # the row's own time, as before
    shown = blocks_text(await slack.command("audit 2"))
    assert "(until 08:36)" in shown and "until 07:36" in shown  # folded: to the minute
