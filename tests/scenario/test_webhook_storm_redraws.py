"""A webhook storm's answers redraw its alerts' posts at routine priority (review28 R8 M1).

0d1cab8 made the post of a webhook page redraw at once when its try is delivered, fails
or is first retried, so a lone alert's "Paging via…" changes when the answer is known
(recheck28 Ka L3). For a storm's trigger that was every alert of the storm with a post
of its own, queued urgent, at the priority of P0 posts and acknowledgements: 50 urgent
edits per answer at 50 alerts, ahead of an Acknowledge's update in a channel that sends
one message a second. A storm's posts are redrawn at their trailing update, as before.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhook_storms import _secret, agents, trip
from tests.scenario.test_webhooks import policy, send
from tests.unit.test_alerts_engine import deliver_all

__all__ = ["_secret", "webhook_receiver"]


async def urgent_updates(store: Any, after: int) -> int:
    rows = await store.fetch(
        "SELECT COUNT(*) FROM outbox WHERE id > ? AND method = 'chat.update' AND priority < 0",
        (after,),
    )
    return int(rows[0][0])


async def test_a_webhook_storm_s_answers_queue_no_urgent_edit_of_its_posts(
    slack_http: Any, webhook_receiver: WebhookReceiver
) -> None:
    clock = ManualClock()
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    store = slack.app.store
    in_storm = 0  # urgent edits queued by the answers of a storm's triggers
    for scope in agents(0, 30):  # one alert each 4 s: their posts go out on their own
        await trip(slack, [scope])
        await deliver_all(store)
        before = (await store.fetch("SELECT COALESCE(MAX(id), 0) FROM outbox"))[0][0]
        storms = await store.fetch(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE storm_id IS NOT NULL"
        )
        await send(slack)  # the webhook's answers are recorded
        if storms[0][0]:  # (a lone alert's answer redraws its post at once: Ka L3)
            in_storm += await urgent_updates(store, before)
        clock.advance(4)
    posted = await store.fetch("SELECT COUNT(*) FROM alerts WHERE posted_at IS NOT NULL")
    assert posted[0][0] == 30
    assert storms[0][0], "no webhook storm began: the test shows nothing"
    assert in_storm == 0, in_storm
