"""Text an agent gave us, made safe to show: the one home of its cleaning and masking.

Agents say things nobody at Nightshift chose: a settle's ``error``, a heartbeat's
``detail``, a ``task_id``, a job target's answer. Before such text is shown to a person
(Slack, a terminal) or to another agent (a breaker's reason in a 503), or kept for good
(the audit log), it goes through these helpers. They live in guards so that the guards'
own words (a breaker's reason) and the bot's renderings clean it the same way (the bot
imports guards, never the reverse); :mod:`bot.escape` adds Slack's escaping on top.

- :func:`without_escapes`: terminal escape sequences (ANSI colours, a title) taken out
  and other control characters but line breaks and tabs as spaces: what an agent's text
  (a log line it quotes) means, kept instead of refused.
- :func:`without_marks`: direction marks and zero-width characters taken out (they
  reorder or hide what follows them), and joiners between two ASCII characters.
- :func:`mask_secrets`: the credentials it carries (a Nightshift token, a Slack token,
  a bearer header, ...) shown as ``…``, seen through what :func:`without_marks` takes
  out: the one rule that makes masking and taking marks out come in either order.
- :func:`plain_line`: all of them, on one line (:data:`CONTROL`, bidi controls too, as
  spaces; runs of spaces as one): what an agent's text reads as where an agent or a
  terminal reads it.

Example:
    >>> plain_line("err \\x1b[31mRED\\x1b[0m \\x1b]0;title\\x07\\u202eRTL\\r\\n xoxb-12-ab")
    'err RED RTL xoxb-…'
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = [
    "CONTROL",
    "SLACK_TOKEN",
    "mask_secrets",
    "plain_line",
    "without_escapes",
    "without_marks",
]

# C0 and C1 controls (newline, \r, ESC, BEL, NUL...), U+2028/U+2029 (line and paragraph
# separators) and the bidi embeddings, overrides and isolates (they reorder what
# follows them, so a name could show as a different name)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

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
# The joiners U+200C/U+200D, the variation selectors (U+FE0F asks for an emoji) and the
# tag characters between two ASCII characters, where no emoji or script uses them: there
# they only hide, and split a token the mask would not see whole (recheck28 Kc L1)
_JOINED = re.compile("(?<=[!-~])[\u200c\u200d\ufe00-\ufe0f\U000e0000-\U000e007f]+(?=[!-~])")
# any character one of the two takes out (the quick test that a text holds none)
_HIDDEN = re.compile(
    "[\u00ad\u061c\u180e\u200b-\u200f\u2060-\u2064\ufe00-\ufe0f\ufeff\U000e0000-\U000e007f]"
)

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
# A Slack token's shape: ``xoxb-``, ``xoxp-``, ``xapp-``… then digits, a dash and at least 20
# more (``xoxb-<team>-<bot>-<24 letters>``, ``xapp-1-A0…-<digits>-<64 hex>``,
# ``xoxe.xoxp-1-…``): ``xapp-1`` or ``svc-xapp-2`` is a name, not a token
SLACK_TOKEN = re.compile(r"x(?:ox[a-z]|app)-\d+-[A-Za-z0-9-]{20}")
_SECRETS = re.compile(
    # Nightshift's token wherever it starts (``job_ns_tok_…``, ``%20ns_tok_…``): its prefix
    # is distinctive; Slack's after anything but a letter (``task_xoxb-…``, ``%20xoxb-…``),
    # or after a letter too when it has a token's whole shape (``boxoxa-1`` is a word)
    r"(?P<ns>ns_tok_[0-9a-f]+_)[A-Za-z0-9_-]+"
    r"|(?P<slack>(?:(?<![A-Za-z])|(?=x(?:ox[a-z]|app)-\d+-[A-Za-z0-9-]{20}))x(?:ox[a-z]|app)-)"
    r"[A-Za-z0-9-]+"
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

    The mask sees through what :func:`without_marks` takes out: a token split by a
    zero-width space, a soft hyphen or a joiner is masked whole, the invisible characters
    inside it going with it, and those elsewhere kept as sent (recheck28 Kc M1: a token
    masked by nothing at the API, then joined whole by the renderer taking the mark out).
    Mask first, then take the marks out for showing (:func:`plain_line` does): the other
    order is not the same for every text (a mark that ends a word may end a secret's
    ``Basic`` scheme word; review28 R7 L2).

    Example:
        >>> mask_secrets("401 from https://x.example/v1?api_key=abc123&q=1: Bearer ns_tok_1f_Zz9")
        '401 from https://x.example/v1?api_key=…&q=1: Bearer …'
        >>> mask_secrets("postgres://app:hunter2@db:5432/x refused; password=hunter2")
        'postgres://app:…@db:5432/x refused; password=…'
        >>> mask_secrets("tok ns_tok_1f\u200b_Zz9 \u200bok")
        'tok ns_tok_1f_… \u200bok'
    """
    # through the marks first (a mark inside a secret then hides none of it), then as
    # sent (a mark that ends a word, ``x\u200bsk-…``, ends it for the mask too)
    seen = text if _HIDDEN.search(text) is None else _masked_through_marks(text)
    return _SECRETS.sub(_masked, seen)


