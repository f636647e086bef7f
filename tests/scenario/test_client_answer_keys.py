"""The client's answer types (``guards.client_types``) hold every key the server sends.

Each answer is got from the real server through the client and its keys compared with
the ``TypedDict``'s: a key the server sends that the type lacks is one ``mypy --strict``
refuses to read (audit26 client L2: ``BreakersAnswer`` had no ``enabled``).
"""

from __future__ import annotations

from typing import Any, NotRequired, get_origin, get_type_hints

from guards.client import GuardClient
from guards.client_types import (
    BreakerFailures,
    BreakerInfo,
    BreakersAnswer,
    RejectedItem,
    ReleaseAnswer,
    ReservationAnswer,
    RouteDecision,
    SettleAnswer,
    ValidationAnswer,
)
from tests.scenario.test_client import POLICY


def assert_keys(answer: Any, shape: Any) -> None:
    """Every key of ``answer`` is one of ``shape``'s, and every required one is there.

    The keys are read from the annotations: with ``from __future__ import annotations``
    Python 3.11 counts a ``NotRequired`` key among ``__required_keys__``.
    """
    keys = set(answer)
    hints = get_type_hints(shape, include_extras=True)
    optional = {k for k, hint in hints.items() if get_origin(hint) is NotRequired}
    required = set(hints) - optional
    assert keys - (required | optional) == set(), (shape.__name__, keys - required - optional)
    assert required - keys == set(), (shape.__name__, required - keys)


async def test_every_answer_has_the_keys_its_type_names(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    scope = "acme/alice/rss-bot/c1"
    async with GuardClient(app.url, tok) as guard:
        held = await guard.create_reservation(scope, max_cost_micros=5000)
        assert_keys(held, ReservationAnswer)
        settled = await guard.settle(held["reservation_id"], actual_cost_micros=1200)
        assert_keys(settled, SettleAnswer)
        other = await guard.create_reservation(scope, max_cost_micros=5000)
        assert_keys(await guard.release(other["reservation_id"]), ReleaseAnswer)
        checked = await guard.validate(scope, "posts", ["same", "same"])
        assert_keys(checked, ValidationAnswer)
        [rejected] = checked["rejected"]
        assert_keys(rejected, RejectedItem)
        assert_keys(await guard.route(scope, "summarise this short note"), RouteDecision)
        for every in (False, True):
            answer: BreakersAnswer = await guard.breakers(all=every)
            assert_keys(answer, BreakersAnswer)
            enabled: bool = answer["enabled"]  # read as a typed key (mypy checks this file)
            assert enabled is True
        assert answer["breakers"], "the agent's closed breaker is listed with all"
        for info in answer["breakers"]:
            assert_keys(info, BreakerInfo)
            assert_keys(info["failures"], BreakerFailures)
