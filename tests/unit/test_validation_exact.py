"""Near-duplicates are decided on the exact similarity of the stored feature bags, not on
the 32-bin MinHash estimate (audit26 A3 M1), on a real Store (every migration applied).

The templates are the audit's: the same text with another order number, ticket, pull
request, host, person or city was rejected as a near-duplicate one time in two.
"""

from __future__ import annotations

import pytest

from guards.client_types import ValidationAnswer
from guards.clock import ManualClock
from guards.scopes import Scope
from guards.store import Store
from guards.validation import Batch, Item, Validator, bags, minhash
from guards.validation.features import features
from guards.validation.index import StreamIndex
from guards.validation.normalize import prepare
from guards.validation.recheck import MAX_RECHECKS

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
    # as migration 0046 leaves them: no text kept
    await store.write(lambda tx: tx.execute("UPDATE validation_items SET feature_text = NULL"))
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
