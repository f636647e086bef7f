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
Only the first :data:`SKETCH_CHARS` characters are read: a long text whose first
few thousand characters agree with another is the same text for this purpose.

Example:
    >>> sorted(f for f, _ in features("Order #48213 shipped at 10:32") if f[0] != "g")
    ['i:#48213', 'w:order', 'w:shipp']
"""

from __future__ import annotations

import html
import math
import re

__all__ = [
    "GRAM",
    "IDENTITY",
    "LARGE_QUANTITY",
    "NAME",
    "NUMBER",
    "NUMBER_STEP",
    "SKETCH_CHARS",
    "STOP_WORDS",
    "WORD",
    "features",
    "shows_anything",
]

WORD = 4
NAME = 8
GRAM = 1
IDENTITY = 12
NUMBER = 12
#: a counted number's bucket width: values within this factor mostly share features
NUMBER_STEP = 1.25
#: a whole number from here up counts as a quantity (below, it is a counter)
LARGE_QUANTITY = 1000
SKETCH_CHARS = 4000
_LOG_STEP = math.log(NUMBER_STEP)


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words that carry no content in a short text (negations and directions are kept).
STOP_WORDS = _wordset(
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
_NUMBER_WORDS = _wordset(
    """
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy
    eighty ninety hundred thousand dozen dozens hundreds thousands
    first second third fourth fifth sixth seventh eighth ninth tenth once twice
    """
)
_ID_NOUNS = _wordset(
    """
    order ticket invoice issue pr mr build flight case incident bug job run room gate
    version release episode chapter season no nr number id ref
    """
)
_RELATIVE_UNITS = _wordset(
    "s sec secs second seconds m min mins minute minutes h hr hrs hour hours "
    "d day days w wk week weeks mo month months y yr yrs year years"
)
_EDGE_PUNCT = "\"'`´‘’“”«»()[]{}<>.,;:!?¡¿…*_~|/\\=+-–—•·"
_SENTENCE_END = ".!?:;…|–—-"
_CONTRACTION = re.compile(r"(?:n['’]t|['’](?:ll|re|ve|d|m|s))$")
_IRREGULAR_NEGATIONS = {"won't": "will", "can't": "can", "shan't": "shall", "ain't": "is"}
_APOSTROPHES = re.compile(r"['’`´]")
_TIME = re.compile(
    r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:am|pm|z|utc)?"  # 03:14, 09:15:02.5, 10:30pm
    r"|\d{1,2}(?:am|pm)"  # 10am
    r"|\d{4}-\d{2}-\d{2}(?:t[\d:.]+(?:z|[+-]\d{2}:?\d{2})?)?"  # 2026-03-04, 2026-03-04t09:15z
    r"|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}"  # 04.03.2026, 3/4/26
)
_QUANTITY = re.compile(
    r"(?P<cur>[$€£¥])?[+-]?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:[.,](?P<frac>\d+))?"
    r"(?P<suffix>[a-z%°]{0,3}|°[a-z])"
)
_CURRENCIES = _wordset(
    "usd eur gbp chf jpy cny inr cad aud sek nok dkk btc eth dollar dollars euro euros "
    "pound pounds yen yuan"
)
_PERCENT_WORDS = _wordset("percent per-cent pct percentage")
_MAGNITUDES = {
    "k": 1e3,
    "thousand": 1e3,
    "mn": 1e6,
    "million": 1e6,
    "millions": 1e6,
    "bn": 1e9,
    "billion": 1e9,
    "billions": 1e9,
    "trillion": 1e12,
}
_HASH_ID = re.compile(r"#\d+")
_ALNUM = re.compile(r"[\w.-]*\d[\w.-]*")
_LETTER = re.compile(r"[^\W\d_]")
_ACRONYM = re.compile(r"(?:[^\W\d_]\.){2,}[^\W\d_]?")
_HOST = re.compile(r"[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)+")
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


def _case_is_a_hint(chunks: list[str]) -> bool:
    """True for sentence-case text, where a capital marks a name."""
    words = [c for c in chunks if c[:1].isalpha()]
    capitalised = sum(1 for c in words if c[0].isupper())
    return len(words) >= 3 and capitalised * 2 <= len(words)


class _Bag:
    """Collects the features of one text."""

    def __init__(self) -> None:
        self.out: list[tuple[str, int]] = []

    def identity(self, token: str) -> None:
        self.out.append(("i:" + token, IDENTITY))

    def word(self, word: str, *, name: bool = False) -> None:
        if word in STOP_WORDS or word in _NUMBER_WORDS or len(word) < 2:
            return
        stem = _stem(word)
        self.out.append(("w:" + stem, NAME if name else WORD))
        self.out.extend(("g:" + g, GRAM) for g in _trigrams(word))


# Bounded, and possessive where parts could match the same characters: an item of
# "<a href=href=href=..." must not make the engine try every split (it held the GIL 11 s).
_HREF = r"""<a\b[^<>]{0,500}?\bhref\s*=\s*["']?([^"'\s<>]{1,2000}+)[^<>]{0,500}+>"""
_ANCHOR = re.compile(_HREF + r"(.{0,2000}?)</a\s*>", re.IGNORECASE | re.DOTALL)
_OPEN_ANCHOR = re.compile(_HREF, re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]{0,500})?/?>")
_MARKDOWN_LINK = re.compile(
    r"!?\[([^\[\]]{0,500}+)\]\(([^\s()]{1,2000}+)(?:\s+\"[^\"]{0,500}+\")?\)"
)
_SCHEME = re.compile(r"^(?:https?://)?(?:www\.)?")


