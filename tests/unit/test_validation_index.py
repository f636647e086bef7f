"""The banded in-memory index: finds what a full scan finds, touching far fewer items."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guards.validation.index import StreamIndex
from guards.validation.sketchers import MinHashSketcher, SimHashSketcher


def flip(value: int, bits: list[int]) -> int:
    for b in bits:
        value ^= 1 << b
    return value


def as_bytes(value: int) -> bytes:
    return value.to_bytes(8, "big")


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    distance=st.integers(0, 7),
    flips=st.lists(st.integers(0, 63), max_size=9, unique=True),
)
def test_simhash_lookup_finds_exactly_what_a_full_scan_finds(seed, distance, flips):
    rng = random.Random(seed)
    sketcher = SimHashSketcher(max_distance=distance)
    index = StreamIndex(sketcher)
    stored = [rng.getrandbits(64) for _ in range(300)]
    target = stored[rng.randrange(len(stored))]
    stored.append(flip(target, flips))  # one stored sketch near the query
    for rowid, value in enumerate(stored, start=1):
        index.add(as_bytes(value), rowid=rowid, at=float(rowid))
    index.commit()
    found = index.best(as_bytes(target), not_before=0.0)
    within = [
        (1 - (v ^ target).bit_count() / 64, rowid)
        for rowid, v in enumerate(stored, start=1)
        if (v ^ target).bit_count() <= distance
    ]
    if not within:
        assert found is None
    else:
        similarity, rowid = max(within)
        assert found is not None
        assert (found[0], found[2]) == (rowid, round(similarity, 3))


def test_simhash_probes_grow_with_the_distance_but_stay_bounded():
    for distance, probes in [(3, 1), (7, 17), (11, 137)]:
        bands = SimHashSketcher(max_distance=distance).probes(bytes(8))
        assert len(bands) == 4
        assert all(len(buckets) == probes for buckets, _ in bands)


def test_a_lookup_touches_only_the_items_sharing_a_band():
    rng = random.Random(7)
    sketcher = SimHashSketcher(max_distance=3)
    index = StreamIndex(sketcher)
    for rowid in range(1, 20_001):
        index.add(as_bytes(rng.getrandbits(64)), rowid=rowid, at=0.0)
    query = as_bytes(rng.getrandbits(64))
    touched = sum(1 for _ in index.candidates(query))
    assert touched < 50  # about 4 blocks x 20,000 / 65,536 on average, not 20,000


def minhash_sketch(rng: random.Random) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(MinHashSketcher.width))


def test_minhash_lookup_finds_the_same_and_the_near_not_the_far():
    rng = random.Random(3)
    sketcher = MinHashSketcher(threshold=0.7)
    index = StreamIndex(sketcher)
    base = minhash_sketch(rng)
    near = bytearray(base)
    for i in range(0, 32, 5):  # 7 of 32 bins differ (~0.78); band 4 (bins 16-19) intact
        near[i] ^= 0xFF
    far = minhash_sketch(rng)
    index.add(base, rowid=1, at=10.0)
    index.add(far, rowid=2, at=10.0)
    index.commit()
    assert index.best(base, not_before=0.0) == (1, 10.0, 1.0)
    hit = index.best(bytes(near), not_before=0.0)
    assert hit is not None
    assert hit[0] == 1
    assert 0.7 <= hit[2] < 1.0
    assert index.best(minhash_sketch(rng), not_before=0.0) is None


def test_minhash_bucket_collisions_are_weeded_out():
    sketcher = MinHashSketcher(threshold=0.7)
    index = StreamIndex(sketcher)
    rng = random.Random(5)
    a = minhash_sketch(rng)
    by_bucket = {}
    while True:  # another sketch whose band 0 falls in the same bucket with another tag
        b = minhash_sketch(rng)
        if sketcher.keys(b)[0][0] == sketcher.keys(a)[0][0]:
            break
        by_bucket[sketcher.keys(b)[0][0]] = b
    assert sketcher.keys(a)[0][1] != sketcher.keys(b)[0][1]
    index.add(a, rowid=1, at=0.0)
    assert index.candidates(b) == []
    assert index.candidates(a) == [0]


def test_small_streams_keep_dict_heads_and_big_ones_flat_arrays():
    sketcher = SimHashSketcher(max_distance=3)
    index = StreamIndex(sketcher)
    rng = random.Random(11)
    values = [rng.getrandbits(64) for _ in range(20_000)]
    for rowid, value in enumerate(values, start=1):
        index.add(as_bytes(value), rowid=rowid, at=0.0)
    for rowid in (1, 9_000, 20_000):  # found before and after the switch
        assert index.best(as_bytes(values[rowid - 1]), not_before=0.0) == (rowid, 0.0, 1.0)


def test_items_older_than_the_window_do_not_match():
    sketcher = SimHashSketcher(max_distance=3)
    index = StreamIndex(sketcher)
    index.add(as_bytes(42), rowid=1, at=100.0)
    assert index.best(as_bytes(42), not_before=100.0) is not None
    assert index.best(as_bytes(42), not_before=100.5) is None
    assert index.expired(100.5) == 1


def test_the_most_similar_wins_and_then_the_newest():
    index = StreamIndex(SimHashSketcher(max_distance=3))
    index.add(as_bytes(0b111), rowid=1, at=1.0)
    index.add(as_bytes(0b000), rowid=2, at=2.0)
    index.add(as_bytes(0b000), rowid=3, at=3.0)
    index.add(as_bytes(0b001), rowid=4, at=4.0)
    assert index.best(as_bytes(0), not_before=0.0) == (3, 3.0, 1.0)


def test_commit_and_compact():
    index = StreamIndex(SimHashSketcher(max_distance=0))
    for rowid in range(1, 11):
        index.add(as_bytes(rowid * 7919), rowid=rowid, at=float(rowid))
    assert index.uncommitted == 10
    with pytest.raises(RuntimeError):
        index.compact(5.0)
    index.commit()
    assert index.uncommitted == 0
    fresh = index.compact(6.0)
    assert len(fresh) == 5
    assert fresh.best(as_bytes(7 * 7919), not_before=0.0) == (7, 7.0, 1.0)
    assert fresh.best(as_bytes(3 * 7919), not_before=0.0) is None


def test_a_sketch_of_the_wrong_width_is_refused():
    index = StreamIndex(MinHashSketcher(threshold=0.7))
    with pytest.raises(ValueError, match="32 bytes"):
        index.add(bytes(8), rowid=1, at=0.0)
