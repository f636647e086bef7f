"""``/agent dedup`` over signed slash commands: counts, grouping, what was matched."""

from __future__ import annotations

from typing import Any

AGENT = "acme/alice/rss-bot"
POLICY = {"admins": ["U0ADMIN"]}


async def validate(app: Any, tok: str, items: list[Any], stream: str = "posts") -> Any:
    r = await app.request(
        "POST",
        "/v1/validations",
        token=tok,
        json={"scope": AGENT, "stream": stream, "items": items},
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_dedup_groups_repeats_counts_everything_and_shows_the_match(slack_http):
    slack = await slack_http(POLICY)
    tok = await slack.app.token(AGENT)
    await validate(slack.app, tok, [{"id": "guid-777", "text": "Weekly roundup: ten links"}])
    await validate(slack.app, tok, ["Bitcoin hits $70,000 for the first time"], "prices")
    for _ in range(60):  # one post sent again and again: 60 identical rejections
        await validate(slack.app, tok, ["Weekly roundup: ten links"])
    await validate(slack.app, tok, ["bitcoin hits $70,000 for the first time!"], "prices")

    reply = await slack.command("dedup acme/alice/rss-bot 24h")
    text = reply["text"]
    assert "last 24h: 60 duplicate, 1 near-duplicate" in text  # the whole range, not 50
    assert "60× *duplicate* `acme/alice/rss-bot` posts — “Weekly roundup: ten links”" in text
    assert "(same as “Weekly roundup: ten links”" in text
    assert "*near-duplicate* `acme/alice/rss-bot` prices" in text
    assert "99% like “Bitcoin hits $70,000 for the first time”" in text
    assert text.count("\n") <= 4  # two grouped lines, not sixty
    everywhere = await slack.command("dedup")
    assert "60 duplicate, 1 near-duplicate" in everywhere["text"]


async def test_old_rows_without_a_preview_name_the_id_quoted_or_the_row(slack_http):
    slack = await slack_http(POLICY)
    tok = await slack.app.token(AGENT)
    await validate(slack.app, tok, [{"id": "17", "text": "First post of the day"}, "Second one"])
    await validate(slack.app, tok, ["First post of the day", "Second one"])
    # rows written before migration 0009 have no preview
    await slack.app.store.write(
        lambda tx: tx.execute("UPDATE validation_rejections SET matched_preview = NULL")
    )
    text = (await slack.command("dedup acme 1h"))["text"]
    assert "(same as “17”" in text
    assert "(same as #2" in text


async def test_a_scope_nothing_has_used_is_not_an_all_clear(slack_http):
    """audit9 M1: a mistyped agent got "✅ No output rejected" while it published duplicates."""
    slack = await slack_http(POLICY)
    tok = await slack.app.token(AGENT)
    await validate(slack.app, tok, ["Breaking: the river rose", "Breaking: the river rose"])
    assert "1 duplicate" in (await slack.command(f"dedup {AGENT}"))["text"]

    reply = await slack.command("dedup rss-bot")
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == (
        "No agent has reserved or sent a heartbeat under `rss-bot` yet (a typo?): no output"
        f" was checked under it, so there is nothing to show. Did you mean `{AGENT}`?"
        f" (`/agent dedup {AGENT}`)"
    )
    for typo in ("acme/alice/rss_bot", "Acme/alice/rss-bot 24h", "24h ACME/ALICE/RSS-BOT"):
        text = (await slack.command(f"dedup {typo}"))["text"]
        assert "✅" not in text and f"Did you mean `{AGENT}`?" in text, (typo, text)
    nothing = (await slack.command("dedup nosuch"))["text"]
    assert nothing.startswith("No agent has reserved or sent a heartbeat under `nosuch`")
    assert "Did you mean" not in nothing
    # a scope Nightshift knows, with nothing rejected lately, is still an all-clear
    slack.app.clock.advance(120)
    clear = await slack.command("dedup acme/alice 1m")
    assert clear["text"] == "✅ No output rejected in `acme/alice` in the last 1m."
    named = await slack_http({**POLICY, "budgets": {"scopes": {"globex": {"day": "5.00"}}}})
    assert "✅ No output rejected in `globex`" in (await named.command("dedup globex"))["text"]
