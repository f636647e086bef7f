"""Features of a text for the near-duplicate sketches.

Short texts (headlines, posts, alert messages) are re-published with trivial
changes, and the sketch must not see those; the same template with another
entity or another id is new output, and the sketch must see that. So a text
becomes a bag of weighted features:

* **words** (weight :data:`WORD`): content words, lightly stemmed (``delivers`` =
  ``delivered``), with stop words and boilerplate (``breaking``, ``updated``,
  ``via``) dropped, contractions expanded (``couldn't`` keeps its ``not``), and
  hyphenated words both split and joined (``sign-up`` = ``sign up`` ≈ ``signup``).
  A bag, so word order does not matter;
* **names** (weight :data:`NAME`): in sentence-case text, a capitalised word that
  does not start a sentence (``Berlin``, ``Lakers``) or an acronym (``CPU``) is
  probably a name, and two texts about different names are different output.
  Title Case and ALL CAPS texts carry no such hint and get plain words;
* **word trigrams** (weight :data:`GRAM`): the character 3-grams of each content
  word, so a typo (``goverment``) moves the sketch a little, not a word's worth;
* **identities** (weight :data:`IDENTITY`): tokens that name one thing: links
  (after tracking parameters are gone, without their scheme, ``www.``, trailing ``/``
  or a ``#fragment`` that only points into the page: ``http://www.x.example/a/#top`` is
  ``x.example/a``), host names,
  ``#123`` ids, codes mixing letters and digits (``INC-4821``, ``db-01``, ``v2.3.1``)
  and a number right after an id noun (``order 48213``). Two texts that differ in
  one are different output;
* **numbers that carry the news** (weight :data:`NUMBER`): money (``$70,000``,
  ``20 EUR``), percentages, decimals (``magnitude 6.1``), magnitudes (``9 million``,
  ``10k``) and quantities of :data:`LARGE_QUANTITY` or more (``40,000 homes``), each
  in two overlapping logarithmic buckets: a value that barely moved (``$64,000`` →
  ``$64,500``) keeps its features, one that moved far (``$50,000`` → ``$70,000``)
  does not. Near a bucket edge a small move costs half the number's weight;
* **masked**: times, dates, years, relative times (``5 minutes ago``), small whole
  numbers (``3 new comments``, ``12 units left``, ``12°C``) and number words are
  dropped, so a changed timestamp or counter does not count as a change.

Markup is read as the text it shows: HTML tags go (a link's ``href`` stays, as a
link), entities are decoded (``&amp;`` is ``&``), and a Markdown link ``[title](url)``
is its title and its link, so the same post rendered as HTML, Markdown or plain text
has one bag (exact duplicates still compare the text as sent).

A text with no feature left (``12:30``, an emoji, ``ok``) gets its whole
normalised text as its only feature: it can then only match an identical text.
At most :data:`SKETCH_CHARS` characters of what a reader sees are read: a longer text
is read as the passages of it its content picks (:func:`_passages`), so two long texts
compare on the whole of them (two articles behind one long header are not alike, an
article with a paragraph added still is), for the cost of a short one. The markup is
read first (up to :data:`MARKUP_CHARS` characters), so a page's style sheet or
navigation does not take the place of its text.

Example:
    >>> sorted(f for f, _ in features("Order #48213 shipped at 10:32") if f[0] != "g")
    ['i:#48213', 'w:order', 'w:shipp']
"""

from __future__ import annotations

import re
import zlib

from guards.validation.markup import IMAGE, as_shown, link_identity
from guards.validation.quantities import number_features
from guards.validation.words import (
    IDENTITY,
    NUMBER_WORDS,
    Bag,
    cached_words,
    wordset,
)

__all__ = ["MARKUP_CHARS", "PASSAGE_WORDS", "SKETCH_CHARS", "features", "shows_anything"]

SKETCH_CHARS = 4000
PASSAGE_WORDS = 16  # a longer text is read in passages of about this many words
MARKUP_CHARS = 20_000  # the most of a text whose markup is read (max_item_chars' default)
_RELATIVE_UNITS = wordset(
    "s sec secs second seconds m min mins minute minutes h hr hrs hour hours "
    "d day days w wk week weeks mo month months y yr yrs year years"
)
_EDGE_PUNCT = "\"'`´‘’“”«»()[]{}<>.,;:!?¡¿…*_~|/\\=+-–—•·"
_SENTENCE_END = ".!?:;…|–—-"
_ACRONYM = re.compile(r"(?:[^\W\d_]\.){2,}[^\W\d_]?")
_HOST = re.compile(r"[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)+")


def _case_is_a_hint(chunks: list[str]) -> bool:
    """True for sentence-case text, where a capital marks a name."""
    words = [c for c in chunks if c[:1].isalpha()]
    capitalised = sum(1 for c in words if c[0].isupper())
    return len(words) >= 3 and capitalised * 2 <= len(words)


