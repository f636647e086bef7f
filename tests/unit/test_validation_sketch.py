"""Features and sketches, and the near-duplicate decision on the labelled corpus.

The corpus (tests/data/near_duplicates.tsv) holds pairs written by hand: "match"
pairs are one item re-published with trivial differences, "differ" pairs are new
output that looks alike (same template, another entity or id or outcome). The
test prints precision and recall of both sketches and asserts minimums.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guards.validation import bags, minhash, simhash
from guards.validation.features import SKETCH_CHARS, _passages, features, shows_anything
from guards.validation.markup import as_shown
from guards.validation.normalize import prepare
from guards.validation.sketchers import MinHashSketcher, SimHashSketcher, Sketcher
from guards.validation.words import IDENTITY

CORPUS = Path(__file__).resolve().parent.parent / "data" / "near_duplicates.tsv"


def load_corpus() -> list[tuple[bool, str, str, str]]:
    pairs = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, kind, a, b = line.split("\t")
        assert label in ("match", "differ"), line
        pairs.append((label == "match", kind, a, b))
    return pairs


def words(text: str) -> set[str]:
    return {f for f, _ in features(prepare(text)) if f[0] in "wi"}


def test_the_corpus_is_big_enough_and_written_both_ways():
    pairs = load_corpus()
    assert sum(1 for m, *_ in pairs if m) >= 60
    assert sum(1 for m, *_ in pairs if not m) >= 60
    kinds = {kind for _, kind, *_ in pairs}
    assert {"entity", "id", "outcome", "timestamp", "counter", "tracking"} <= kinds


# -- features ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("CPU at 97% as of 03:14 UTC", "CPU at 98% as of 03:19 UTC"),
        ("[2026-03-04 09:15:02] backup done", "[2026-03-05 09:15:44] backup done"),
        ("Posted 5 minutes ago: jam on A9", "Posted two hours ago: jam on A9"),
        ("Police arrest two men", "Police arrest 2 men"),
        ("The plan to cut bills", "A plan to cut bills!"),
        ("we couldn't do it", "we could not do it"),
        ("it won't ship", "it will not ship"),
    ],
)
def test_masked_and_ignored_parts_do_not_change_the_features(a, b):
    assert words(a) == words(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Bitcoin hits $70,000", "Bitcoin hits $50,000"),
        ("Stocks fall 3% as tech sells off", "Stocks fall 10% as tech sells off"),
        ("Earthquake of magnitude 6.1", "Earthquake of magnitude 7.4"),
        ("power cut for 40,000 homes", "power cut for 400 homes"),
        ("raises 20 million", "raises 85 million"),
        ("raises $20m", "raises 20 million"),  # money is not a plain quantity
    ],
)
def test_numbers_that_carry_the_news_change_the_features(a, b):
    assert {f for f, _ in features(prepare(a))} != {f for f, _ in features(prepare(b))}


def test_a_value_that_barely_moved_keeps_at_least_half_its_features():
    def numbers(text):
        return {f for f, _ in features(prepare(text)) if f.startswith("n:")}

    for a, b in [
        ("$64,000", "$64,500"),
        ("magnitude 6.1", "magnitude 6.2"),
        ("97%", "98%"),
        ("1,204 likes", "1,391 likes"),
    ]:
        assert len(numbers(a) & numbers(b)) >= 1, (a, b)
    assert not numbers("3 new comments") and not numbers("in 2026") and not numbers("12°C")


def test_hyphenated_words_count_split_and_joined():
    assert words("remote-friendly role") == words("remote friendly role") | {"w:remotefriendly"}
    assert "w:signup" in words("sign-up form") & words("signup form")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Order #48213 has shipped", "Order #48214 has shipped"),
        ("Ticket INC-4821 assigned", "Ticket INC-4822 assigned"),
        ("Released v2.3.1 today", "Released v2.4.0 today"),
        ("flight 401 delayed", "flight 403 delayed"),
        ("Disk on backup-03 full", "Disk on backup-04 full"),
        ("see https://a.example/posts/1042", "see https://a.example/posts/1043"),
        ("cert for api.example.com", "cert for mail.example.com"),
    ],
)
def test_identities_keep_their_digits_and_weigh_most(a, b):
    fa, fb = features(prepare(a)), features(prepare(b))
    differing = {f for f, _ in fa} ^ {f for f, _ in fb}
    assert differing
    assert all(w == IDENTITY for f, w in fa + fb if f in differing and f.startswith("i:"))
    assert any(f.startswith("i:") for f in differing)


def test_a_text_of_nothing_but_masked_tokens_only_matches_itself():
    assert features(prepare("12:30")) == [("t:12:30", IDENTITY)]
    assert features(prepare("👍")) != features(prepare("👎"))


def test_long_texts_are_sketched_from_their_start():
    start = "word " * 1000
    assert features(prepare(start + "tail one")) == features(prepare(start + "tail two"))


@given(st.text(max_size=300))
def test_features_never_fail_and_exist_for_any_non_blank_text(text):
    prepared = prepare(text)
    out = features(prepared)
    assert bool(out) == bool(prepared)
    assert all(w > 0 for _, w in out)


# -- sketches ----------------------------------------------------------------------------


def test_simhash_of_the_same_bag_is_the_same_and_order_does_not_matter():
    bag = [("w:storm", 4), ("w:ireland", 4), ("g:sto", 1)]
    assert simhash.simhash(bag) == simhash.simhash(list(reversed(bag)))
    assert simhash.hamming(0b1011, 0b0001) == 2
    assert simhash.similarity(3) == round(1 - 3 / 64, 3)


def test_simhash_moves_little_for_a_small_change_and_far_for_a_big_one():
    base = [(f"w:word{i}", 4) for i in range(40)]
    small = [*base[:-1], ("w:other", 4)]
    unrelated = [(f"w:else{i}", 4) for i in range(40)]
    a = simhash.simhash(base)
    assert simhash.hamming(a, simhash.simhash(small)) < simhash.hamming(
        a, simhash.simhash(unrelated)
    )


def test_minhash_estimates_jaccard_of_weighted_bags():
    a = [(f"w:{i}", 1) for i in range(400)]
    b = [(f"w:{i}", 1) for i in range(100, 500)]  # Jaccard 300 / 500 = 0.6
    estimate = minhash.estimate(minhash.signature(a), minhash.signature(b))
    assert 0.4 <= estimate <= 0.8
    assert minhash.estimate(minhash.signature(a), minhash.signature(a)) == 1.0
    assert minhash.signature([]) == bytes(minhash.BINS)


def test_minhash_counts_weights():
    heavy = minhash.signature([("w:a", 30), ("w:b", 1)])
    light = minhash.signature([("w:a", 1), ("w:b", 30)])
    assert minhash.estimate(heavy, light) < 0.4


# -- the labelled corpus -----------------------------------------------------------------


def evaluate(sketcher: Sketcher) -> tuple[float, float, list[str]]:
    tp = fp = fn = 0
    wrong = []
    for match, kind, a, b in load_corpus():
        fa = features(prepare(a), names=sketcher.names)
        fb = features(prepare(b), names=sketcher.names)
        said = sketcher.scorer(sketcher.sketch(fa))(sketcher.sketch(fb)) is not None
        if said and sketcher.rechecked:  # the estimate picks a candidate, the bags decide
            exact = bags.similarity(bags.bag(fa), bags.bag(fb))
            said = exact is not None and exact >= sketcher.threshold
        tp += match and said
        fp += (not match) and said
        fn += match and not said
        if said != match:
            wrong.append(f"{'missed' if match else 'false match'} ({kind}): {a!r} / {b!r}")
    return tp / max(1, tp + fp), tp / max(1, tp + fn), wrong


def test_minhash_decides_the_corpus_well(capsys):
    precision, recall, wrong = evaluate(MinHashSketcher(threshold=0.7))
    with capsys.disabled():
        print(f"\nminhash threshold 0.7: precision {precision:.3f} recall {recall:.3f}")
        for line in wrong:
            print("   ", line)
    # the number pairs of audit G (finding 4) made the corpus harder: three of them
    # (magnitude 6.1/7.4, 40,000/400 homes, 20/85 million) still score about 0.7.
    # Decided on the exact bags (audit26 A3 M1) no match is missed any more: an estimate
    # under the threshold for a pair over it only makes a candidate
    assert precision >= 0.93
    assert recall == 1.0


def test_simhash_decides_the_corpus_precisely_but_misses_more(capsys):
    precision, recall, _ = evaluate(SimHashSketcher(max_distance=3))
    with capsys.disabled():
        print(f"\nsimhash max_distance 3: precision {precision:.3f} recall {recall:.3f}")
    assert precision >= 0.97
    # 0.70 before numbers counted (audit G, 4): a changed figure now moves a sketch's
    # bits, so re-posts with an updated number ("4%" -> "5%") are missed by SimHash at
    # distance 3 (0.763 -> 0.671 on the pairs that were there before). Stated in the README.
    assert recall >= 0.65
    minhash_recall = evaluate(MinHashSketcher(threshold=0.7))[1]
    assert minhash_recall > recall + 0.1  # why minhash is the default


POST = "Fed holds rates steady as inflation cools https://news.example/2026/fed-holds"
# the same post as feeds and templates render it (audit13 incidents M2: each got through)
RENDERINGS = [
    "Fed holds rates steady as inflation cools http://news.example/2026/fed-holds",
    "Fed holds rates steady as inflation cools https://www.news.example/2026/fed-holds/",
    "Fed holds rates steady as inflation cools https://news.example/2026/fed-holds#comments",
    "<p>Fed holds rates steady as inflation cools https://news.example/2026/fed-holds</p>",
    '<p>Fed holds rates steady as inflation cools <a href="http://news.example/2026/fed-holds">'
    "https://news.example/2026/fed-holds</a></p>",
    "[Fed holds rates steady as inflation cools](https://www.news.example/2026/fed-holds)",
    "Fed holds rates steady as inflation cools &mdash; https://news.example/2026/fed-holds",
]


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_the_same_post_rendered_as_html_markdown_or_another_link_form_is_near(rendering):
    for sketcher in (MinHashSketcher(threshold=0.7), SimHashSketcher(max_distance=3)):
        a = sketcher.sketch(features(prepare(POST), names=sketcher.names))
        b = sketcher.sketch(features(prepare(rendering), names=sketcher.names))
        assert sketcher.scorer(a)(b) is not None, (type(sketcher).__name__, rendering)


@pytest.mark.parametrize(
    "other",
    [
        "Fed holds rates steady as inflation cools https://news.example/2026/fed-cuts",
        "[Fed holds rates steady as inflation cools](https://news.example/2026/ecb-holds)",
        '<a href="https://other.example/2026/fed-holds">Fed holds rates steady</a>',
        # a fragment that routes or names a numbered post is another item (audit13 recheck)
        "Fed holds rates steady as inflation cools https://news.example/2026/fed-holds#post-2",
        "Fed holds rates steady as inflation cools https://news.example/2026/fed-holds#/17",
    ],
)
def test_another_link_is_still_another_post(other):
    links = {f for f, _ in features(prepare(POST)) if f.startswith("i:")}
    assert links == {"i:news.example/2026/fed-holds"}
    assert not links & {f for f, _ in features(prepare(other))}


@pytest.mark.parametrize(
    "hostile",
    [
        "<a " + "href=" * 4000,
        "<a " + "href=x" * 660,
        "[](" * 1333,
        "<a href=x>" * 2000,
        "<p " * 7000,
    ],
)
def test_hostile_markup_costs_milliseconds_not_seconds(hostile):
    """review13 H1: "<a href=href=..." made the link pattern try every split: 22 s for one
    item, with the GIL held (every request waited)."""
    started = time.perf_counter()
    features(prepare(hostile))
    assert time.perf_counter() - started < 2.0  # milliseconds here; 22 s before


def test_markup_that_is_not_a_tag_stays_text():
    assert "w:beat" in words("AT&amp;T beats &lt;b&gt; estimates")  # escaped: shown as text
    kept = words("if 5 < 6 and 7 > 3 then the check fails")
    assert {"w:check", "w:fail"} <= kept


def test_a_number_too_large_for_a_float_is_still_a_feature():
    for text in ("Bitcoin hits $" + "9" * 400 + " today", "Profit " + "9" * 320 + " trillion"):
        assert any(f.startswith("n:") for f, _ in features(prepare(text)))


def test_what_a_page_never_shows_is_not_read():
    """audit21 guards F1: a style sheet, scripts, comments and the doctype are no text."""
    page = (
        "<!DOCTYPE html><head><STYLE type='text/css'>p{color:red}</STYLE>"
        "<script>var x = '<p>not shown</p>';</script></head><body><!-- a <b>comment</b> -->"
        "<p>Hello <b>world</b></p><styles>kept</styles><script>never closed"
    )
    assert as_shown(page) == "Hello world kept never closed"  # (its tag goes, not the rest)
    assert as_shown("1 < 2, <scripted> a</scripted>") == "1 < 2, a"


def test_a_tag_with_long_attributes_is_read_as_a_tag():
    """audit22 upgrade 2: a tag past 500 characters of attributes (a data: image, a long
    meta) stayed in the text: an HTML post and its plain re-post were not alike."""
    meta = '<meta content="' + "x" * 3000 + '">'
    image = '<img src="data:image/png;base64,' + "A" * 6000 + '"/>'
    assert as_shown(f"{meta}{image}<p>Breaking: new satellite</p>") == "Breaking: new satellite"
    assert features(prepare(f"{meta}<p>Breaking: new satellite launched</p>")) == features(
        prepare("Breaking: new satellite launched")
    )


def test_a_tag_mentioned_in_plain_text_and_an_empty_comment_hide_nothing():
    """review22 M2: `<!-->` (an empty comment: a browser shows what follows) and a plain
    text that mentions `<script>` lost everything after it: an item rejected as empty,
    two tips alike."""
    assert as_shown("<!--> Our company raised prices") == "Our company raised prices"
    assert shows_anything(prepare("<!--> Our company raised prices"))
    assert as_shown("a <!---> b <!-- c --> d") == "a b d"
    tip = "Tip: put <script> tags at the end of the body so the page renders first."
    other = "Tip: put <script> inside a worker when parsing huge JSON payloads off the main thread."
    assert features(prepare(tip)) != features(prepare(other))
    assert as_shown("Use <style> blocks sparingly") == "Use blocks sparingly"


@pytest.mark.parametrize(
    "hostile",
    [
        "<!-- -->" * 2500 + "<style",
        "<style>" * 3000,
        "<script" * 3000 + " x",
        "<!--" * 5000,
        "<styles> " * 2000 + "<style>x",
        "<a " + "x" * 20_000,  # a tag that never ends
        "<a b" * 5000,
    ],
)
def test_reading_hostile_markup_stays_linear(hostile: str):
    started = time.perf_counter()
    as_shown(hostile)
    assert time.perf_counter() - started < 0.5  # quadratic would be seconds


def test_a_long_text_is_read_as_passages_its_content_picks():
    """A long text is read as passages chosen by their content, in their order: a
    paragraph added at its end or cut from its middle leaves most of them as they were
    (recheck22 N1: passages at even places all moved with the length)."""
    words = [f"w{i}" for i in range(3000)]  # about 17,000 characters
    text = " ".join(words)
    shown = _passages(text)
    passages = shown.split(" … ")
    assert len(shown) <= SKETCH_CHARS + 200 and len(passages) > 4
    firsts = [words.index(p.split(" ")[0]) for p in passages]
    assert firsts == sorted(firsts)  # in the text's order
    kept = set(passages)
    added = set(_passages(text + " " + " ".join(f"u{i}" for i in range(60))).split(" … "))
    cut = set(_passages(" ".join(words[:1000] + words[1100:])).split(" … "))
    assert len(kept & added) >= 0.8 * len(kept)
    assert len(kept & cut) >= 0.8 * len(kept)
    assert _passages("a b c") == "a b c"  # a short text is read whole
