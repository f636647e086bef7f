"""Alert storm summaries: one message for many alerts, its Acknowledge all, and what a click did.

:func:`fold_message` renders the summary :mod:`bot.alerts.folding` keeps for a lane;
it carries Acknowledge all while one of its alerts is open, and once clicked
:func:`storm_acked_line` replaces the button (:func:`bot.alerts.operations.ack_storm`).
A channel's summary of P0s whose chain pages a webhook first says how that page goes in
a block of its own (:data:`PAGE_BLOCK`), which :func:`with_page` redraws once it went
through or failed (:mod:`bot.alerts.storm_page`).

Example:
    >>> _people({"U1": 3, "U2": 1})
    '<@U1> and <@U2>'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.alerts.first_page import WebhookPage, webhook_prefix
from bot.alerts.model import Alert
from bot.alerts.render import TIER_ICONS, title
from bot.alerts.render_time import clock_time
from bot.blocks import actions, button, context, header, section
from bot.escape import slack_text
from guards.words import listed, plural

if TYPE_CHECKING:
    from bot.alerts.operations import StormAck

__all__ = [
    "PAGE_BLOCK",
    "STORM_ACK_ACTION",
    "fold_message",
    "storm_acked_line",
    "storm_done_line",
    "storm_handled",
    "storm_others",
    "storm_p0_note",
    "storm_reopened_line",
    "storm_split",
    "with_mention",
    "with_page",
]

FOLD_KINDS_SHOWN = 8
FOLD_SCOPES_SHOWN = 6
FOLD_GROUP_CHARS = 600  # per group: 8 groups stay well within one message
STORM_ACK_ACTION = "storm_ack"
#: the block_id of the summary's line saying how its webhook page goes
PAGE_BLOCK = "page"


def fold_message(
    alerts: list[Alert],
    *,
    paged: bool,
    mention: str | None,
    page: WebhookPage | None = None,
    tz: ZoneInfo,
    now: float,
    ref: str | None = None,
    joined: bool = False,
    leads: Sequence[int] = (),
) -> tuple[str, list[dict[str, Any]]]:
    """One message for many alerts of a storm (pages to a person, or posts to a channel).

    Alerts are grouped by tier and kind, the largest group first; each group names a
    few scopes with their alert ids, and says how many more it holds. With the
    summary's outbox ``ref``, and while one of its alerts is open, it ends with an
    Acknowledge all button whose value is that ref (not the ids: a value holds at
    most 2,000 characters, a storm hundreds of ids). A channel's summary of P0s whose
    chain pages a webhook first mentions nobody and begins with how that ``page`` goes
    (:func:`bot.alerts.first_page.summary_page`), in the words of such a P0's own post:
    "📟 Paging via webhook NAME…", "📟 Paged via webhook NAME:", "⚠️ The page via webhook
    NAME failed (HTTP 400); <@U01> is next:". ``joined``: some of its alerts came in the
    minute after it went out (:mod:`bot.alerts.folding_join`), and it says so. ``leads``:
    the ids of the open alerts whose pages began the storm, on their own, which its
    Acknowledge all takes too (:func:`bot.alerts.storm_sent.storm_leads`): it names them.
    """
    groups: dict[tuple[str, str], list[Alert]] = {}
    for alert in alerts:
        groups.setdefault((alert.tier, alert.kind), []).append(alert)
    order = sorted(groups.items(), key=lambda kv: (kv[0][0], -len(kv[1]), kv[0][1]))
    top = "P0" if any(a.tier == "P0" for a in alerts) else min(a.tier for a in alerts)
    many = len(alerts) > 1  # one alert folded is no storm (audit21 oncall 5)
    number = f"{len(alerts)} alerts" if many else "1 more alert"
    head = f"{TIER_ICONS.get(top, '⚪')} {'Alert storm · ' if many else ''}{number}"
    came = "they came" if many else "it came"
    after = " or in the minute after" if joined else ""
    edited = " (edited as they came)" if joined else ""
    if paged:
        lead = f"*You are paged for {number} at once*: {came} while your earlier"
        lead += f" pages were still on their way{after}, so {'they are' if many else 'it is'}"
        lead += f" folded into this one message{edited}."
        offered = ref is not None and any(a.state == "open" for a in alerts)  # (its button)
        lead += _leads_taken(leads) if offered else ""
    else:
        lead = f"*{number}* came while this channel's earlier alert messages were"
        lead += f" still on their way{after}, so {'they are' if many else 'it is'} folded"
        lead += f" into this one message{edited}."
    paged_via = webhook_prefix(page) if page is not None else ""
    if mention:
        lead = f"<@{mention}> {lead}"
    blocks: list[dict[str, Any]] = [header(head)]
    if paged_via:
        blocks.append(_page_block(paged_via))
    blocks.append(section(lead))
    lines = []
    for (tier, _), members in order[:FOLD_KINDS_SHOWN]:
        first = members[0]
        named = _named(members)
        shown = " · ".join(named)
        more = len(members) - len(named)
        rest = f" · … and {more} more" if more > 0 else ""
        line = f"{TIER_ICONS.get(tier, '⚪')} {tier} · *{title(first)}* × {len(members)}"
        lines.append(line)
        blocks.append(section(f"{line}\n{shown}{rest}"))
    hidden = order[FOLD_KINDS_SHOWN:]
    if hidden:
        count = sum(len(m) for _, m in hidden)
        kinds = plural(len(hidden), "other kind")
        blocks.append(context(f"… and {plural(count, 'more alert')} of {kinds}"))
    blocks.append(
        context(
            "`/agent alerts` lists them · `/agent ack <id>` takes one ·"
            " `/agent silence <scope> 1h` quiets a namespace, user or agent"
            f" · {clock_time(now, tz, now=now)} {tz.key}"
        )
    )
    if ref is not None and any(a.state == "open" for a in alerts):
        take = button("Acknowledge all", STORM_ACK_ACTION, ref, style="primary")
        blocks.append(actions(take, block_id="storm"))
    text = f"{paged_via}{'<@' + mention + '> ' if mention else ''}{head}: " + "; ".join(lines)
    return text, blocks


def _leads_taken(leads: Sequence[int]) -> str:
    """`` Acknowledge all takes this storm's first page above too (`#17`).`` ("" for none)."""
    if not leads:
        return ""
    ids = [f"`#{i}`" for i in leads[:FOLD_SCOPES_SHOWN]]
    more = len(leads) - len(ids)
    named = ", ".join(ids) + (f" and {more} more" if more > 0 else "")
    first = "first page" if len(leads) == 1 else f"first {len(leads)} pages"
    return f" Acknowledge all takes this storm's {first} above too ({named})."