def shows_anything(prepared: str) -> bool:
    """Whether a reader sees anything of a prepared text: a character once markup, Markdown
    link syntax, entities, control characters and spaces go, or an image.

    >>> shows_anything("<p>&nbsp;</p>"), shows_anything("<div><br/></div>")
    (False, False)
    >>> shows_anything("<img src='chart.png'>"), shows_anything("<b>ok</b>")
    (True, True)
    """
    head = prepared[:SKETCH_CHARS]
    if "<" in head and IMAGE.search(head):
        return True
    shown = as_shown(head) if ("<" in head or "](" in head or "&" in head) else head
    return any(c.isprintable() and not c.isspace() for c in shown) or len(prepared) > len(head)


def _passages(shown: str) -> str:
    """``shown`` when it is short; else passages of it chosen by their content: the text
    is cut into passages where a word's hash says so (about :data:`PASSAGE_WORDS` words
    each, the same cuts whatever comes before or after), and the passages with the
    smallest hashes are read, in their order, up to :data:`SKETCH_CHARS` characters.
    Like a MinHash of passages: two long texts share about the share of passages they
    share. A paragraph added or cut changes a few passages, not all of them (recheck22
    N1: passages at even places moved with the length), and two articles that share only
    an opening share only its passages.

    >>> _passages("a b c")
    'a b c'
    """
    if len(shown) <= SKETCH_CHARS:
        return shown
    passages: list[str] = []
    words: list[str] = []
    for word in shown.split(" "):
        words.append(word)
        if (
            zlib.crc32(word.encode("utf-8", "surrogatepass")) % PASSAGE_WORDS == 0
            or len(words) >= 4 * PASSAGE_WORDS
        ):
            passages.append(" ".join(words))
            words = []
    if words:
        passages.append(" ".join(words))
    ranked = sorted(
        range(len(passages)),
        key=lambda i: (zlib.crc32(passages[i].encode("utf-8", "surrogatepass")), i),
    )
    chosen: list[int] = []
    read = 0
    for i in ranked:
        if read >= SKETCH_CHARS:
            break
        chosen.append(i)
        read += len(passages[i]) + 3
    return " … ".join(passages[i] for i in sorted(chosen))


def features(prepared: str, *, names: bool = True, legacy: bool = False) -> list[tuple[str, int]]:
    """The weighted features of a prepared text (:func:`~guards.validation.normalize.prepare`).

    Returns ``(feature, weight)`` pairs; a feature may repeat (a word said twice
    weighs twice). With ``names``, a capitalised word inside a sentence-case text
    weighs as a name; without, every word weighs the same in any case. ``legacy``: the
    features of versions before 2026-11-27 15:00 (markup read as written, a link as it
    was sent), to compare a new item with the items they remembered
    (:data:`~guards.validation.sketchers.LEGACY_MINHASH`).
    """
    if legacy:  # (read as written, the first SKETCH_CHARS)
        text = prepared[:SKETCH_CHARS]
    else:
        text = prepared[:MARKUP_CHARS]
        if "<" in text or "](" in text or "&" in text:
            text = as_shown(text)
        text = _passages(text)
    chunks = text.split(" ")
    hint = names and _case_is_a_hint(chunks)
    bag = Bag()
    previous = ""
    sentence_start = True
    skip_to = -1
    for position, raw in enumerate(chunks):
        if position <= skip_to:
            continue
        starts_sentence = sentence_start
        sentence_start = raw[-1:] in _SENTENCE_END if raw else sentence_start
        if raw.isalpha():  # the common case: a plain word
            folded = raw.casefold()
            if folded not in NUMBER_WORDS:
                name = hint and not starts_sentence and raw[0].isupper()
                previous = cached_words(folded, bag, name=name) or previous
                continue
        if raw.lower().startswith(("http://", "https://", "www.")):
            link = raw.casefold().rstrip(_EDGE_PUNCT)
            bag.identity(link if legacy else link_identity(link))
            previous = ""
            continue
        chunk = raw.strip(_EDGE_PUNCT)
        if not chunk:
            continue
        folded = chunk.casefold()
        if folded[0] == "#" and len(folded) > 1 and not folded[1:].isdigit():
            chunk, folded = chunk[1:], folded[1:]  # a hashtag is its word
        if folded[0] == "@" and len(folded) > 1:
            bag.identity(folded)
            previous = ""
            continue
        if any(c.isdigit() for c in folded) or folded in NUMBER_WORDS:
            if _relative_time(folded, chunks, position):
                skip_to = position + 1 + (_word_at(chunks, position + 2) == "ago")
            else:
                number_features(folded, previous, _word_at(chunks, position + 1), bag)
            previous = ""
            continue
        if _ACRONYM.fullmatch(folded):
            folded = folded.replace(".", "")
        elif _HOST.fullmatch(folded):
            bag.identity(folded)
            previous = ""
            continue
        name = hint and not starts_sentence and chunk[0].isupper()
        previous = cached_words(folded, bag, name=name) or previous
    if not bag.out and prepared:
        bag.out.append(("t:" + prepared.casefold(), IDENTITY))
    return bag.out


def _word_at(chunks: list[str], position: int) -> str:
    return chunks[position].strip(_EDGE_PUNCT).casefold() if position < len(chunks) else ""


def _relative_time(folded: str, chunks: list[str], position: int) -> bool:
    """``5 minutes`` (ago), ``two hours``: a duration that moves on its own."""
    number = folded.isdigit() or folded in NUMBER_WORDS
    return number and _word_at(chunks, position + 1) in _RELATIVE_UNITS
