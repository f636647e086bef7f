"""The numbers of a text as features: times, dates, years and small counters masked, ids
kept as identities, and quantities that carry the news (money, percentages, magnitudes)
put in overlapping logarithmic buckets (:func:`guards.validation.features.features`).
"""

from __future__ import annotations

import math
import re

from guards.validation.words import LETTER, NUMBER_WORDS, Bag, wordset

__all__ = ["LARGE_QUANTITY", "NUMBER", "NUMBER_STEP", "number_features"]

NUMBER = 12
#: a counted number's bucket width: values within this factor mostly share features
NUMBER_STEP = 1.25
#: a whole number from here up counts as a quantity (below, it is a counter)
LARGE_QUANTITY = 1000
_LOG_STEP = math.log(NUMBER_STEP)
_ID_NOUNS = wordset(
    """
    order ticket invoice issue pr mr build flight case incident bug job run room gate
    version release episode chapter season no nr number id ref
    """
)
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
_CURRENCIES = wordset(
    "usd eur gbp chf jpy cny inr cad aud sek nok dkk btc eth dollar dollars euro euros "
    "pound pounds yen yuan"
)
_PERCENT_WORDS = wordset("percent per-cent pct percentage")
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


def number_features(folded: str, previous: str, following: str, bag: Bag) -> None:
    """A chunk holding a digit: masked (time, counter, number word), a quantity or an identity."""
    if folded in NUMBER_WORDS or _TIME.fullmatch(folded):
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
    if _ALNUM.fullmatch(folded) and LETTER.search(folded):
        bag.identity(folded)
        return
    # digits glued to other symbols ("12°c/15", "3m12s"): keep only the words in it
    for word in re.split(r"[\W\d_]+", folded):
        bag.word(word)


def _quantity(match: re.Match[str], previous: str, following: str, bag: Bag) -> None:
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
