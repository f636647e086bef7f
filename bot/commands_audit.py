"""``/agent audit [n] [each] [who or what]``: the last changes, who made them, and the refusals.

Each line is one change: when, who (a Slack user, or ``nightshift`` for what it did on
its own, ``cli:<user>`` for the command line), what, on what, before → after. Runs of
acknowledgements, silences and resolutions by one person, of refusals (by anyone) and of
what Nightshift did on its own to one kind of thing, within ten minutes, fold into one line
with a count (60 refused clicks, the 240 acknowledgements of an "Acknowledge all", a
breaker storm), so a burst never pushes the other changes out of reach; ``n`` counts
lines. A word narrows the list to one person (``@dana``, ``@nightshift``), one kind of
change (``budget``, ``breaker.trip``, ``refused``) or one target (``acme/alice``: the
scope, everything below it, and alerts and silences named ``kind:scope`` on them).
``each`` folds nothing: every row a line, its time to the second (a post-mortem's view).

Example:
    >>> # /agent audit 20
    >>> # /agent audit @dana
    >>> # /agent audit 50 acme/alice/rss-bot
    >>> # /agent audit 50 each breaker
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.render_time import local_instants
from bot.blocks import clip, context, line_sections
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_core import local_time
from bot.escape import member_or_name, mentioned, operator_mentions, slack_text
from guards.config_people import MEMBER_ID
from guards.events import NIGHTSHIFT
from guards.money import usd_for
from guards.words import plural

__all__ = ["fold_rows"]

MAX_AUDIT = 50  # lines in one reply
DEFAULT_AUDIT = 10
FOLD_SECONDS = 600  # one person doing one thing again within this folds into one line
READ_ROWS = 5000  # rows read to make the lines: a fold reaching it shows "×5000+"
DETAIL_CHARS = 300  # of a row's detail shown (the whole is in the database)
# what one person does many of at a time: a run of them is one line (and a run of any one
# thing Nightshift did on its own: a breaker storm trips 200 agents)
REFUSED = "refused"
BULK = frozenset({"alert.ack", "alert.resolve", "alert.silence", "alert.unsilence", REFUSED})
AUTOMATIC = NIGHTSHIFT  # what Nightshift did on its own
_WORD = re.compile(r"[A-Za-z0-9_.:/*#@-]{1,200}")
EACH = "each"  # the word that unfolds the listing: every row a line, times to the second


@dataclass
class Entry:
    """One line of the listing: a row, or a run of rows folded into one."""

    first: Any  # the newest row of the run
    at_oldest: float
    count: int = 0
    targets: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)  # of a run of refusals, every one
    actions: list[str] = field(default_factory=list)  # of a run of Nightshift's, every one
    details: list[str] = field(default_factory=list)  # every one, oldest last

    def take(self, row: Any) -> None:
        """Add ``row`` (the next older one) to the run."""
        self.count += 1
        self.at_oldest = float(row["at"])
        for seen, value in (
            (self.targets, row["target"]),
            (self.actors, row["actor"]),
            (self.actions, row["action"]),
            (self.details, row["detail"] or ""),
        ):
            if str(value) not in seen:
                seen.append(str(value))

    @property
    def actor(self) -> str:
        return str(self.first["actor"])

    @property
    def action(self) -> str:
        return str(self.first["action"])


def _folds(last: Entry, row: Any) -> bool:
    """Whether ``row`` (older) joins the run ``last`` ends with."""
    if float(last.first["at"]) - float(row["at"]) > FOLD_SECONDS:
        return False
    if last.actor == AUTOMATIC:  # a storm trips, asks for trials, fails them: one line
        return bool(row["actor"] == AUTOMATIC and _family(row["action"]) == _family(last.action))
    if row["action"] != last.action or last.action not in BULK:
        return False
    # refusals by anyone: two accounts taking turns must not drown the log either
    return bool(row["actor"] == last.actor or last.action == REFUSED)


def _family(action: str) -> str:
    return action.partition(".")[0]


def fold_rows(rows: list[Any], limit: int, *, fold: bool = True) -> tuple[list[Entry], bool]:
    """Rows (newest first) as at most ``limit`` entries (without ``fold``, one per row);
    True when rows were left over."""
    entries: list[Entry] = []
    for row in rows:
        last = entries[-1] if entries else None
        if last is None or not fold or not _folds(last, row):
            if len(entries) == limit:
                return entries, True
            last = Entry(first=row, at_oldest=float(row["at"]))
            entries.append(last)
        last.take(row)
    return entries, len(rows) >= READ_ROWS  # not all read: there are older ones


# a target that is the scope ``w`` or below it, or an alert on it (``kind:w``, ``kind:w/…``)
_TARGET = (
    "({t} = {w} OR substr({t}, 1, length({w}) + 1) IN ({w} || '/', {w} || ' ')"
    " OR instr({t}, ':' || {w} || '/') > 0 OR substr({t}, -length({w}) - 1) = ':' || {w})"
)


def _filter(word: str) -> tuple[str, tuple[str, ...], str]:
    """SQL for ``word``: a person, a kind of change, or a target (and what is below it)."""
    user = mentioned(word)
    if user is not None:
        return "actor = ?", (user,), f"by <@{user}>"
    if not _WORD.fullmatch(word):
        raise UsageError(f"`{slack_text(word[:40])}` is not a person, a change or a scope")
    # people and changes in any case: a phone writes `Refused` and `@Nightshift`
    if word.startswith("@"):  # as the listing shows them: @nightshift, @cli:ops
        return "lower(actor) = ?", (word[1:].lower(),), f"by {member_or_name(word[1:])}"
    # a target names a scope first (`acme/a/bot day`), or an alert (`#12 kind:scope`); a
    # scope that exists as written is matched in its own case (`Acme` and `acme` are two
    # namespaces: audit23 tenants F3), any other word in any case (`ACME` from a phone)
    return (
        "(lower(actor) = ?1 OR lower(action) = ?1"
        " OR substr(lower(action), 1, length(?1) + 1) = ?1 || '.'"
        " OR substr(lower(action), -length(?1) - 1) = '.' || ?1"  # `silence`: alert.silence
        " OR (CASE WHEN EXISTS (SELECT 1 FROM scopes WHERE path = ?2)"
        f" THEN {_TARGET.format(t='target', w='?2')}"
        f" ELSE {_TARGET.format(t='lower(target)', w='?1')} END))",
        (word.lower(), word),
        f"matching `{slack_text(word)}`",
    )


def _values(
    ctx: Context, action: str, before: str | None, after: str | None, *, seconds: bool
) -> str:
    """``$10.00 → $2.505`` for a budget row (both exact when one is); else each as
    :func:`_value` shows it."""
    if action.startswith("budget"):
        amounts = [int(v) for v in (before, after) if v is not None and v.isdigit()]
        usd = usd_for(*amounts)

        def money(value: str | None) -> str:
            return usd(int(value)) if value is not None and value.isdigit() else "—"

        if amounts:
            return f"{money(before)} → {money(after)}"
    return f"{_value(ctx, before, seconds=seconds)} → {_value(ctx, after, seconds=seconds)}"


def _value(ctx: Context, value: str | None, *, seconds: bool) -> str:
    """A before or after as shown: Nightshift writes these (a state, a silence's end, an
    override's "for 1h, until …"), so their instants are in the policy's zone."""
    return "—" if value is None else _times(ctx, value, seconds=seconds)


def _times(ctx: Context, text: str, *, seconds: bool) -> str:
    """``text`` with its ISO instants in the policy's zone, as the row's own time is
    shown (audit24 L4: "until 2026-11-29T06:36:53.335070Z" under "times in Europe/Berlin"),
    to the second with ``seconds`` (``each``: review24 L6); the stored row is left as it
    is. Only for text Nightshift wrote (:func:`_own_times`)."""
    tz = ZoneInfo(ctx.ns.policy.timezone)
    return local_instants(text, tz, now=ctx.ns.clock.now(), seconds=seconds)


# the details Nightshift writes whole, with an end it keeps as ISO text and nothing anyone
# typed: a budget set for a while ("until …") and its end, a token's expiry, an unack's
# next step "due at …"
OWN_DETAILS = frozenset({"budget.set", "budget.end", "token.create", "alert.unack"})
# a booked silence's detail begins with its start, as Nightshift writes it; what follows
# " — " is the reason as typed
# Acknowledge all's detail is Nightshift's words alone (bot.alerts.operations.ack_storm):
# counts, and who had acknowledged the rest, by member id (nothing anyone typed)
STORM_ACK = "alert.ack_storm"
_MENTION_SHOWN = re.compile(rf"&lt;@({MEMBER_ID.pattern})&gt;")
_SILENCE_FROM = re.compile(r"from \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")


def _own_times(ctx: Context, action: str, detail: str, *, seconds: bool) -> str:
    """A detail with the instants Nightshift wrote in it shown in the policy's zone; a
    reason people typed stays as typed, ISO-looking text and all (review24 L5: "-- until
    2026-12-01T10:00Z per vendor" was shown rewritten, like a second end)."""
    if action in OWN_DETAILS:
        return _times(ctx, detail, seconds=seconds)
    if action == "alert.silence":
        start, dash, reason = detail.partition(" — ")
        if _SILENCE_FROM.fullmatch(start):
            return _times(ctx, start, seconds=seconds) + dash + reason
    return detail


def _line(ctx: Context, e: Entry, *, seconds: bool = False) -> str:
    # targets, values and details hold what people and agents typed: shown, never read
    row = e.first
    when = local_time(ctx, float(row["at"]), seconds=seconds)
    if e.count > 1:
        oldest = local_time(ctx, e.at_oldest)
        if oldest != when:  # (within one minute: the minute once)
            if oldest.rpartition(" ")[0] == when.rpartition(" ")[0]:  # one day: its date once
                when = when.rpartition(" ")[2]
            when = f"{oldest}–{when}"
    who = ", ".join(member_or_name(a) for a in e.actors[:3])
    if len(e.actors) > 3:
        who += f" and {len(e.actors) - 3} more"
    action = e.action
    if len(e.actions) > 1:  # breaker.trip, breaker.trial_failed: breaker.trip/trial_failed
        action += "/" + "/".join(a.partition(".")[2] or a for a in e.actions[1:])
    line = f"`{when}` {who} *{slack_text(action)}*"
    if e.count > 1:
        shown = ", ".join(f"`{slack_text(t, 80)}`" for t in e.targets[:3])
        more = f" and {len(e.targets) - 3} more" if len(e.targets) > 3 else ""
        line += f" ×{e.count}: {shown}{more}"
        if e.action == "policy.load":  # each start names what changed: all of them
            keys = dict.fromkeys(
                key for d in e.details for key in d.rpartition(": ")[2].split(", ") if key
            )
            line += f" (changed: {slack_text(', '.join(keys), DETAIL_CHARS)})"
        elif row["detail"]:
            line += f" (the last: {_detail(ctx, e.action, str(row['detail']), seconds=False)})"
        return line
    target = "all jobs" if e.action.startswith("job.") and row["target"] == "*" else row["target"]
    line += f" `{slack_text(str(target), 200)}`"
    if row["before"] is not None or row["after"] is not None:
        values = _values(ctx, e.action, row["before"], row["after"], seconds=seconds)
        line += f": {slack_text(values, DETAIL_CHARS)}"
    if row["detail"]:
        line += f" ({_detail(ctx, e.action, str(row['detail']), seconds=seconds)})"
    return line


def _heading(entries: list[Entry], narrowed: str) -> str:
    """``*Last 3 changes*``, or ``*Last 12 changes* in 5 lines`` when lines fold rows: it
    counts the rows the lines show (one counting lines said "Last 1 change" above a line
    of two refusals: audit24 B L3). What narrows them comes before the lines: ``*Last 4
    changes* by @nightshift, in 1 line`` (review24 trial L6: "in 1 line by @nightshift")."""
    count = plural(sum(e.count for e in entries), "change")
    said = f"*Last {count}*" + (f" {narrowed}" if narrowed else "")
    if sum(e.count for e in entries) == len(entries):
        return said
    return f"{said}{',' if narrowed else ''} in {plural(len(entries), 'line')}"


def _detail(ctx: Context, action: str, detail: str, *, seconds: bool) -> str:
    """A row's detail as shown, the instants Nightshift wrote in the policy's zone
    (:func:`_own_times`); a breaker's reason names who moved it as a mention, as `/agent
    breakers` does (the row keeps the id: audit24 agreement F4). Other details are what
    people and agents typed: shown, never a ping."""
    shown = slack_text(_own_times(ctx, action, detail, seconds=seconds), DETAIL_CHARS)
    if action == STORM_ACK:  # its counts and who acknowledged, as the summary's line says
        return _MENTION_SHOWN.sub(r"<@\1>", shown)  # (recheck28 Kb L2: "&lt;@U03&gt;")
    return operator_mentions(shown) if _family(action) == "breaker" else shown


_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d*)?(?:e\d+)?", re.IGNORECASE)


def _args(args: list[str]) -> tuple[int, str | None, bool]:
    """``[n] [each] [word]`` in any order: how many lines, what narrows them, and whether
    each row is a line of its own."""
    n: int | None = None
    word: str | None = None
    each = False
    for arg in args:
        if arg.lower() == EACH and not each:
            each = True
        elif _NUMBER.fullmatch(arg) or arg.isnumeric():  # ١٢ and ５ too: said, not searched
            if n is not None or not (arg.isascii() and arg.isdigit() and len(arg) <= 3):
                raise UsageError(f"n is a number from 1 to {MAX_AUDIT}")
            n = int(arg)
            if not 1 <= n <= MAX_AUDIT:
                raise UsageError(f"n is a number from 1 to {MAX_AUDIT}")
        elif word is None:
            word = arg
        else:
            raise UsageError()
    return n or DEFAULT_AUDIT, word, each


@subcommand("audit", usage="audit [n] [each] [@user | change | scope]")
async def cmd_audit(ctx: Context, args: list[str]) -> Reply:
    """The last changes and refusals: who, what, before → after, when (``each``: every
    row on a line of its own, to the second)."""
    if len(args) > 3:
        raise UsageError()
    n, word, each = _args(args)
    where, params, narrowed = ("1", (), "") if word is None else _filter(word)
    rows = await ctx.ns.store.fetch(
        "SELECT at, actor, action, target, before, after, detail FROM audit"
        f" WHERE {where} ORDER BY id DESC LIMIT ?",
        (*params, READ_ROWS),
    )
    if not rows:
        return Reply.text_only(
            f"No changes {narrowed} recorded." if word else "No changes recorded yet."
        )
    entries, older = fold_rows(list(rows), n, fold=not each)
    lines = [_line(ctx, e, seconds=each) for e in entries]
    title = f"{_heading(entries, narrowed)} (times in {ctx.ns.policy.timezone})"
    blocks, _ = line_sections([title, *lines], per_section=10)  # ≤ 700 characters a line
    if older:
        more = "`/agent audit 50`, or " if n < MAX_AUDIT else ""
        blocks.append(
            context(f"Older changes: {more}narrow it (`/agent audit @user`, a scope or a change)")
        )
    if any(e.count > 1 for e in entries):  # a post-mortem needs the rows one by one
        typed = " ".join(a for a in (str(n), word) if a)
        blocks.append(
            context(f"A line with ×N folds N rows: `/agent audit {typed} each` lists each one")
        )
    text = clip("\n".join([title, *lines]))
    return Reply(text=text, blocks=blocks)
