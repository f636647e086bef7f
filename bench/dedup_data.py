"""The dedup benchmark's data: N distinct synthetic headlines, made and sketched on
several processes, held in flat arrays (no per-item objects for the garbage collector).

Example:
    >>> make = Headlines(seed=1)
    >>> make() != make()
    True
"""

from __future__ import annotations

import itertools
import random
from array import array
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from guards.config import Validation
from guards.validation.engine import sketcher_for
from guards.validation.features import features
from guards.validation.normalize import exact_fingerprint, prepare

__all__ = ["Dataset", "Headlines", "generate"]

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


@dataclass
class Dataset:
    """The remembered items, in flat arrays (no per-item objects for the collector)."""

    width: int
    exacts: array[int] = field(default_factory=lambda: array("q"))
    sketches: bytearray = field(default_factory=bytearray)
    samples: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.exacts)

    def rows(self, at: float, kind: str) -> Iterator[tuple[float, int, str, bytes]]:
        w = self.width
        for i, exact in enumerate(self.exacts):
            yield at, exact, kind, bytes(self.sketches[i * w : (i + 1) * w])


def _sketch_chunk(args: tuple[int, int, Validation]) -> tuple[array[int], bytes, list[str]]:
    """Worker: generate and sketch one chunk; its exact fingerprints, sketches and a sample."""
    chunk, size, config = args
    sketcher = sketcher_for(config)
    make = Headlines(seed=chunk)
    exacts = array("q")
    sketches = bytearray()
    sample = []
    for i in range(size):
        text = make()
        prepared = prepare(text)
        exacts.append(exact_fingerprint(prepared.casefold()))
        sketches += sketcher.sketch(features(prepared, names=sketcher.names))
        if i < SAMPLE_PER_CHUNK:
            sample.append(text)
    return exacts, bytes(sketches), sample


def generate(n: int, config: Validation, workers: int) -> Dataset:
    data = Dataset(width=sketcher_for(config).width)
    chunks = [(c, min(CHUNK, n - c * CHUNK), config) for c in range(-(-n // CHUNK))]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for exacts, sketches, sample in pool.map(_sketch_chunk, chunks):
            data.exacts.extend(exacts)
            data.sketches += sketches
            data.samples.extend(sample)
    return data
