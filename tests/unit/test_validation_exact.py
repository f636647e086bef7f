"""Near-duplicates are decided on the exact similarity of the stored feature bags, not on
the 32-bin MinHash estimate (audit26 A3 M1), on a real Store (every migration applied).

The templates are the audit's: the same text with another order number, ticket, pull
request, host, person or city was rejected as a near-duplicate one time in two.
"""

from __future__ import annotations

import pytest

from guards.client_types import ValidationAnswer
from guards.clock import ManualClock
from guards.config import Validation
from guards.scopes import Scope
from guards.store import Store, Tx
from guards.validation import Batch, Item, Validator, bags, minhash, recheck
from guards.validation.features import features
from guards.validation.index import StreamIndex
from guards.validation.normalize import casefold, exact_fingerprint, prepare
from guards.validation.recheck import MAX_RECHECKS
from tests.fakes.tracing import writer_statements

AGENT = "acme/alice/v10"
Env = tuple[Store, Validator, ManualClock]

CITIES = [
    "Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt", "Stuttgart", "Dresden",
    "Leipzig", "Hanover", "Bremen", "Essen", "Bonn", "Kiel", "Mainz", "Erfurt",
]  # fmt: skip
NAMES = [
    "Hans", "Ida", "Noor", "Lee", "Priya", "Tomas", "Aiko", "Omar", "Greta", "Lukas",
    "Sofia", "Mateo", "Chen", "Amara", "Jonas", "Elif", "Ravi", "Nina", "Kofi", "Mia",
]  # fmt: skip
TEMPLATES = {
    "orders": [f"Order #{48200 + i} shipped to customer in Berlin" for i in range(30)],
    "tickets": [f"New ticket INC-{4800 + i}: login page returns 500 for EU users"
                for i in range(30)],
    "prs": [f"PR #{1200 + i} merged: bump dependency versions" for i in range(30)],
    "hosts": [f"Disk usage above 90% on db-{i:02d}" for i in range(1, 31)],
    "people": [f"Welcome our new team member {name}!" for name in NAMES],
    "cities": [f"Weather alert: heavy snow expected in {city} tonight" for city in CITIES],
}  # fmt: skip
# the same output sent again with trivial changes: (first, again)
NEAR = [
    ("Order #48213 shipped to customer in Berlin", "Order #48213 shipped to customer in Berlin!!"),
    ("Order #48213 shipped to customer in Berlin", "order #48213 SHIPPED to customer in berlin!"),
    ("Order #48213 shipped to customer in Berlin",
     "Order #48213 - shipped to a customer in Berlin."),
    ("Disk usage above 90% on db-02", "DISK USAGE above 90% on db-02 !"),
    ("Weather alert: heavy snow expected in Berlin tonight",
     "Weather alert: heavy snowfall expected in Berlin tonight"),
    ("Weather alert: heavy snow expected in Berlin tonight",
     "Weather alert - heavy snow expected in Berlin tonight."),
    ("New ticket INC-4821: login page returns 500 for EU users",
     "New ticket INC-4821: login page returns 500 for EU customers"),
    ("Storm leaves 40,000 homes without power across Ireland overnight",
     "Storm leaves 40,000 homes without electricity across Ireland overnight"),
]  # fmt: skip


async def run(store: Store, validator: Validator, stream: str, *texts: str) -> ValidationAnswer:
    b = Batch(scope=AGENT, stream=stream, items=[Item(t) for t in texts])
    out = await store.write(lambda tx: validator.check(tx, scope=Scope.parse(AGENT), batch=b))
    return out.as_json()


def bag(text: str) -> bags.Bag:
    return bags.bag_of(text)


def upgraded(store: Store) -> Validator:
    """The validator of a process started on the database as it is now (nothing cached)."""
    validator = Validator(Validation())
    validator.attach(store)
    return validator


@pytest.mark.parametrize("stream", sorted(TEMPLATES))
async def test_the_same_template_with_another_id_or_name_is_new_output(env: Env, stream: str):
    store, v, clock = env
    texts = TEMPLATES[stream]
    together = await run(store, v, stream, *texts)  # in one batch
    assert together["rejected"] == []
    assert together["accepted"] == list(range(len(texts)))
    for i, text in enumerate(texts):  # and one a batch, each against the history
        clock.advance(60)
        alone = await run(store, v, f"{stream}-{i % 2}", text)
        assert alone["rejected"] == [], text


