"""The dedup benchmark's data: N distinct synthetic headlines (or letters of one
template), made and sketched on several processes, held in flat arrays (no per-item
objects for the garbage collector) with what the service stores of each: its exact
fingerprint, sketch, preview and the text its features are read from.

Example:
    >>> make = Headlines(seed=1)
    >>> make() != make()
    True
    >>> letters = Letters()
    >>> len(letters(7)) > 2000, letters(7) == letters(7), letters(7) != letters(8)
    (True, True, True)
"""

from __future__ import annotations

import itertools
import random
from array import array
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from guards.config import Validation
from guards.validation.bags import stored
from guards.validation.engine import sketcher_for
from guards.validation.features import features
from guards.validation.normalize import casefold, exact_fingerprint, prepare
from guards.validation.sketchers import Sketcher
from guards.validation.types import ITEM_PREVIEW_CHARS, preview

__all__ = ["Dataset", "Headlines", "Letters", "generate"]

CHUNK = 50_000
SAMPLE_PER_CHUNK = 400
# English letter frequencies: made-up words then share character trigrams about as much
# as real headlines do (the pairwise similarity of unrelated texts was calibrated
# against tests/data/near_duplicates.tsv: median 0.007 vs 0.009, 99th percentile 0.08 vs 0.11)
_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
_FREQUENCIES = [
    12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8,
    2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.15, 0.15, 0.1, 0.07,
]  # fmt: skip
_LENGTHS = [3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11]
_TAILS = ["", "", "", ".", "!", "?", " today", " again"]


class Headlines:
    """Deterministic synthetic headlines over a Zipf vocabulary of made-up words."""

    def __init__(self, seed: int, vocabulary: int = 40_000) -> None:
        rng = random.Random(1234)  # the same vocabulary everywhere
        words: set[str] = set()
        while len(words) < vocabulary:
            word = "".join(rng.choices(_LETTERS, weights=_FREQUENCIES, k=rng.choice(_LENGTHS)))
            if any(vowel in word for vowel in "aeiou"):
                words.add(word)
        self.words = sorted(words)
        rng.shuffle(self.words)
        # Zipf over content words: ranks 1-20 would be stop words, so start at 21
        self.cum = list(itertools.accumulate(1 / (i + 21) for i in range(vocabulary)))
        self.rng = random.Random(seed)

    def __call__(self) -> str:
        rng = self.rng
        words = rng.choices(self.words, cum_weights=self.cum, k=rng.randint(6, 14))
        words[0] = words[0].capitalize()
        if rng.random() < 0.3:
            words.insert(rng.randrange(1, len(words)), str(rng.randint(2, 999)))
        return " ".join(words) + rng.choice(_TAILS)


class Letters:
    """About 2 KB of text from one template: letter ``n`` names its own order number and
    customer, the rest is the same (a templated stream: order confirmations, job ads)."""

    def __init__(self, chars: int = 2000) -> None:
        make = Headlines(seed=77)
        sentences: list[str] = []
        while sum(len(s) + 1 for s in sentences) < chars:
            sentences.append(make().rstrip(".!?") + ".")
        half = len(sentences) // 2
        self.head, self.tail = " ".join(sentences[:half]), " ".join(sentences[half:])
        self.names = [word.capitalize() for word in make.words]

    def __call__(self, n: int) -> str:
        name = self.names[n * 7919 % len(self.names)]  # 7919 is prime: a name per letter
        order = 100_000 + n
        return (
            f"Dear {name}, your order #{order} is confirmed. {self.head} "
            f"Reference ORD-{order} for {name}. {self.tail}"
        )


@dataclass
class Chunk:
    """What a worker made: per item its fingerprint, sketch, stored text and preview."""

    exacts: array[int] = field(default_factory=lambda: array("q"))
    sketches: bytearray = field(default_factory=bytearray)
    texts: bytearray = field(default_factory=bytearray)  # stored forms, end to end
    text_ends: array[int] = field(default_factory=lambda: array("q"))
    previews: bytearray = field(default_factory=bytearray)  # UTF-8, end to end
    preview_ends: array[int] = field(default_factory=lambda: array("q"))
    samples: list[str] = field(default_factory=list)

    def add(self, text: str, sketcher: Sketcher) -> None:
        """One item as the service remembers it (guards/validation/engine.py)."""
        prepared = prepare(text)
        self.exacts.append(exact_fingerprint(casefold(prepared)))
        self.sketches += sketcher.sketch(features(prepared, names=sketcher.names))
        self.texts += stored(prepared)
        self.text_ends.append(len(self.texts))
        self.previews += preview(text, ITEM_PREVIEW_CHARS).encode()
        self.preview_ends.append(len(self.previews))


@dataclass
class Dataset(Chunk):
    """The remembered items, in flat arrays (no per-item objects for the collector)."""

    width: int = 0

    def __len__(self) -> int:
        return len(self.exacts)

    def extend(self, chunk: Chunk) -> None:
        texts, previews = len(self.texts), len(self.previews)
        self.exacts.extend(chunk.exacts)
        self.sketches += chunk.sketches
        self.texts += chunk.texts
        self.text_ends.extend(texts + end for end in chunk.text_ends)
        self.previews += chunk.previews
        self.preview_ends.extend(previews + end for end in chunk.preview_ends)
        self.samples.extend(chunk.samples)

    def rows(self, at: float, kind: str) -> Iterator[tuple[float, int, str, bytes, bytes, str]]:
        """``(at, exact, kind, sketch, feature_text, preview)`` per item."""
        w, texts, previews = self.width, self.texts, self.previews
        text_at = preview_at = 0
        for i, exact in enumerate(self.exacts):
            text_end, preview_end = self.text_ends[i], self.preview_ends[i]
            yield (
                at,
                exact,
                kind,
                bytes(self.sketches[i * w : (i + 1) * w]),
                bytes(texts[text_at:text_end]),
                previews[preview_at:preview_end].decode(),
            )
            text_at, preview_at = text_end, preview_end


def _sketch_chunk(args: tuple[str, int, int, Validation]) -> Chunk:
    """Worker: generate and sketch one chunk of headlines (``chunk`` is its seed; with a
    sample) or of letters (``chunk`` is the first letter's number)."""
    what, chunk, size, config = args
    sketcher = sketcher_for(config)
    out = Chunk()
    if what == "letters":
        letters = Letters()
        for n in range(chunk, chunk + size):
            out.add(letters(n), sketcher)
        return out
    make = Headlines(seed=chunk)
    for i in range(size):
        text = make()
        out.add(text, sketcher)
        if i < SAMPLE_PER_CHUNK:
            out.samples.append(text)
    return out


def generate(n: int, config: Validation, workers: int, *, what: str = "headlines") -> Dataset:
    """``n`` headlines (or, ``what="letters"``, letters 0 to n-1), made on ``workers``
    processes."""
    data = Dataset(width=sketcher_for(config).width)
    size = CHUNK if what == "headlines" else -(-n // workers)
    step = 1 if what == "headlines" else size  # (a chunk of headlines: its seed)
    chunks = [(what, c * step, min(size, n - c * size), config) for c in range(-(-n // size))]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for chunk in pool.map(_sketch_chunk, chunks):
            data.extend(chunk)
    return data
