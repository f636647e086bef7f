"""Normalisation: the text two items must share to count as the same output.

Applied in order:

1. Unicode NFKC (full-width letters, ligatures and composed accents become one form);
2. invisible format characters (zero-width space, joiners, BOM) are dropped;
3. URL tracking parameters (``utm_*``, ``fbclid``, ``gclid``, ...) are removed from
   every ``http(s)://`` link, keeping the other parameters in their order;
4. in a text with Latin letters, the Cyrillic and Greek letters drawn like Latin ones
   (``а`` U+0430, ``ο`` U+03BF, ``Р`` U+0420, ...) become those Latin letters: a re-post
   with look-alikes swapped in shows the same text, so it is the same text;
5. case-folding (``ß`` and ``SS`` compare equal);
6. runs of white space collapse to one space, and the ends are stripped.

Two items are *exact duplicates* when their normalised texts are equal;
:func:`exact_fingerprint` is the 64-bit hash of that text that the store keeps.

Example:
    >>> normalize("  Read  THIS: https://x.example/a?utm_source=tw&id=7&fbclid=Q  ")
    'read this: https://x.example/a?id=7'
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = [
    "TRACKING_PARAMS",
    "casefold",
    "exact_fingerprint",
    "is_tracking_param",
    "normalize",
    "strip_tracking",
]

#: Query parameters that only say where a click came from (exact names, case-insensitive).
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "igshid",
        "igsh",
        "mc_cid",
        "mc_eid",
        "mkt_tok",
        "_hsenc",
        "_hsmi",
        "__hssc",
        "__hstc",
        "__hsfp",
        "hsctatracking",
        "oly_anon_id",
        "oly_enc_id",
        "rb_clickid",
        "s_cid",
        "vero_conv",
        "vero_id",
        "wickedid",
        "ref_src",
        "ref_url",
        "_ga",
        "_gl",
        "si",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")

_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}»”’'\""
_SPACE = re.compile(r"\s+")


def is_tracking_param(name: str) -> bool:
    """True for a query parameter name that only tracks the click."""
    key = name.casefold()
    return key in TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES)


def strip_tracking(url: str) -> str:
    """Remove tracking parameters from one URL; other parameters keep their order and spelling.

    >>> strip_tracking("https://a.example/p?utm_medium=x&page=2#top")
    'https://a.example/p?page=2#top'
    """
    base, sep, rest = url.partition("?")
    if not sep:
        return url
    query, hash_sign, fragment = rest.partition("#")
    kept = [p for p in query.split("&") if p and not is_tracking_param(p.partition("=")[0])]
    out = base + ("?" + "&".join(kept) if kept else "")
    return out + hash_sign + fragment


def _strip_url(match: re.Match[str]) -> str:
    url = match.group(0)
    trailing = len(url) - len(url.rstrip(_URL_TRAILING))
    tail = url[len(url) - trailing :] if trailing else ""
    return strip_tracking(url[: len(url) - trailing]) + tail


# Cyrillic and Greek letters a reader cannot tell from a Latin one (after UTS #39's
# confusables, the ones drawn alike in common fonts), and that Latin letter: only letters
# whose capital and small forms both look like the Latin letter's, so that case-folding
# before or after the mapping gives one text (review22 M1: В is B, but в is no b).
_LOOK_ALIKES = str.maketrans(
    "аеорсхуіјѕАЕОРСХУІЈЅοιρΟΙΡ",
    "aeopcxyijsAEOPCXYIJSoipOIP",
)
_OTHER_SCRIPT = re.compile(r"[\u0370-\u03ff\u0400-\u052f]")
_LATIN = re.compile(r"[A-Za-z]")
_WORD_SPLIT = re.compile(r"(\s+)")  # words and the spaces between them, kept


def _latin_look_alikes(text: str) -> str:
    """``text`` with its Cyrillic and Greek look-alikes of Latin letters as those letters:
    in a word that mixes them with Latin letters (``Quаrterly``), and in every word when
    the text is mostly Latin words (a mixed word counts as Latin: a spoofed one). A
    Russian or Greek text keeps its letters, a link or a brand in it too (audit22 upgrade
    1: a Russian post with a link was mapped, its key changed at the upgrade)."""
    if text.isascii() or not _OTHER_SCRIPT.search(text):
        return text
    words = _WORD_SPLIT.split(text)
    latin = other = 0
    kinds = []
    for word in words:
        has_latin = _LATIN.search(word) is not None
        has_other = _OTHER_SCRIPT.search(word) is not None
        kinds.append((has_latin, has_other))
        latin += has_latin
        other += has_other and not has_latin
    if not latin:
        return text
    mostly_latin = latin > other
    return "".join(
        word.translate(_LOOK_ALIKES) if has_other and (has_latin or mostly_latin) else word
        for word, (has_latin, has_other) in zip(words, kinds, strict=True)
    )


def _drop_format_chars(text: str) -> str:
    if text.isascii():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def prepare(text: str) -> str:
    """Every normalisation step but case-folding (the sketch reads case as a hint).

    >>> prepare("Ｃafe\\u0301\\u200b  OPEN")
    'Café OPEN'
    """
    text = unicodedata.normalize("NFKC", text)
    text = _latin_look_alikes(_drop_format_chars(text))
    if "://" in text:
        text = _URL.sub(_strip_url, text)
    return _SPACE.sub(" ", text).strip()


def normalize(text: str) -> str:
    """The normalised form of an item (see the module docstring for the steps).

    >>> normalize("Ｃafe\\u0301\\u200b  OPEN")
    'café open'
    """
    return casefold(prepare(text))


def casefold(prepared: str) -> str:
    """A prepared text case-folded: its normalised form (the text the store keeps).
    Case-folding may make a Greek letter (``ͅ`` is ``ι``): it is mapped as well."""
    return _latin_look_alikes(prepared.casefold())


def exact_fingerprint(normalized: str) -> int:
    """A signed 64-bit hash of a normalised text (SQLite's INTEGER range).

    >>> exact_fingerprint("a") == exact_fingerprint("a")
    True
    """
    digest = hashlib.blake2b(normalized.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
