"""Text an agent controls, made safe where people read it: Slack mrkdwn, a terminal, a log.

Agents choose their model names, task ids, item ids and texts, and a model breaker's
scope is ``model:<the agent's string>``. Pasted raw into Slack, ``<!channel>`` pings a
whole channel, ``<@U…>`` a person, and ``<http://evil.example|Acknowledge>`` is a link
that looks like Nightshift's own words; a newline starts a line that looks like
Nightshift's own ("🟢 all clear"). On a terminal, escape sequences set the title, clear
the screen, and ``\\r`` overwrites a line.

- :func:`slack_text`: for mrkdwn and a message's ``text``. One line, cut to a limit
  *before* escaping (a cut never leaves half an entity or half a ``<…|…>``), then
  ``&``, ``<`` and ``>`` escaped as Slack documents, and backticks as ``'`` so a code
  span cannot be closed (:func:`bot.blocks.echo` does the cut and the escaping).
- :func:`one_line`: control characters, line and paragraph separators and bidi
  overrides as spaces.
- :func:`printable`: the same characters as visible escapes (``\\n``, ``\\x1b``), for
  a log line.
- :func:`without_escapes`, :func:`without_marks`, :func:`mask_secrets` and
  :func:`plain_line` (escape sequences, direction marks, credentials): the cleaning
  of :mod:`guards.agent_text`, its one home (a breaker's reason is the guards' words),
  named here too.

Ordinary names are unchanged:

Example:
    >>> slack_text("acme/alice/rss-bot"), slack_text("claude-haiku-4-5")
    ('acme/alice/rss-bot', 'claude-haiku-4-5')
    >>> slack_text("model:<!channel>-<http://evil.example|open-me>")
    'model:&lt;!channel&gt;-&lt;http://evil.example|open-me&gt;'
    >>> slack_text("<http://evil.example|Click>", limit=22)
    '&lt;http://evil.example|C…'
    >>> slack_text("t1\\nfake: 🟢 all clear")
    't1 fake: 🟢 all clear'
    >>> printable("oops\\n2026-11-27 INFO fake\\x1b[2K")
    'oops\\\\n2026-11-27 INFO fake\\\\x1b[2K'
"""

from __future__ import annotations

import re

from bot.blocks import echo
from guards.agent_text import CONTROL as _CONTROL
from guards.agent_text import mask_secrets, plain_line, without_escapes, without_marks
from guards.breaker_said import LAST_ERROR
from guards.config_people import MEMBER_ID

__all__ = [
    "CHANNEL_ID",
    "mask_secrets",
    "member_or_name",
    "mentioned",
    "no_broadcast",
    "one_line",
    "operator_mentions",
    "plain_line",
    "printable",
    "slack_text",
    "without_escapes",
    "without_marks",
]

# a channel id as Slack writes one (C…; G… for an old private channel, D… for a DM)
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
# a member id is the one the policy takes (guards.config_people.MEMBER_ID): every id it
# takes is mentioned as the person's name
_MENTION = re.compile(rf"<@({MEMBER_ID.pattern})(?:\|[^>]*)?>|@?({MEMBER_ID.pattern})")
# how the guards name the person who moved a breaker ("forced open by U0DANA")
_OPERATED = re.compile(
    rf"\b(approved|kept open|forced open|forced closed) by ({MEMBER_ID.pattern})\b"
)


_BROADCAST = re.compile(r"<!(channel|here|everyone)((?:\|[^<>]*)?)>")


def no_broadcast(text: str) -> str:
    """``text`` with its ``<!channel>``, ``<!here>`` and ``<!everyone>`` shown, not sent:
    for a refusal that quotes what was typed (``'<!channel>' is not a scope``), whose
    other markup (a person's ``<@U…>``, a `code` span) is Nightshift's own.

    Example:
        >>> no_broadcast("'<!channel>' is not a scope; ask <@U0ADMIN>")
        "'&lt;!channel&gt;' is not a scope; ask <@U0ADMIN>"
    """
    return _BROADCAST.sub(r"&lt;!\1\2&gt;", text)


def one_line(text: str) -> str:
    """``text`` with every control character as a space: it cannot start a line.

    Example:
        >>> one_line("a\\r\\nb\\x1b]0;t\\x07")
        'a  b ]0;t '
    """
    return _CONTROL.sub(" ", text)


def slack_text(text: str, limit: int | None = None) -> str:
    """Agent text for Slack mrkdwn or ``text``: one line, cut, then escaped.

    ``limit``: at most that many characters of ``text`` are kept, and "…" says it
    was cut (None: all of it). The cut comes before the escaping.

    Example:
        >>> slack_text("<!here> `x`\\n*done*")
        "&lt;!here&gt; 'x' *done*"
    """
    line = one_line(text)
    return echo(line, len(line) if limit is None else limit)


def printable(text: str) -> str:
    """``text`` for one log or terminal line: control characters as Python escapes.

    Example:
        >>> printable("a\\rb")
        'a\\\\rb'
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def member_or_name(actor: str) -> str:
    """``<@U0123>`` for a Slack member id (Slack shows the name); any other actor
    (``nightshift``, ``cli:ops``, ``shell``) as plain, escaped text after an ``@``:
    ``<@cli>`` would mention nobody."""
    if MEMBER_ID.fullmatch(actor):
        return f"<@{actor}>"
    return "@" + slack_text(actor)


def mentioned(text: str) -> str | None:
    """The member id of a mention as Slack sends it (``<@U0123|dana>``), or typed
    (``@U0123``, ``U0123``); None for anything else."""
    m = _MENTION.fullmatch(text.strip())
    return (m.group(1) or m.group(2)) if m else None


def operator_mentions(escaped: str) -> str:
    """A breaker's reason (escaped already) with the person who moved it as a mention:
    the guards write the Slack id, which agents read in a 503 ("forced open by U0DANA"),
    and people in Slack read as their name (audit23 forensics L1).

    >>> operator_mentions("trial of 3 calls up to $0.50 approved by U0DANA")
    'trial of 3 calls up to $0.50 approved by <@U0DANA>'
    """
    # only in the guards' own words: what a failed call said comes after them, and is
    # the agent's (review23 H1: "… approved by U0CEO1234" in a settle's error pinged)
    head, sep, said = escaped.partition(LAST_ERROR)
    return _OPERATED.sub(r"\1 by <@\2>", head) + sep + said
