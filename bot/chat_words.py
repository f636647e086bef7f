"""Reading a command line as people type it: in Slack, on a phone, half asleep.

:func:`split_args` turns ``/agent`` text into words. Before splitting it undoes what
Slack and phones do to text:

- Slack's escapes (``&amp;`` ``&lt;`` ``&gt;``) and the links it makes of typed text: a
  typed ``acme.io/alice`` arrives as ``<http://acme.io/alice|acme.io/alice>`` and is read
  as typed (a link labelled otherwise was made on purpose and stays as it came);
- any Unicode space (a non-breaking one from a paste or a French keyboard) is a space;
- smart quotes are quotes, and a quote groups words only at a word's edges, so the
  apostrophes of ``don't restart, it's looping`` stay in the text.

Each word is then :func:`tidy`: without the backticks or asterisks of a copied reply,
a sentence's ``.`` or ``,`` after it, or a scope's trailing ``/``. A word remembers
what was typed (:func:`typed`), for free text such as a kill switch's reason.

:func:`join_duration` reads ``2 h``, ``2 hours`` or ``90min`` as one duration.

Example:
    >>> split_args("budget\\u00a0“acme/alice/”")
    ['budget', 'acme/alice']
    >>> typed(split_args("breaker a/b/c open don’t restart, it's &gt; $5")[3:])
    "don't restart, it's > $5"
    >>> join_duration(["1", "2", "hours"], 1)
    ['1', '2h']
"""

from __future__ import annotations

import re

__all__ = ["Word", "duration_word", "join_duration", "normalize", "split_args", "tidy", "typed"]

# <http://acme.io/alice|acme.io/alice>, <mailto:a@b.c|a@b.c>: text Slack made a link of;
# the label is what was typed (a link with another label was made on purpose: it stays)
_LABELLED_LINK = re.compile(r"<(?:https?://|mailto:)([^<>|]*)\|([^<>]*)>", re.IGNORECASE)
_BARE_LINK = re.compile(r"<((?:https?://)[^<>|]*)>", re.IGNORECASE)
_BARE_MAILTO = re.compile(r"<mailto:([^<>|]*)>", re.IGNORECASE)
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "‘": "'", "’": "'", "‚": "'"})
# a quoted group opens at a word's start and closes at a word's end (a `.` or `,` may
# follow); anything else is a word, apostrophes and stray quotes included
_WORDS = re.compile(
    r"""(?<!\S)"([^"]*)"(?=[.,]?(?:\s|$))|(?<!\S)'([^']*)'(?=[.,]?(?:\s|$))|(\S+)"""
)
# 2 h, 2 hours, 90min, 2hrs: a number and a unit, in the words people use
_UNIT_WORDS = {
    "s": "s",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "m": "m",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "d": "d",
    "day": "d",
    "days": "d",
    "w": "w",
    "wk": "w",
    "wks": "w",
    "week": "w",
    "weeks": "w",
}
_NUMBER = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_NUMBER_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)", re.ASCII | re.IGNORECASE)


class Word(str):
    """A word as :func:`tidy` left it, with what was typed (:attr:`typed`)."""

    typed: str

    def __new__(cls, tidied: str, typed: str) -> Word:
        word = super().__new__(cls, tidied)
        word.typed = typed
        return word

    def __reduce__(self) -> tuple[type[Word], tuple[str, str]]:  # copy, deepcopy, pickle
        return Word, (str(self), self.typed)


def normalize(text: str) -> str:
    """``text`` as it was typed: Slack's links and escapes undone, spaces and quotes plain."""
    text = _LABELLED_LINK.sub(_typed_link, text)
    text = _BARE_LINK.sub(r"\1", text)
    text = _BARE_MAILTO.sub(r"\1", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = re.sub(r"\s", " ", text)  # \s matches every Unicode space in a str pattern
    return text.translate(_QUOTES)


def _typed_link(m: re.Match[str]) -> str:
    target, label = m.group(1), m.group(2)
    return label if target.rstrip("/") == label.rstrip("/") else m.group(0)


def split_args(text: str) -> list[str]:
    """The words of a command line (see the module), without a leading ``/agent``
    (``/agent /agent status`` typed in Slack); empty ones dropped."""
    args: list[str] = []
    for m in _WORDS.finditer(normalize(text)):
        raw = next(g for g in m.groups() if g is not None)
        tidied = tidy(raw)
        if tidied:
            args.append(Word(tidied, raw))
    if args and args[0].lower() in ("/agent", "agent"):
        args = args[1:]
    return args


def tidy(word: str) -> str:
    """A word as copied from a reply: without the backticks or asterisks around it, a
    sentence's ``.`` or ``,`` after it, or a scope's trailing ``/``.

    Example:
        >>> [tidy(w) for w in ("`acme/alice/rss-bot`", "*day*.", "7,", "acme/alice/", "1.5h")]
        ['acme/alice/rss-bot', 'day', '7', 'acme/alice', '1.5h']
    """
    word = word.rstrip(".,").strip("`*").rstrip(".,")
    if "/" in word:
        word = word.rstrip("/")
    return word


def typed(words: list[str]) -> str:
    """The words as they were typed (commas and all), joined by spaces."""
    return " ".join(w.typed if isinstance(w, Word) else w for w in words)


def duration_word(word: str) -> str:
    """``90min`` → ``90m``, ``2hrs`` → ``2h``; any other word as it is."""
    m = _NUMBER_UNIT.fullmatch(word)
    if m and (unit := _UNIT_WORDS.get(m.group(2).lower())):
        return m.group(1) + unit
    return word


def join_duration(args: list[str], i: int) -> list[str]:
    """``args`` with the duration at ``i`` in one word: ``2 h`` / ``2 hours`` → ``2h``,
    ``90min`` → ``90m``. Nothing else changes."""
    if i >= len(args):
        return args
    if (
        i + 1 < len(args)
        and _NUMBER.fullmatch(args[i])
        and (unit := _UNIT_WORDS.get(args[i + 1].lower()))
    ):
        return [*args[:i], args[i] + unit, *args[i + 2 :]]
    return [*args[:i], duration_word(args[i]), *args[i + 1 :]]
