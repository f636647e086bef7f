"""A storm's summaries are redrawn once per batch, not once per alert.

A blip stops 480 heartbeats: one batch of events (``bot.alerts.engine``'s
``process_pending``, a tick) folds 480 alerts into the summaries of a few lanes
(:mod:`bot.alerts.folding`), and each alert's webhook step asks for its channel
summary's page line again (:mod:`bot.alerts.storm_page`). Each rebuild reads all the
summary holds, so one per alert cost O(n²) inside the writer's transaction (review27 R1
M2: 63,860 statements for 240 alerts, 5-7 s of held writer for 480, reservations and
settles waiting behind it). Within :func:`summaries_once` a summary is marked instead
(:func:`bot.alerts.folding.defer`) and redrawn once as it ends: rebuilt while it
waits, edited once for the alerts that joined it after it went out, its page line
drawn once. :func:`one_refresh_each` does the same for a person's act on many alerts
(Acknowledge all, a silence), and checks each webhook storm once for whether it ends.

A summary that cannot be redrawn (a bug in drawing it) is logged and shows what it
showed; the batch's alerts are kept.

Every function taking ``tx`` runs inside ``store.write``.

Example:
    >>> # with summaries_once(engine, tx):
    >>> #     for event in events: engine.handle(tx, ...)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bot import webhook_storms
from bot.alerts.folding import Dirty, deferring, redraw
from bot.alerts.storm_page import follow_pages
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.messages import AlertMessages

__all__ = ["one_refresh_each", "summaries_once"]

log = logging.getLogger(__name__)


@contextmanager
def summaries_once(engine: AlertMessages, tx: Tx) -> Iterator[None]:
    """Within it, each storm summary that changes is redrawn once, at the end (inside
    another one: at that one's end)."""
    with deferring() as dirty:
        yield
    if dirty:  # (not after a failure: its writes are rolled back anyway)
        _redraw_all(engine, tx, dirty)


@contextmanager
def one_refresh_each(engine: AlertMessages, tx: Tx) -> Iterator[None]:
    """Within it, a summary whose alerts change is redrawn once, and a webhook's storm
    carrying them is checked once, at the end, for whether it ends
    (:func:`bot.webhook_storms.one_end_check_each`).

    Acknowledging a storm's 240 alerts one after the other would rebuild the other
    lane's waiting summary 240 times (each time from all it still holds); this
    rebuilds it once, to the same result."""
    with summaries_once(engine, tx), webhook_storms.one_end_check_each(tx):
        yield


def _redraw_all(engine: AlertMessages, tx: Tx, dirty: dict[str, Dirty]) -> None:
    now = tx.clock.now()
    for ref in sorted(dirty):
        marks = dirty[ref]
        tx.execute("SAVEPOINT storm_summary")
        try:
            waited = redraw(engine, tx, ref, now, joined=marks.joined)
            if marks.page and not waited:  # (one rebuilt while waiting says it already)
                follow_pages(engine, tx, [ref], now=now)
        except Exception:  # one summary that cannot be drawn must not undo the batch
            log.exception("alert storm summary %s could not be redrawn; it stays as it was", ref)
            tx.execute("ROLLBACK TO storm_summary")
        tx.execute("RELEASE storm_summary")
