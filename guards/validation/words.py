"""The words of a text as features: content words lightly stemmed, with their character
trigrams, stop words and number words dropped, contractions and hyphens undone
(:func:`guards.validation.features.features`).
"""

from __future__ import annotations

import re

__all__ = [
    "GRAM",
    "IDENTITY",
    "LETTER",
    "NAME",
    "NUMBER_WORDS",
    "STOP_WORDS",
    "WORD",
    "Bag",
    "cached_words",
    "wordset",
]

WORD = 4
NAME = 8
GRAM = 1
IDENTITY = 12


def wordset(text: str) -> frozenset[str]:
    """The words of ``text``, split on white space."""
    return frozenset(text.split())


#: Words that carry no content in a short text (negations and directions are kept).
STOP_WORDS = wordset(
    """
    a an the and or but nor so yet of to in on at by for from with as into onto about
    is are was were be been being am do does did has have had having will would shall
    should can could may might must it its this that these those there here
    i me my we us our you your he him his she her they them their who whom which what
    than then just also very too again still only even more most much many some any
    each every all both such own same via per
    breaking update updated exclusive opinion analysis new
    """
)
NUMBER_WORDS = wordset(
    """
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy
    eighty ninety hundred thousand dozen dozens hundreds thousands
    first second third fourth fifth sixth seventh eighth ninth tenth once twice
    """
)
_CONTRACTION = re.compile(r"(?:n['’]t|['’](?:ll|re|ve|d|m|s))$")
_IRREGULAR_NEGATIONS = {"won't": "will", "can't": "can", "shan't": "shall", "ain't": "is"}
_APOSTROPHES = re.compile(r"['’`´]")
LETTER = re.compile(r"[^\W\d_]")
_HYPHENS = re.compile(r"[-–—_/]+")
_SUFFIXES = ("ing", "ed", "es", "s")


def _trigrams(word: str) -> list[str]:
    padded = f"<{word}>"
    return [padded[i : i + 3] for i in range(len(padded) - 2)]


def _stem(word: str) -> str:
    """A crude suffix strip: only needs to treat both sides of a pair alike."""
    if word.endswith("ss"):
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


class Bag:
    """Collects the features of one text."""

    def __init__(self) -> None:
        self.out: list[tuple[str, int]] = []

    def identity(self, token: str) -> None:
        self.out.append(("i:" + token, IDENTITY))

    def word(self, word: str, *, name: bool = False) -> None:
        if word in STOP_WORDS or word in NUMBER_WORDS or len(word) < 2:
            return
        stem = _stem(word)
        self.out.append(("w:" + stem, NAME if name else WORD))
        self.out.extend(("g:" + g, GRAM) for g in _trigrams(word))


_WordFeatures = tuple[tuple[tuple[str, int], ...], str]
_CACHE_LIMIT = 100_000
_cache: dict[tuple[str, bool], _WordFeatures] = {}


def cached_words(folded: str, bag: Bag, *, name: bool) -> str:
    """:func:`_words`, memoised: the same words come back in text after text."""
    key = (folded, name)
    hit = _cache.get(key)
    if hit is None:
        one = Bag()
        last = _words(folded, one, name=name)
        hit = (tuple(one.out), last)
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = hit
    bag.out.extend(hit[0])
    return hit[1]


def _words(folded: str, bag: Bag, *, name: bool) -> str:
    """Add the words of one chunk; return the last word seen (for id nouns)."""
    negated = folded.endswith(("n't", "n’t"))
    folded = _IRREGULAR_NEGATIONS.get(folded.replace("’", "'"), folded)
    folded = _CONTRACTION.sub("", folded)
    folded = _APOSTROPHES.sub("", folded)
    parts = [p for p in _HYPHENS.split(folded) if p and LETTER.search(p)]
    for part in parts:
        bag.word(part, name=name)
    if len(parts) > 1:
        bag.word("".join(parts))
    if negated:
        bag.word("not")
    return parts[-1] if parts else ""
