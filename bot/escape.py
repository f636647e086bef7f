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
- :func:`without_escapes`: terminal escape sequences (ANSI colours, a title) taken out
  and other control characters but line breaks and tabs as spaces: what an agent's text
  (a log line it quotes) means, kept instead of refused.
- :func:`without_marks`: direction marks and zero-width characters taken out, for text
  shown to people (they reorder or hide what follows them).

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

import base64
import binascii
import re

from bot.blocks import CONTROL as _CONTROL
from bot.blocks import echo
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


# A terminal's escape sequences, as bot.shell takes them out of what it prints: CSI
# (colours, cursor moves), OSC (a title, a link: ended by BEL or ST, or unterminated at
# the line's end) and the short ones (``ESC ( B``). A lone C1 byte (text decoded as
# Latin-1) starts none: it is a control character like the others, not eating what follows
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b\][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# NUL and the other C0 / C1 controls but tab and line breaks (\n, \r)
_CONTROL_NOT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Direction marks (LRM, RLM, ALM) and zero-width or invisible characters (ZWSP, word
# joiner, invisible operators, BOM, soft hyphen, Mongolian vowel separator); not the
# joiners U+200C/U+200D, which shape Persian and Indic words and emoji sequences
_MARKS = re.compile("[\u00ad\u061c\u180e\u200b\u200e\u200f\u2060-\u2064\ufeff]")

_BROADCAST = re.compile(r"<!(channel|here|everyone)((?:\|[^<>]*)?)>")

# Credentials an agent's error text or an endpoint's answer may carry: Nightshift's own
# tokens (their id kept), Slack's tokens and webhook URLs, OpenAI's, Anthropic's, GitHub's,
# GitLab's, Groq's and Hugging Face's keys, a bearer or basic header, a cookie header's
# value (to the end of its line), a field named like a secret (``password: x``,
# ``"api_key": "x"``, ``aws_secret_access_key=x``: its name kept; not ``max_tokens: 4096``,
# nor a ``[placeholder]`` already put there), and a URL query parameter named like one
# (its name kept)
_NAME_CHAR = r"[A-Za-z0-9_.-]"
_RUN_START = r"(?<![A-Za-z0-9_.-])"
_SECRET_WORDS = r"(?:password|passwd|secret|token|api[_-]?key|credential)"
# how the name of a field holding a secret ends (`api_key`, `aws_secret_access_key`,
# `session_token`; not `token_limit`, `max_tokens`, `token_expired`)
_SECRET_NAME_END = (
    r"(?:password|passwd|secret|token|credentials?|(?:api|secret|access|private|client)[_-]?key)"
)
_SECRETS = re.compile(
    r"(?P<ns>\bns_tok_[0-9a-f]+_)[A-Za-z0-9_-]+"
    r"|(?P<slack>\bx(?:ox[a-z]|app)-)[A-Za-z0-9-]+"
    r"|(?P<hook>\bhooks\.slack\.com/(?:services|workflows|triggers)/)[^\s\"'<>]+"
    r"|(?P<key>\bsk-(?:ant-)?)[A-Za-z0-9_-]{12,}"
    r"|(?P<prefixed>\b(?:gh[pousr]_|gsk_|hf_))[A-Za-z0-9]{20,}(?![A-Za-z0-9_-])"
    r"|(?P<patterned>\b(?:github_pat_|glpat-))[A-Za-z0-9_-]{20,}"
    r"|(?P<bearer>\b[Bb]earer\s+)[^\s\"',;]+"
    r"|(?P<cookie>\b(?:set-)?cookie\s*:\s*)[^\r\n\"']+"
    r"|(?P<basic>\b(?-i:Basic)\s+)[A-Za-z0-9+/]{8,}={0,2}"
    r"|(?P<aws>\bA[KS]IA)[0-9A-Z]{16}\b"
    r"|(?P<google>\bAIza)[0-9A-Za-z_-]{35}"
    r"|(?P<userinfo>://[^/\s:@]{1,256}+:)[^/\s@]{1,256}+(?=@)"
    # a name of at most 64 characters, from the start of its run (not from inside it: a
    # run of `token.token.…` must cost one look, not one per boundary: review24 H1), with
    # the word in its first 40 and the word not part of a longer one (`max_tokens`: not)
    rf"|(?P<said>{_RUN_START}(?={_NAME_CHAR}{{0,40}}?{_SECRET_NAME_END}(?!{_NAME_CHAR}))"
    rf"{_NAME_CHAR}{{1,64}}+[\"']?[ \t]*+[:=][ \t]*+[\"']?)(?![\[…])(?!\d+\b)[^\s\"',;&}}]+"
    rf"|(?P<param>[?&](?={_NAME_CHAR}{{0,40}}?(?:key|sig|auth|{_SECRET_WORDS}))"
    rf"{_NAME_CHAR}{{1,64}}+=)[^&#\s\"']+",
    re.IGNORECASE,
)


def no_broadcast(text: str) -> str:
    """``text`` with its ``<!channel>``, ``<!here>`` and ``<!everyone>`` shown, not sent:
    for a refusal that quotes what was typed (``'<!channel>' is not a scope``), whose
    other markup (a person's ``<@U…>``, a `code` span) is Nightshift's own.

    Example:
        >>> no_broadcast("'<!channel>' is not a scope; ask <@U0ADMIN>")
        "'&lt;!channel&gt;' is not a scope; ask <@U0ADMIN>"
    """
    return _BROADCAST.sub(r"&lt;!\1\2&gt;", text)


def _masked(m: re.Match[str]) -> str:
    """What a credential the pattern found is shown as: what names it, then "…" (a
    ``Basic`` word that is not base64 of ``user:password`` stays as it is)."""
    if m.group("basic") is not None and not _user_and_password(m.group(0)[len(m["basic"]) :]):
        return m.group(0)
    return next(g for g in m.groups() if g is not None) + "…"


def _user_and_password(value: str) -> bool:
    """Whether ``value`` is base64 of printable ``user:password`` (a word is not)."""
    try:
        said = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in said and said.isascii() and said.decode().isprintable()


def mask_secrets(text: str) -> str:
    """``text`` with the credentials it carries shown as ``…`` (an agent's error text is
    kept for good in the audit log and posted in channels: audit21 observe L5).

    Example:
        >>> mask_secrets("401 from https://x.example/v1?api_key=abc123&q=1: Bearer ns_tok_1f_Zz9")
        '401 from https://x.example/v1?api_key=…&q=1: Bearer …'
        >>> mask_secrets("postgres://app:hunter2@db:5432/x refused; password=hunter2")
        'postgres://app:…@db:5432/x refused; password=…'
    """
    return _SECRETS.sub(_masked, text)


def one_line(text: str) -> str:
    """``text`` with every control character as a space: it cannot start a line.

    Example:
        >>> one_line("a\\r\\nb\\x1b]0;t\\x07")
        'a  b ]0;t '
    """
    return _CONTROL.sub(" ", text)


def without_escapes(text: str) -> str:
    """``text`` without terminal escape sequences, its other control characters (NUL, a
    form feed, U+0085) as spaces; tabs and line breaks are kept. An agent's text taken
    as it came (a heartbeat's ``detail``): colours out of a log line are decoration.

    Example:
        >>> without_escapes("upstream said \\x1b[31m503\\x1b[0m\\x00 \\x1b]0;t\\x07ok\\r\\n")
        'upstream said 503  ok\\r\\n'
    """
    return _CONTROL_NOT_LINES.sub(" ", _ESCAPE_SEQUENCE.sub("", text))


def without_marks(text: str) -> str:
    """``text`` without direction marks and zero-width characters: shown to people,
    an RLM would reorder what Nightshift writes after it, and a zero-width space hides.

    Example:
        >>> without_marks("\\u200fabc\\u200b \\ufeff(ok)\\u200e")
        'abc (ok)'
    """
    return _MARKS.sub("", text)


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