@pytest.mark.parametrize(("first", "again"), NEAR)
async def test_the_same_output_with_a_word_punctuation_or_case_changed_is_still_rejected(
    env: Env, first: str, again: str
):
    store, v, _ = env
    await run(store, v, "posts", first)
    out = await run(store, v, "posts", again)
    [rejected] = out["rejected"]
    assert rejected["reason"] == "near_duplicate"
    # the similarity said is the exact one of the two bags, not the estimate
    exact = bags.similarity(bag(first), bag(again))
    assert exact is not None and rejected["similarity"] == min(round(exact, 3), 0.99)


async def test_a_pair_the_estimate_calls_near_is_decided_on_the_bags(env: Env):
    store, v, _ = env
    a, b = (
        "Order #48213 shipped to customer in Berlin",
        "Order #48214 shipped to customer in Berlin",
    )
    sketch = v.sketcher.sketch
    estimate = minhash.estimate(sketch(features(prepare(a))), sketch(features(prepare(b))))
    assert estimate >= 0.7  # hash luck: the old decision rejected it
    assert bags.similarity(bag(a), bag(b)) is None  # another order number: new output
    out = await run(store, v, "orders", a, b)
    assert out["accepted"] == [0, 1]


async def test_rows_remembered_before_bags_are_read_from_their_preview_or_the_estimate(env: Env):
    store, v, clock = env
    long_head = "Weather alert: heavy snow expected in Berlin tonight, " + "roads closed " * 12
    await run(store, v, "cities", "Weather alert: heavy snow expected in Berlin tonight", long_head)
    # as migration 0046 leaves them: no text kept, and the version that upgraded it
    # starts with nothing of them in memory
    await store.write(lambda tx: tx.execute("UPDATE validation_items SET feature_text = NULL"))
    v = upgraded(store)
    clock.advance(60)
    out = await run(store, v, "cities", "Weather alert: heavy snow expected in Hamburg tonight")
    assert out["rejected"] == []  # the whole text is in the preview: decided exactly
    out = await run(store, v, "cities", "Weather alert: heavy snowfall expected in Berlin tonight")
    assert [r["reason"] for r in out["rejected"]] == ["near_duplicate"]
    # a clipped preview cannot stand for its text: the estimate decides, as it did
    again = long_head.replace("snow", "snowfall")
    out = await run(store, v, "cities", again)
    [rejected] = out["rejected"]
    sketch = v.sketcher.sketch
    estimate = minhash.estimate(
        sketch(features(prepare(long_head))), sketch(features(prepare(again)))
    )
    assert rejected["reason"] == "near_duplicate"
    assert rejected["similarity"] == round(estimate, 3)


async def test_a_preview_that_only_looks_whole_is_not_read_as_the_text(env: Env):
    """review26 R1 L6: a preview collapses white space and is cut, so a text with a long run
    of blanks has a short preview with no '…' that is only its start."""
    store, v, clock = env
    head = "Weather alert: heavy snow expected in Berlin tonight"
    first = head + " " * 500 + "trains cancelled, schools shut"
    await run(store, v, "cities", first)
    await store.write(lambda tx: tx.execute("UPDATE validation_items SET feature_text = NULL"))
    [(shown,)] = await store.fetch("SELECT preview FROM validation_items")
    assert shown == head  # short, no '…': it looks like the whole text
    v = upgraded(store)
    clock.advance(60)
    # the headline again is new output next to the whole text (0.64), a near-duplicate of
    # the preview (1.0): the estimate decides, as for a cut preview, and it is under
    again = head + "!"
    whole_text = bags.similarity(bag(again), bag(first))
    assert whole_text is not None and whole_text < v.sketcher.threshold
    index = StreamIndex(v.sketcher)
    index.add(v.sketcher.sketch(features(prepare(first))), rowid=1, at=0.0)
    [(_, _, estimate)] = index.nearest(
        v.sketcher.sketch(features(prepare(again))), not_before=0.0, limit=MAX_RECHECKS
    )
    assert estimate < v.sketcher.decisive  # a candidate, not one the estimate rejects
    out = await run(store, v, "cities", again)
    assert out["rejected"] == []