def _masked_through_marks(text: str) -> str:
    """``text`` with the credentials masked that :func:`without_marks`'s view of it shows:
    each found there replaces the span of ``text`` it came from, marks inside and all."""
    view, at = _dropped(_MARKS, text, list(range(len(text))))
    view, at = _dropped(_JOINED, view, at)
    parts: list[str] = []
    done = 0
    for m in _SECRETS.finditer(view):
        shown = _masked(m)
        if shown == m.group(0):  # a Basic word, or one masked already ("Bearer …")
            continue
        start, end = at[m.start()], at[m.end() - 1] + 1
        parts += (text[done:start], shown)
        done = end
    parts.append(text[done:])
    return "".join(parts)


def _dropped(pattern: re.Pattern[str], text: str, at: list[int]) -> tuple[str, list[int]]:
    """``text`` without what ``pattern`` finds, and where each character left stood in
    the original (``at`` says it for ``text``'s own)."""
    kept: list[str] = []
    kept_at: list[int] = []
    done = 0
    for m in pattern.finditer(text):
        kept.append(text[done : m.start()])
        kept_at += at[done : m.start()]
        done = m.end()
    kept.append(text[done:])
    kept_at += at[done:]
    return "".join(kept), kept_at


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
    A joiner or variation selector between two ASCII characters goes too (it only hides
    there); elsewhere it is kept, as emoji and Persian or Indic words need it.

    Example:
        >>> without_marks("\\u200fabc\\u200b \\ufeff(ok)\\u200e a\\u200db 1\\ufe0f\\u20e3")
        'abc (ok) ab 1\\ufe0f\\u20e3'
    """
    return _JOINED.sub("", _MARKS.sub("", text))


def plain_line(text: str) -> str:
    """An agent's ``text`` as plain text on one line, for an agent's 503, a terminal, the
    audit: escape sequences and direction marks out, every other control character
    (a line break, BEL, a C1 control, a bidi override) as a space, runs of spaces as one,
    credentials masked (after the escapes are out: a colour code inside ``token=…``
    hides nothing then; before the marks are: the mask sees through them, and a mark
    that only ends a word, ``x\\u200bsk-…``, still ends it for the mask).

    Example:
        >>> plain_line("job \\x9b31m ns_tok_1f_Zz9\\u200f done\\u2066 ns_tok_2a\\u00ad_Yy8")
        'job 31m ns_tok_1f_… done ns_tok_2a_…'
    """
    cleaned = mask_secrets(CONTROL.sub(" ", without_escapes(text)))
    return " ".join(without_marks(cleaned).split())
