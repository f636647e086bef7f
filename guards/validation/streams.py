"""The per-stream near-duplicate indexes of :class:`~guards.validation.engine.Validator`.

**The indexes in memory are bounded.** A stream's near-duplicate index lives in an
:class:`~guards.validation.index.IndexCache` of ``validation.index_memory_mb``; past
it the least recently used streams are dropped, and a dropped stream loads its window
again on its next batch, with the same verdicts (the rows are in SQLite).
:meth:`StreamIndexes.warm` does that load before the write, on a worker thread with a
read connection of its own, so the write only adds the rows committed since; a batch
that comes without it (or after it failed) loads inside the write (:meth:`_index`).

An index that took rows inside a transaction stays *unconfirmed* until that
transaction commits; a rollback drops it (:meth:`forget`), so the cache never
remembers an item the database does not.

Example:
    >>> from guards.config import Validation
    >>> StreamIndexes(Validation()).streams()
    0
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable

from guards.config import Validation
from guards.scopes import Scope, ScopeError
from guards.store import Store, Tx
from guards.validation import repo
from guards.validation.index import IndexCache, IndexKey, StreamIndex
from guards.validation.prepared import Prepared
from guards.validation.recheck import BagCache
from guards.validation.sketchers import MinHashSketcher, SimHashSketcher, Sketcher
from guards.validation.window import catch_up, read_window

__all__ = ["DAY", "StreamIndexes", "sketcher_for"]

log = logging.getLogger(__name__)
DAY = 86_400.0
HOUR = 3600.0
MB = 1 << 20
#: (agent, stream name) -> stream id, remembered so a warm stream costs no query; cleared
#: when full (streams are per agent, so this is the fleet's size, not traffic's)
_STREAM_IDS_MAX = 100_000
#: windows read off the writer at once (each holds a thread and, at most, one index)
_CONCURRENT_LOADS = 2
_LOGGED_LOAD = 10_000


def sketcher_for(config: Validation) -> Sketcher:
    """The sketch the policy asks for."""
    near = config.near_duplicate
    if near.method == "simhash":
        return SimHashSketcher(max_distance=near.max_distance)
    return MinHashSketcher(threshold=near.threshold)


LEGACY_NEWEST = "SELECT max(at) FROM validation_items WHERE at >= ? AND kind = ?"


class StreamIndexes:
    """Each stream's index of sketches, in a bounded cache, loaded ahead or in the write.

    :meth:`memory_bytes`, :meth:`remembered`, :meth:`streams`, :attr:`loads` and
    :attr:`evictions` describe the cache (the process exports them as metrics).
    """

    def __init__(self, config: Validation) -> None:
        self.config = config
        self.sketcher = sketcher_for(config)
        self._indexes = IndexCache(max_bytes=config.index_memory_mb * MB)
        # indexes that hold inserts (or rows loaded) not yet known to be committed
        self._unconfirmed: set[IndexKey] = set()
        self._stream_ids: dict[tuple[str, str], int] = {}
        self._loading: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._load_slots: asyncio.Semaphore | None = None
        #: windows loaded from rows since the start (off the writer or in it)
        self.loads = 0
        self._warned: tuple[float, int] | None = None  # when, and at how many evictions
        #: the feature bags of items remembered lately, for the exact re-check
        self.bags = BagCache()
        # until when rows of the sketcher's legacy kind may be in a window (None: unknown)
        self._legacy_until: float | None = None
        self._legacy_lookup: asyncio.Task[float | None] | None = None

    def attach(self, store: Store) -> None:
        store.on_rollback.append(self.forget)

    def forget(self) -> None:
        """Writes were rolled back: drop every index that may hold some of them."""
        for key in self._unconfirmed:
            self._indexes.pop(key)
        self._unconfirmed.clear()

    def _confirm(self) -> None:
        for key in self._unconfirmed:
            index = self._indexes.peek(key)
            if index is not None:
                index.commit()
        self._unconfirmed.clear()

    def remembered(self) -> int:
        """Items held in memory across all cached streams (safe from any thread)."""
        return sum(len(index) for _, index in self._indexes.items_held())

    def memory_bytes(self) -> int:
        """Bytes held by the cached indexes (for metrics; safe from any thread)."""
        return sum(index.nbytes() for _, index in self._indexes.items_held())

    def streams(self) -> int:
        """Streams whose index is held in memory."""
        return len(self._indexes)

    @property
    def indexes(self) -> IndexCache:
        """The per-stream index cache (its ``max_bytes`` is ``index_memory_mb`` in bytes)."""
        return self._indexes

    @property
    def evictions(self) -> int:
        """Indexes dropped to stay within ``index_memory_mb``, since the start."""
        return self._indexes.evictions

    # -- loading a window off the writer -------------------------------------------------

    async def warm(
        self,
        store: Store,
        prepared: Prepared,
        *,
        allowed: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Load the stream's window before the write that checks ``prepared``.

        ``allowed`` is asked before a load starts (the caller's token must cover the
        scope: a stranger must not make Nightshift read windows and evict others).

        A stream whose index is in memory costs two dict lookups. Otherwise its live
        items are read and indexed on a worker thread (:func:`read_window`), so the write
        only catches up on the rows added since instead of holding every other writer
        while it reads the whole window. Concurrent batches of one stream share one
        load. Nothing here decides anything: a failed or skipped warm-up only means the
        write loads the window itself.
        """
        if not self.config.near_duplicate.enabled or prepared.runaway:
            return
        if prepared.kind != self.sketcher.kind:
            return
        try:
            agent = Scope.parse(prepared.batch.scope, min_depth=3).agent()
        except ScopeError:
            return  # the write answers the 400
        if agent is None:
            return
        ident = (agent, prepared.stream)
        stream_id = self._stream_ids.get(ident)
        now = store.clock.now()
        legacy = self.sketcher.legacy_kind if self.legacy_live(now) is not False else None
        kinds = [prepared.kind] + ([legacy] if legacy else [])
        held = self._indexes.get
        if stream_id is not None and all(held((stream_id, k)) is not None for k in kinds):
            return
        if allowed is not None and not await allowed():
            return  # the write answers the 401 or 403
        if legacy is not None and self.legacy_live(now) is None:
            await self._look_for_legacy(store, legacy, now)
            if not self.legacy_live(now):
                kinds = [prepared.kind]
        tasks = []
        for kind in kinds:
            loading = (agent, prepared.stream, kind)
            task = self._loading.get(loading)
            if task is None:
                task = asyncio.create_task(self._load(store, ident, kind))
                self._loading[loading] = task
                task.add_done_callback(self._loaded(loading))
            tasks.append(asyncio.shield(task))
        await asyncio.gather(*tasks)

    def _loaded(self, loading: tuple[str, str, str]) -> Callable[[object], None]:
        """The done-callback of a load: it is no longer under way."""

        def done(_: object) -> None:
            self._loading.pop(loading, None)

        return done

    def legacy_live(self, now: float) -> bool | None:
        """Whether rows of the sketcher's legacy kind may be in a window at ``now``
        (None: not looked up yet; no new ones are written, so it only turns False)."""
        if self.sketcher.legacy_kind is None:
            return False
        if self._legacy_until is None:
            return None
        if now < self._legacy_until:
            return True
        self._legacy_until = float("-inf")  # they have all left: nothing more to sketch twice
        return False

    def _legacy_newest_is(self, newest: float | None) -> None:
        """The newest row of the legacy kind in a window was written at ``newest`` (None:
        there is none): they all leave the window a window after it."""
        if self._legacy_until is None:
            at = float("-inf") if newest is None else float(newest)
            self._legacy_until = at + self.config.window_days * DAY

    async def _look_for_legacy(self, store: Store, kind: str, now: float) -> None:
        """Find when the newest row of ``kind`` leaves the window: once a process, off the
        writer, one look-up shared by the batches that ask at once."""
        if self._legacy_lookup is None:
            not_before = now - self.config.window_days * DAY
            self._legacy_lookup = asyncio.create_task(
                asyncio.to_thread(_legacy_newest, store.path, kind, not_before)
            )
        lookup = self._legacy_lookup
        try:
            newest = await asyncio.shield(lookup)
        except sqlite3.Error:  # the write looks it up itself
            log.warning("validation: could not look for older sketches ahead", exc_info=True)
            if self._legacy_lookup is lookup:
                self._legacy_lookup = None
            return
        self._legacy_newest_is(newest)

    async def _load(self, store: Store, ident: tuple[str, str], kind: str) -> None:
        sketcher = self.sketcher
        now = store.clock.now()
        not_before = now - self.config.window_days * DAY
        if self._load_slots is None:
            self._load_slots = asyncio.Semaphore(_CONCURRENT_LOADS)
        try:
            async with self._load_slots:
                loaded = await asyncio.to_thread(
                    read_window,
                    store.path,
                    agent=ident[0],
                    name=ident[1],
                    sketcher=sketcher,
                    not_before=not_before,
                    kind=kind,
                )
        except sqlite3.Error:
            log.warning("validation: could not read stream %s/%s ahead", *ident, exc_info=True)
            return
        if loaded is None:
            return  # a new stream: nothing to load
        stream_id, index = loaded
        self._remember_stream(ident, stream_id)
        key = (stream_id, kind)
        if key in self._indexes:
            return  # a write loaded it meanwhile: that one is up to date
        self._indexes.put(key, index)
        self.loads += 1
        level = logging.INFO if len(index) >= _LOGGED_LOAD else logging.DEBUG
        log.log(level, "validation: read %d items of stream %d ahead", len(index), stream_id)
        self._warn_if_tight(now)

    def _warn_if_tight(self, now: float) -> None:
        """At most hourly: say so when streams are being evicted (and so read again)."""
        evictions = self._indexes.evictions
        if evictions == 0 or (self._warned is not None and now - self._warned[0] < HOUR):
            return
        if self._warned is not None and evictions == self._warned[1]:
            return
        self._warned = (now, evictions)
        log.warning(
            "validation: index_memory_mb (%d) holds %d streams; %d evicted since the start,"
            " each read again on its next batch (%d loads): if nightshift_validation_index"
            "_loads_total keeps climbing, raise validation.index_memory_mb",
            self.config.index_memory_mb,
            len(self._indexes),
            evictions,
            self.loads,
        )

    def _remember_stream(self, ident: tuple[str, str], stream_id: int) -> None:
        if len(self._stream_ids) >= _STREAM_IDS_MAX:
            self._stream_ids.clear()
        self._stream_ids[ident] = stream_id

    # -- the index a write uses -----------------------------------------------------

    def _index(
        self, tx: Tx, stream_id: int, not_before: float, *, kind: str | None = None
    ) -> StreamIndex:
        """The stream's index: from memory, caught up if it was read ahead, else loaded.

        ``kind``: the index of the stream's rows of another (older) kind."""
        kind = kind or self.sketcher.kind
        key = (stream_id, kind)
        index = self._indexes.get(key)
        if index is not None:
            if index.behind is not None:
                self._catch_up(tx, key, index, not_before)
            return index
        index = StreamIndex(self.sketcher)  # not warmed: load it here, holding the writer
        index.extend(repo.iter_sketches(tx, stream_id=stream_id, kind=kind, not_before=not_before))
        self._indexes.put(key, index)
        self._unconfirmed.add(key)  # loaded inside a transaction that may yet fail
        self.loads += 1
        level = logging.INFO if len(index) >= _LOGGED_LOAD else logging.DEBUG
        log.log(level, "validation: loaded %d items of stream %d", len(index), stream_id)
        return index

    def _catch_up(self, tx: Tx, key: IndexKey, index: StreamIndex, not_before: float) -> None:
        """Add the stream's rows written since the index was read off the writer."""
        if catch_up(tx, key, index, not_before):
            self._unconfirmed.add(key)  # some may be this batch's, not committed yet

    def _compact(self, not_before: float) -> None:
        """Shrink the indexes that are half dead (after a prune committed)."""
        for key, index in self._indexes.items_held():
            if key in self._unconfirmed or index.uncommitted or index.behind is not None:
                continue
            if index.expired(not_before) * 2 >= len(index) > 0:
                fresh = index.compact(not_before)
                if len(fresh):
                    self._indexes.replace(key, fresh)
                else:  # an idle stream: nothing left to hold
                    self._indexes.pop(key)


def _legacy_newest(path: str, kind: str, not_before: float) -> float | None:
    """When the newest row of ``kind`` in the window was written (None: none is).

    Blocking (it may read a whole window): run it on a worker thread."""
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        conn.execute("PRAGMA query_only = 1")
        row = conn.execute(LEGACY_NEWEST, (not_before, kind)).fetchone()
        return None if row is None else row[0]
    finally:
        conn.close()