@pytest.mark.parametrize(
    ("text", "shown", "whole"),
    [
        ("Order #48213 shipped", "Order #48213 shipped", True),
        ("Order  #48213\n shipped ", "Order #48213 shipped", True),  # blanks collapse alike
        ("Order #48213 shipped" + " " * 500 + "to Berlin", "Order #48213 shipped", False),
        ("x" * 300, "x" * 119 + "…", False),  # cut
        ("<b>Order</b> #48213 shipped", "Order #48213 shipped", False),  # shown from markup
        ("Order #48213 shipped", "order #48213 shipped", True),  # (the same normalised text)
    ],
)
def test_a_preview_is_the_whole_text_only_when_its_fingerprint_is_the_item_s(
    text: str, shown: str, whole: bool
):
    exact = exact_fingerprint(casefold(prepare(text)))
    assert recheck.whole(shown, exact) is whole
    assert recheck.whole(shown, None) is False  # no fingerprint, no proof


async def test_a_batch_reads_its_candidates_rows_in_one_query(env: Env):
    """review26 R1 M2: not one read per candidate; and a candidate's bag is built once."""
    store, v, clock = env
    texts = [f"Storm leaves homes without power across {c} overnight again" for c in CITIES]
    await run(store, v, "posts", *texts)
    v = upgraded(store)  # nothing of them in memory: every bag is read from its row
    clock.advance(60)
    async with writer_statements(store) as statements:
        out = await run(store, v, "posts", *(t.replace("Storm", "A storm") for t in texts))
    assert [r["reason"] for r in out["rejected"]] == ["near_duplicate"] * len(texts)
    reads = [s for s in statements if "feature_text" in s and s.lstrip().startswith("SELECT")]
    assert len(reads) == 1, reads
    # the batches after it find the bags of the rows it read
    assert all(rowid in v.bags for rowid in range(1, len(texts) + 1))


async def test_only_committed_rows_leave_bags_for_later_batches(env: Env):
    """A rolled-back row's id is given again, to another text; a pruned one may be too."""
    store, v, clock = env
    texts = TEMPLATES["cities"][:3]
    b = Batch(scope=AGENT, stream="cities", items=[Item(t) for t in texts])

    def rolled_back(tx: Tx) -> None:
        v.check(tx, scope=Scope.parse(AGENT), batch=b)
        raise RuntimeError("the write failed")

    with pytest.raises(RuntimeError):
        await store.write(rolled_back)
    assert len(v.bags) == 0
    await run(store, v, "cities", *texts)
    assert len(v.bags) == len(texts)
    clock.advance(8 * 86_400)
    await store.write(lambda tx: v.prune(tx, clock.now()))
    assert len(v.bags) == 0


async def test_new_rows_keep_the_text_their_features_are_read_from(env: Env):
    store, v, _ = env
    short = "Order #48213 shipped to customer in Berlin https://shop.example/o/48213?utm_source=x"
    long = "Storm leaves homes without power \ud800 in Ireland " * 30
    await run(store, v, "orders", short, long)
    rows = await store.fetch("SELECT feature_text FROM validation_items ORDER BY id")
    texts = [bags.text_of(row[0]) for row in rows]
    assert texts == [prepare(short), prepare(long)]  # a lone surrogate survives
    assert len(rows[1][0]) < len(long) / 4  # a long one is compressed
    assert bags.text_of(b"z" + b"not zlib") is None and bags.text_of(b"?") is None


def test_the_candidates_of_one_item_are_bounded_whatever_the_stream_holds(env: Env):
    _, v, _ = env
    index = StreamIndex(v.sketcher)
    same = v.sketcher.sketch(features(prepare("Order #48213 shipped to customer in Berlin")))
    for rowid in range(1, 1001):
        index.add(same, rowid=rowid, at=float(rowid))
    found = index.nearest(same, not_before=0.0, limit=MAX_RECHECKS)
    assert [rowid for rowid, _, _ in found] == list(range(1000, 1000 - MAX_RECHECKS, -1))