def storm_p0_note(alert: Alert) -> str:
    """The reply in a page summary's thread, shown in the DM, when a P0 joins it after it
    went out holding none (:func:`bot.alerts.folding_join.join_sent`): its edit wakes
    nobody, this buzzes once.

    Example:
        ``🔴 A P0 joined this alert storm: `#212` *Heartbeat missed* on acme/a/b. …``
    """
    return (
        f"🔴 A P0 joined this alert storm: `#{alert.id}` *{title(alert)}* on"
        f" {slack_text(alert.scope)}. The summary above counts it; Acknowledge all takes it"
        " with the rest."
    )


def _page_block(prefix: str) -> dict[str, Any]:
    """The line saying how the summary's webhook page goes (``prefix`` without its space)."""
    return {**section(prefix.removesuffix(" ")), "block_id": PAGE_BLOCK}


def with_page(args: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A summary's ``args`` (text and blocks, as shown) saying ``prefix``
    (:func:`~bot.alerts.first_page.webhook_prefix`; "" for none) of its webhook page in
    place of what they said: its page line, and the beginning of its text.

    Example:
        >>> args = {"text": "📟 Paging via webhook pd… 🔴 Alert storm", "blocks": [
        ...     {"type": "header"}, _page_block("📟 Paging via webhook pd… ")]}
        >>> drawn = with_page(args, "📟 Paged via webhook pd: ")
        >>> drawn["text"], drawn["blocks"][1]["text"]["text"]
        ('📟 Paged via webhook pd: 🔴 Alert storm', '📟 Paged via webhook pd:')
    """
    blocks = list(args.get("blocks") or [])
    at = next((i for i, b in enumerate(blocks) if b.get("block_id") == PAGE_BLOCK), None)
    said = "" if at is None else f"{blocks[at]['text']['text']} "
    if at is not None:
        del blocks[at]
    if prefix:
        blocks.insert(1 if at is None else at, _page_block(prefix))  # (after its header)
    text = prefix + str(args.get("text") or "").removeprefix(said)
    return {**args, "text": text, "blocks": blocks}


def with_mention(args: dict[str, Any], user: str) -> dict[str, Any]:
    """A channel summary's ``args`` (text and blocks, as shown) mentioning ``user`` where
    they mention a person (the person its chain pages first, as drawn): the person a later
    step paged for its alerts, as their own posts mention them then (recheck27 Kb L1).
    Unchanged when they mention nobody (a chain paging a webhook or the channel first).

    Example:
        >>> args = {"text": "<@U01> 🔴 Alert storm", "blocks": [
        ...     {"type": "header"}, section("<@U01> *20 alerts* came")]}
        >>> drawn = with_mention(args, "U04")
        >>> drawn["text"], drawn["blocks"][1]["text"]["text"]
        ('<@U04> 🔴 Alert storm', '<@U04> *20 alerts* came')
    """
    blocks = list(args.get("blocks") or [])
    page = next((b for b in blocks if b.get("block_id") == PAGE_BLOCK), None)
    at = next(
        (
            i
            for i, b in enumerate(blocks)
            if b.get("type") == "section" and b.get("block_id") != PAGE_BLOCK
        ),
        None,
    )
    lead = "" if at is None else str(blocks[at]["text"]["text"])
    if not lead.startswith("<@") or "> " not in lead:
        return args
    old, new = lead[: lead.index("> ") + 2], f"<@{user}> "
    said = "" if page is None else f"{page['text']['text']} "
    rest = str(args.get("text") or "").removeprefix(said)
    if old == new or not rest.startswith(old):
        return args
    assert at is not None
    blocks[at] = {**blocks[at], "text": {**blocks[at]["text"], "text": new + lead[len(old) :]}}
    return {**args, "text": said + new + rest[len(old) :], "blocks": blocks}


def _named(members: list[Alert]) -> list[str]:
    """The first few of a group (``#12 acme/alice/bot``), within FOLD_GROUP_CHARS: eight
    groups of six long scopes would pass the text Slack takes in one message."""
    named: list[str] = []
    room = FOLD_GROUP_CHARS
    for alert in members[:FOLD_SCOPES_SHOWN]:
        item = f"`#{alert.id}` {slack_text(alert.scope)}"
        if named and len(item) + 3 > room:
            break
        named.append(item)
        room -= len(item) + 3
    return named


def _count_with(count: int, one: str, many: str) -> str:
    """``1 was``, ``3 were``: a count and the verb that agrees with it."""
    return f"{count} {one if count == 1 else many}"


def _people(counts: dict[str, int]) -> str:
    """``<@U1>``, ``<@U1> and <@U2>``, ``<@U1>, <@U2> and 3 others`` (most acks first)."""
    names = [f"<@{u}>" for u, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    if len(names) > 3:
        return f"{', '.join(names[:2])} and {plural(len(names) - 2, 'other')}"
    return listed(names)


def storm_others(done: StormAck) -> list[str]:
    """What Acknowledge all left as it was: ``["2 were already resolved", ...]``."""
    out = []
    left = done.left_before
    if done.earlier:
        count = sum(done.earlier.values())
        split = _where(count, left.get("acked", 0))
        out.append(
            f"{_count_with(count, 'was', 'were')} already acknowledged{split}"
            f" by {_people(done.earlier)}"
        )
    if done.resolved:
        split = _where(done.resolved, left.get("resolved", 0))
        out.append(f"{_count_with(done.resolved, 'was', 'were')} already resolved{split}")
    if done.silenced:
        split = _where(done.silenced, left.get("silenced", 0))
        out.append(f"{_count_with(done.silenced, 'is', 'are')} silenced{split}")
    return out


def _pages_before(count: int) -> str:
    """``the page`` or ``the 3 pages`` (before the summary)."""
    return "the page" if count == 1 else f"the {count} pages"


def _where(count: int, before: int) -> str:
    """`` (1 here and the page before)`` of ``count`` alerts, ``before`` of them the
    pages before the summary ("" when none was: the summary's head counts its own)."""
    if not before:
        return ""
    here = count - before
    pages = _pages_before(before)
    return f" ({here} here and {pages} before)" if here else f" ({pages} before)"


def _handled(acked: dict[str, int], resolved: int, silenced: int) -> str:
    """``26 acknowledged by <@U1>, 2 resolved, 1 silenced`` (the counts not 0)."""
    parts = []
    if acked:
        parts.append(f"{sum(acked.values())} acknowledged by {_people(acked)}")
    if resolved:
        parts.append(f"{resolved} resolved")
    if silenced:
        parts.append(f"{silenced} silenced")
    return ", ".join(parts)


def storm_done_line(alerts: list[Alert], *, tz: ZoneInfo, now: float) -> str:
    """The line that replaces a sent summary's Acknowledge all once none of its alerts
    is open (acknowledged one by one, from the other lane's summary, or resolved).

    Example:
        ``✅ all 28 alerts handled by 03:20: 26 acknowledged by <@U1>, 2 resolved``
    """
    acked = Counter(a.acked_by or "?" for a in alerts if a.state == "acked")
    resolved = sum(1 for a in alerts if a.state == "resolved")
    silenced = sum(1 for a in alerts if a.state == "silenced")
    every = "its alert" if len(alerts) == 1 else f"all {len(alerts)} alerts"
    handled = _handled(dict(acked), resolved, silenced)
    return f"✅ {every} handled by {clock_time(now, tz, now=now)}: {handled}"


def storm_reopened_line(alerts: Sequence[Alert], *, leads: Sequence[Alert] = ()) -> str:
    """The line a handled summary shows above its Acknowledge all again once one of its
    alerts is open again (``/agent unack``): what is still handled, in the words of its
    handled line, and which are open (recheck28 Kb L1: it read "paged for 203 alerts"
    as if none were acknowledged). ``leads``: the pages that began a page summary's
    storm, which its Acknowledge all took too (counted apart, as its line counts them).

    Example:
        ``205 acknowledged (202 here and the 3 pages before) by <@U03>; `#5` open again``;
        ``7 of them acknowledged by <@U1>, 2 resolved; `#5` and `#9` open again``
    """
    own = {a.id for a in alerts}
    before = [a for a in leads if a.id not in own]
    every = [*alerts, *before]
    acked = Counter(a.acked_by or "?" for a in every if a.state == "acked")
    parts = []
    for state, count in (
        ("acked", sum(acked.values())),
        ("resolved", sum(1 for a in every if a.state == "resolved")),
        ("silenced", sum(1 for a in every if a.state == "silenced")),
    ):
        if not count:
            continue
        split = _where(count, sum(1 for a in before if a.state == state))
        word = {"acked": "acknowledged", "resolved": "resolved", "silenced": "silenced"}[state]
        said = f"{count}{'' if split else ' of them'} {word}{split}"
        parts.append(f"{said} by {_people(dict(acked))}" if state == "acked" else said)
    opened = [f"`#{i}`" for i in sorted(a.id for a in every if a.state == "open")]
    shown = opened[:FOLD_SCOPES_SHOWN]
    more = len(opened) - len(shown)
    again = listed(shown) if not more else f"{', '.join(shown)} and {more} more"
    return "; ".join([p for p in (", ".join(parts), f"{again} open again") if p])


def storm_split(done: StormAck) -> str:
    """Where the alerts Acknowledge all took were, when it took the pages that began the
    storm too: the summary is headed with the count it holds ("199 alerts"), so a line
    saying "201 acknowledged" says which 201 ("" when it took only its own).

    Example:
        ``(199 here and the 2 pages before)``, ``(199 here and the page before)``
    """
    return _where(len(done.acked), done.before).lstrip()


def storm_acked_line(done: StormAck, *, tz: ZoneInfo, now: float) -> str:
    """The line that replaces a summary's Acknowledge all once clicked.

    Example:
        ``✅ 238 acknowledged by <@U1> at 03:20; 2 were already resolved``;
        ``✅ 201 acknowledged (199 here and the 2 pages before) by <@U1> at 03:20``
    """
    at = clock_time(done.at, tz, now=now)
    split = storm_split(done)
    head = f"✅ {len(done.acked)} acknowledged{f' {split}' if split else ''}"
    return "; ".join([f"{head} by <@{done.actor}> at {at}", *storm_others(done)])


def storm_handled(done: StormAck) -> str:
    """The answer to an Acknowledge all that found nothing left to acknowledge; a page
    summary's counts its own and the pages before it apart, as its head counts only its
    own (review28 R3 L1: "all 8 of its alerts" under "🔴 Alert storm · 5 alerts").

    Example:
        ``Nothing to acknowledge in this storm: all 5 of its alerts and the 3 pages
        before are already handled (8 acknowledged by <@U01>). Nothing changed.``
    """
    if done.total == 0:
        return "This storm summary holds no alert any more. Nothing changed."
    handled = _handled(done.earlier, done.resolved, done.silenced)
    here, leads = done.total - done.leads, done.leads
    own = "its alert" if here == 1 else f"all {here} of its alerts"
    if not leads:
        every = f"{own} is" if here == 1 else f"{own} are"
    elif not here:
        every = f"{_pages_before(leads)} before it {'is' if leads == 1 else 'are'}"
    else:
        every = f"{own} and {_pages_before(leads)} before are"
    return (
        f"Nothing to acknowledge in this storm: {every} already handled ({handled})."
        " Nothing changed."
    )