def _shown(text: str) -> str:
    """``text`` as a reader sees it: HTML tags and Markdown link syntax gone (links kept)."""
    if "<" in text:
        text = _TAG.sub(" ", _OPEN_ANCHOR.sub(r" \1 ", _ANCHOR.sub(_anchor, text)))
    if "](" in text:
        text = _MARKDOWN_LINK.sub(r"\1 \2", text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


_IMAGE = re.compile(r"<img\b[^<>]{0,500}?\bsrc\s*=\s*[\"']?[^\"'\s<>]", re.IGNORECASE)


def shows_anything(prepared: str) -> bool:
    """Whether a reader sees anything of a prepared text: a character once markup, Markdown
    link syntax, entities, control characters and spaces go, or an image.

    >>> shows_anything("<p>&nbsp;</p>"), shows_anything("<div><br/></div>")
    (False, False)
    >>> shows_anything("<img src='chart.png'>"), shows_anything("<b>ok</b>")
    (True, True)
    """
    head = prepared[:SKETCH_CHARS]
    if "<" in head and _IMAGE.search(head):
        return True
    shown = _shown(head) if ("<" in head or "](" in head or "&" in head) else head
    return any(c.isprintable() and not c.isspace() for c in shown) or len(prepared) > len(head)


def _anchor(match: re.Match[str]) -> str:
    """A link as shown: its text and its target (once, when the text is the target)."""
    href, shown = match.group(1), match.group(2).strip()
    if not shown or _link(shown.casefold()) == _link(href.casefold()):
        return f" {href} "
    return f" {shown} {href} "


def _link(url: str) -> str:
    """A link as an identity: no scheme, ``www.`` or trailing ``/``, and no fragment
    that only points into the page (one that routes, ``#/job/5``, ``#!/s/9``, or names a
    numbered post, ``#post-12``, names another item and stays).

    >>> _link("https://www.news.example/a/b/?id=7#comments")
    'news.example/a/b?id=7'
    >>> _link("https://jobs.example/#/job/17"), _link("https://x.example/live#post-3")
    ('jobs.example#/job/17', 'x.example/live#post-3')
    """
    rest, _, fragment = _SCHEME.sub("", url, count=1).partition("#")
    base, _, query = rest.partition("?")
    names = fragment[:1] in ("/", "!") or any(c.isdigit() for c in fragment)
    return base.rstrip("/") + (f"?{query}" if query else "") + (f"#{fragment}" if names else "")


def features(prepared: str, *, names: bool = True, legacy: bool = False) -> list[tuple[str, int]]:
    """The weighted features of a prepared text (:func:`~guards.validation.normalize.prepare`).

    Returns ``(feature, weight)`` pairs; a feature may repeat (a word said twice
    weighs twice). With ``names``, a capitalised word inside a sentence-case text
    weighs as a name; without, every word weighs the same in any case. ``legacy``: the
    features of versions before 2026-11-27 15:00 (markup read as written, a link as it
    was sent), to compare a new item with the items they remembered
    (:data:`~guards.validation.index.LEGACY_MINHASH`).
    """
    text = prepared[:SKETCH_CHARS]
    if not legacy and ("<" in text or "](" in text or "&" in text):
        text = _shown(text)
    chunks = text.split(" ")
    hint = names and _case_is_a_hint(chunks)
    bag = _Bag()
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
            if folded not in _NUMBER_WORDS:
                name = hint and not starts_sentence and raw[0].isupper()
                previous = _cached_words(folded, bag, name=name) or previous
                continue
        if raw.lower().startswith(("http://", "https://", "www.")):
            link = raw.casefold().rstrip(_EDGE_PUNCT)
            bag.identity(link if legacy else _link(link))
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
        if any(c.isdigit() for c in folded) or folded in _NUMBER_WORDS:
            if _relative_time(folded, chunks, position):
                skip_to = position + 1 + (_word_at(chunks, position + 2) == "ago")
            else:
                _number(folded, previous, _word_at(chunks, position + 1), bag)
            previous = ""
            continue
        if _ACRONYM.fullmatch(folded):
            folded = folded.replace(".", "")
        elif _HOST.fullmatch(folded):
            bag.identity(folded)
            previous = ""
            continue
        name = hint and not starts_sentence and chunk[0].isupper()
        previous = _cached_words(folded, bag, name=name) or previous
    if not bag.out and prepared:
        bag.out.append(("t:" + prepared.casefold(), IDENTITY))
    return bag.out


_WordFeatures = tuple[tuple[tuple[str, int], ...], str]
_CACHE_LIMIT = 100_000
_cache: dict[tuple[str, bool], _WordFeatures] = {}


def _cached_words(folded: str, bag: _Bag, *, name: bool) -> str:
    """:func:`_words`, memoised: the same words come back in text after text."""
    key = (folded, name)
    hit = _cache.get(key)
    if hit is None:
        one = _Bag()
        last = _words(folded, one, name=name)
        hit = (tuple(one.out), last)
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = hit
    bag.out.extend(hit[0])
    return hit[1]


def _words(folded: str, bag: _Bag, *, name: bool) -> str:
    """Add the words of one chunk; return the last word seen (for id nouns)."""
    negated = folded.endswith(("n't", "n’t"))
    folded = _IRREGULAR_NEGATIONS.get(folded.replace("’", "'"), folded)
    folded = _CONTRACTION.sub("", folded)
    folded = _APOSTROPHES.sub("", folded)
    parts = [p for p in _HYPHENS.split(folded) if p and _LETTER.search(p)]
    for part in parts:
        bag.word(part, name=name)
    if len(parts) > 1:
        bag.word("".join(parts))
    if negated:
        bag.word("not")
    return parts[-1] if parts else ""


def _word_at(chunks: list[str], position: int) -> str:
    return chunks[position].strip(_EDGE_PUNCT).casefold() if position < len(chunks) else ""


def _relative_time(folded: str, chunks: list[str], position: int) -> bool:
    """``5 minutes`` (ago), ``two hours``: a duration that moves on its own."""
    number = folded.isdigit() or folded in _NUMBER_WORDS
    return number and _word_at(chunks, position + 1) in _RELATIVE_UNITS


def _number(folded: str, previous: str, following: str, bag: _Bag) -> None:
    """A chunk holding a digit: masked (time, counter, number word), a quantity or an identity."""
    if folded in _NUMBER_WORDS or _TIME.fullmatch(folded):
        return
    if _HASH_ID.fullmatch(folded):
        bag.identity(folded)
        return
    quantity = _QUANTITY.fullmatch(folded)
    if quantity is not None:
        if previous in _ID_NOUNS and folded.isdigit():
            bag.identity(previous + " " + folded)
        else:
            _quantity(quantity, previous, following, bag)
        return
    if _ALNUM.fullmatch(folded) and _LETTER.search(folded):
        bag.identity(folded)
        return
    # digits glued to other symbols ("12°c/15", "3m12s"): keep only the words in it
    for word in re.split(r"[\W\d_]+", folded):
        bag.word(word)


def _quantity(match: re.Match[str], previous: str, following: str, bag: _Bag) -> None:
    """A number that carries the news becomes a feature; a small counter is masked.

    Money, percentages, decimals, magnitudes (``9 million``, ``10k``) and large
    quantities (``40,000``) count; a year and a small whole number (``3 new
    comments``, ``12 units left``, ``12°C``) do not. A counted value is put in
    two overlapping logarithmic buckets of width :data:`NUMBER_STEP`, so a value
    that barely moved (``$64,000`` → ``$64,500``, magnitude ``6.1`` → ``6.2``)
    keeps its features and one that moved far (``$50,000`` → ``$70,000``) does not.
    """
    whole, fraction, suffix = match["int"], match["frac"], match["suffix"]
    value = float(whole.replace(",", "") + ("." + fraction if fraction else ""))
    if match["cur"] or previous in _CURRENCIES or following in _CURRENCIES:
        kind = "$"
    elif suffix == "%" or following in _PERCENT_WORDS:
        kind = "%"
    else:
        kind = ""
        scale = _MAGNITUDES.get(suffix) or _MAGNITUDES.get(following)
        if scale is not None:
            value *= scale
        elif fraction is None and (
            value < LARGE_QUANTITY or ("," not in whole and 1900 <= value <= 2100)
        ):
            return  # a small counter or a year
    if value <= 0:
        bag.out.append((f"n:{kind}0", NUMBER))
        return
    if not math.isfinite(value):  # hundreds of digits (runaway output): one huge value
        bag.out.append((f"n:{kind}inf", NUMBER))
        return
    position = math.log(value) / _LOG_STEP
    half = NUMBER // 2
    bag.out.append((f"n:{kind}{math.floor(position)}", half))
    bag.out.append((f"n:{kind}~{math.floor(position + 0.5)}", NUMBER - half))
