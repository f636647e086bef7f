"""The validation operation: is this output new, and is there a sane amount of it?

:meth:`Validator.validate` runs inside ``store.write``: it authenticates the
token, authorises the scope, checks the batch, remembers only the accepted items,
stores every rejection and emits the events, all in the caller's transaction, so a
batch is stored whole or not at all. The order of the checks:

1. the batch as a whole: no items is a 400; more than ``expected_count ×
   runaway_factor`` items rejects every item as ``runaway`` (one stored rejection
   and one :class:`~guards.events.RunawayDetected`); otherwise more than
   ``max_items`` is a 400;
2. each item in turn: ``too_large`` (over ``max_item_chars``), ``empty`` (nothing
   left after normalisation), ``duplicate`` (same normalised text as an item
   remembered in the window, or accepted earlier in this batch), ``near_duplicate``
   (the sketch picks candidates remembered in the window, and the exact similarity of
   the two texts' features reaches the threshold: :mod:`~guards.validation.recheck`;
   reported at most :data:`NEAR_SIMILARITY_CAP`: the texts differ); otherwise it is
   accepted and remembered, with a short preview so a later rejection can show what it
   matched, and the text its features are read from.

**Send an ``idempotency_key`` to make retries safe.** A batch sent again with the
key of an earlier one (a retry after a timeout) gets the answer the first send got,
and nothing is stored, rejected or counted again; the same key with another batch is
a 409. Without a key a re-sent item is a ``duplicate`` (of its own ``id``, when it
has one): an RSS agent that re-publishes its feed on every run is stopped on the
second. Items are compared by text; the ``id`` only names them. Two items of one
batch with the same id and different texts are a 400 naming ``items.<i>.id``.

A stream belongs to the agent (``scope.agent()``), not to the conversation, so
an RSS agent's runs in different conversations still dedup; put the conversation
in the stream name to dedup per conversation.

A stream whose duplicate rejections reach ``burst.count`` within
``burst.window_seconds`` emits a :class:`~guards.events.DuplicateBurst` (scope: the
agent, which owns the stream); while duplicates keep coming it fires again at most
every quarter window, so its alert stays open and counts; a whole window without
duplicates ends the burst. ``RunawayDetected`` carries the scope the batch was sent for.

The near-duplicate indexes, and how they are loaded ahead of the write, are
:class:`~guards.validation.streams.StreamIndexes`.

Example:
    >>> from guards.config import Validation
    >>> validator = Validator(Validation())
    >>> validator.sketcher.kind
    'minhash32-links'
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from guards.errors import Conflict, InvalidInput
from guards.events import DuplicateBurst, RunawayDetected
from guards.scopes import Scope, ScopeError
from guards.store import Tx
from guards.tokens import authenticate, authorize, require_agent
from guards.validation import repo
from guards.validation.bags import stored
from guards.validation.batch_run import BatchRun, Hit
from guards.validation.index import StreamIndex
from guards.validation.near_batch import BatchNear
from guards.validation.prepared import Prepared, prepare_batch
from guards.validation.streams import DAY, LEGACY_NEWEST, StreamIndexes, sketcher_for
from guards.validation.types import (
    DUPLICATE_REASONS,
    ITEM_PREVIEW_CHARS,
    Batch,
    Outcome,
    Rejected,
    preview,
)

__all__ = [
    "API_PATH",
    "NEAR_SIMILARITY_CAP",
    "Prepared",
    "Pruned",
    "Validator",
    "prune",
    "sketcher_for",
]

log = logging.getLogger(__name__)
API_PATH = "/v1/validations"
#: a near-duplicate never reports 1.0: its normalised text differs (1.0 means identical)
NEAR_SIMILARITY_CAP = 0.99


@dataclass(frozen=True, slots=True)
class Pruned:
    items: int
    rejections: int


def prune(
    tx: Tx, now: float, *, window_days: int = 7, rejections_retention_days: int = 30
) -> Pruned:
    """Forget items (and calls' answers) older than the window, rejections older than theirs."""
    repo.prune_calls(tx, before=now - window_days * DAY)
    return Pruned(
        items=repo.prune_items(tx, before=now - window_days * DAY),
        rejections=repo.prune_rejections(tx, before=now - rejections_retention_days * DAY),
    )


class Validator(StreamIndexes):
    """The engine behind ``POST /v1/validations``, over its per-stream indexes.

    Attach it to the store (:meth:`attach`) so that the cache forgets what a
    rolled-back transaction had added.
    """

    # -- the operation -------------------------------------------------------------------

    def prepare(self, batch: Batch) -> Prepared:
        """Check the batch as a whole and normalise and sketch its items.

        Pure work, no database: the HTTP handler runs it off the writer thread, so
        the transaction only looks up and inserts (see :func:`prepare_batch`).
        """
        return prepare_batch(
            batch,
            config=self.config,
            sketcher=self.sketcher,
            legacy=self._legacy_until is None or self._legacy_until > float("-inf"),
        )

    def validate(self, tx: Tx, *, token: str | None, batch: Batch | Prepared) -> Outcome:
        """Authenticate, authorise and :meth:`check` one batch (the HTTP operation): an
        agent's token only (an operator's writes into no agent's stream: 403
        agent_token_required)."""
        tok = require_agent(authenticate(tx, token), what=f"POST {API_PATH}")
        scope_text = batch.batch.scope if isinstance(batch, Prepared) else batch.scope
        try:
            scope = Scope.parse(scope_text, min_depth=3)
        except ScopeError as exc:
            raise InvalidInput("scope", f"scope: {exc}") from None
        authorize(tx, tok, scope, path=API_PATH)
        return self.check(tx, scope=scope, batch=batch, token_id=tok.id)

    def check(
        self, tx: Tx, *, scope: Scope, batch: Batch | Prepared, token_id: str = ""
    ) -> Outcome:
        """Validate, remember and record one batch for an already authorised scope, sent
        by token ``token_id`` (its idempotency key names a call of that token)."""
        prepared = batch if isinstance(batch, Prepared) else self.prepare(batch)
        if prepared.kind != self.sketcher.kind:  # the policy changed since it was prepared
            prepared = self.prepare(prepared.batch)
        now = tx.clock.now()
        agent = scope.agent()
        if agent is None:
            raise InvalidInput("scope", "scope: validation needs an agent scope or deeper")
        stream = repo.stream_row(tx, agent=agent, name=prepared.stream, now=now)
        ident = (agent, prepared.stream)
        if self._stream_ids.get(ident) != stream.id:  # a stream row is kept once committed
            tx.after_commit.append(lambda: self._remember_stream(ident, stream.id))
        key = prepared.batch.idempotency_key
        if key is not None:
            request_hash = prepared.fingerprint
            assert request_hash is not None  # prepare_batch hashes every batch with a key
            earlier = repo.find_call(tx, stream_id=stream.id, token_id=token_id, key=key)
            if earlier is not None:
                if earlier[0] != request_hash:
                    raise Conflict(
                        f"idempotency_key {key!r} was used for another batch of stream"
                        f" {prepared.stream!r}; use a new key for a new batch"
                    )
                return Outcome.from_json(earlier[1], replayed=True)
            outcome = self._decide(tx, scope=scope, prepared=prepared, stream=stream, now=now)
            repo.add_call(
                tx,
                stream_id=stream.id,
                token_id=token_id,
                key=key,
                request_hash=request_hash,
                answer=outcome.as_json(),
                at=now,
            )
            return outcome
        return self._decide(tx, scope=scope, prepared=prepared, stream=stream, now=now)

    def _decide(
        self, tx: Tx, *, scope: Scope, prepared: Prepared, stream: repo.StreamRow, now: float
    ) -> Outcome:
        n = len(prepared.batch.items)
        run = BatchRun(
            tx=tx,
            now=now,
            stream=stream,
            expected=prepared.batch.expected_count,
            base={
                "stream_id": stream.id,
                "scope": scope.path,
                "stream": prepared.stream,
                "batch_size": n,
            },
        )
        if prepared.runaway:
            return self._runaway(run, prepared)
        return self._items(run, prepared)

    def _runaway(self, run: BatchRun, prepared: Prepared) -> Outcome:
        items = prepared.batch.items
        expected = run.expected or 0
        run.record(reason="runaway", preview=preview(items[0].text))
        repo.add_rejections(run.tx, run.stored)
        run.tx.emit(
            RunawayDetected(
                at=run.now,
                scope=run.base["scope"],
                stream=run.base["stream"],
                count=len(items),
                expected_count=expected,
            )
        )
        # the agent is told how many its expected_count allows, not only that it sent too many
        allowed = math.floor(expected * self.config.runaway_factor)
        return Outcome([], [Rejected(i, "runaway", max_items=allowed) for i in range(len(items))])

    def _items(self, run: BatchRun, prepared: Prepared) -> Outcome:
        tx, now, stream_id = run.tx, run.now, run.stream.id
        not_before = now - self.config.window_days * DAY
        index = near = None
        key = (stream_id, prepared.kind)
        if self.config.near_duplicate.enabled:
            index = self._index(tx, stream_id, not_before)
            near = BatchNear(
                tx,
                sketcher=self.sketcher,
                index=index,
                not_before=not_before,
                items=prepared.items,
                cache=self.bags,
                legacy=self._legacy_index(tx, stream_id, not_before),
            )
        for i, p in enumerate(prepared.items):
            if p.rejected is not None:
                run.reject(i, p.item, p.rejected)
                continue
            ref = p.item.ref
            same = repo.find_exact(
                tx, stream_id=stream_id, exact=p.exact, not_before=not_before, ref=ref
            )
            if same is not None:  # duplicate_of is the item's own id when it was sent before
                hit = Hit(same.id, same.ref, same.at, 1.0, same.preview, exact=p.exact)
                run.reject(i, p.item, "duplicate", hit)
                continue
            found = near.find(i, p) if near is not None else None
            if found is not None:
                item_id, at, similarity = found
                matched_ref, matched_preview, exact = repo.item_info(tx, item_id)
                similarity = min(similarity, NEAR_SIMILARITY_CAP)
                hit = Hit(item_id, matched_ref, at, similarity, matched_preview, exact=exact)
                run.reject(i, p.item, "near_duplicate", hit)
                continue
            item_id = repo.add_item(
                tx,
                stream_id=stream_id,
                at=now,
                exact=p.exact,
                kind=prepared.kind,
                sketch=p.sketch,
                ref=ref,
                preview=preview(p.item.text, ITEM_PREVIEW_CHARS),
                feature_text=stored(p.text) if self.sketcher.rechecked else None,
            )
            if index is not None and near is not None:
                index.add(p.sketch, rowid=item_id, at=now)
                near.accepted(i, p, rowid=item_id, at=now)
                self._unconfirmed.add(key)
            run.accept(i, item_id)
        if index is not None and near is not None:
            self._indexes.measure(key)  # it grew: maybe past the budget
            tx.after_commit.append(near.keep)  # its bags serve later batches
        repo.add_rejections(tx, run.stored)
        if any(r.reason in DUPLICATE_REASONS for r in run.rejected):
            self._burst(run)
        tx.after_commit.append(self._confirm)
        return Outcome(run.accepted, run.rejected)

    def _legacy_index(self, tx: Tx, stream_id: int, not_before: float) -> StreamIndex | None:
        """The stream's index of the rows an older version remembered with its own features
        (:data:`~guards.validation.sketchers.LEGACY_MINHASH`), while any are in the window
        (None: none are): an item is compared with them sketched both ways (such rows were
        written with the old features, and, for a few hours of 2026-11-27, with the new)."""
        legacy_kind = self.sketcher.legacy_kind
        if legacy_kind is None or not self._legacy_in_window(tx, legacy_kind, not_before):
            return None
        index = self._index(tx, stream_id, not_before, kind=legacy_kind)
        return index if len(index) else None

    def _legacy_in_window(self, tx: Tx, kind: str, not_before: float) -> bool:
        """Whether rows of the older ``kind`` may still be in a window (looked up once a
        process, ahead by :meth:`warm`: no new ones are written, so the answer only turns
        False)."""
        if self._legacy_until is None:  # not warmed (the API looks it up ahead)
            row = tx.one(LEGACY_NEWEST, (not_before, kind))
            self._legacy_newest_is(None if row is None else row[0])
        return bool(self.legacy_live(tx.clock.now()))

    def _burst(self, run: BatchRun) -> None:
        """A DuplicateBurst when the count reaches the threshold; again while it goes on.

        A burst that goes on fires again at most every quarter window, so its alert
        counts the firings and stays open for as long as duplicates keep coming (it
        resolves once they stop), without an update per rejected batch.
        """
        window = self.config.burst.window_seconds
        row, now = run.stream, run.now
        in_burst = row.in_burst
        if in_burst and (row.last_duplicate_at is None or now - row.last_duplicate_at > window):
            in_burst = False  # a whole window passed without duplicates: that burst is over
        count = repo.count_duplicates(run.tx, stream_id=row.id, since=now - window)
        scope = Scope(run.base["scope"])
        agent = scope.agent() or scope.path
        stream = run.base["stream"]
        if in_burst:
            fired = repo.last_burst_at(run.tx, scope=agent, stream=stream)
            fire = fired is None or now - fired >= window / 4
        else:
            fire = count >= self.config.burst.count
        if fire:
            run.tx.emit(
                DuplicateBurst(
                    at=now, scope=agent, stream=stream, rejected=count, window_seconds=window
                )
            )
            in_burst = True
        repo.set_burst(run.tx, stream_id=row.id, last_duplicate_at=now, in_burst=in_burst)

    # -- retention -----------------------------------------------------------------------

    def prune(self, tx: Tx, now: float) -> Pruned:
        """:func:`prune` with this policy; after the commit, shrink indexes that are half dead."""
        cfg = self.config
        done = prune(
            tx,
            now,
            window_days=cfg.window_days,
            rejections_retention_days=cfg.rejections_retention_days,
        )
        not_before = now - cfg.window_days * DAY

        tx.after_commit.append(lambda: self._pruned(not_before))
        return done

    def _pruned(self, not_before: float) -> None:
        self._compact(not_before)
        # a deleted row's id may be given again (SQLite reuses the largest): no bag of one
        # may outlive it
        self.bags.clear()
