"""Reading a stream's window of remembered items: off the writer ahead of a batch, then catching up.

A stream's near-duplicate index is built from its items of the last
``validation.window_days``. :func:`read_window` reads them on a worker thread,
through a read-only connection of its own, before the write that needs them; the
index it returns is :attr:`~guards.validation.index.StreamIndex.behind` the newest
item id of its snapshot, and :func:`catch_up` adds, inside the write, the rows
committed since. So the writer never holds every other request while a big window
is read.

Example:
    >>> # loaded = await asyncio.to_thread(read_window, store.path, agent=..., name=...,
    >>> #                                  sketcher=sketcher, not_before=now - 7 * 86400)
    >>> # ... later, inside store.write: catch_up(tx, key, index, not_before)
"""

from __future__ import annotations

import sqlite3
import time

from guards.store import Tx
from guards.validation.index import IndexKey, StreamIndex
from guards.validation.sketchers import Sketcher

__all__ = ["catch_up", "read_window"]

# a window read off the writer is indexed 1,000 rows at a time with a pause between, so
# the event loop and the writer thread get the GIL every few ms: a 50k-item window kept
# other writes waiting up to ~50 ms in 10k-row chunks, ~10 ms like this, for +25 ms
LOAD_CHUNK = 1000
LOAD_PAUSE = 0.0005
#: a catch-up reads the rows added since by id while there are at most this many
#: (any stream's); past that, the stream's own rows through its index
CATCH_UP_BY_ID = 20_000

_STREAM_ID = "SELECT id FROM validation_streams WHERE agent = ? AND name = ?"
_NEWEST_ITEM = "SELECT max(id) FROM validation_items"
_WINDOW = (
    "SELECT id, at, sketch FROM validation_items"
    " WHERE stream_id = ? AND kind = ? AND at >= ? ORDER BY id"
)
# rows added since ``id``: by the primary key (the unary + keeps the planner off the
# stream index), or through the stream's own index when many streams added many rows
_SINCE_BY_ID = (
    "SELECT id, at, sketch FROM validation_items"
    " WHERE id > ? AND +stream_id = ? AND kind = ? AND at >= ? ORDER BY id"
)
_SINCE_IN_STREAM = (
    "SELECT id, at, sketch FROM validation_items"
    " WHERE stream_id = ? AND kind = ? AND at >= ? AND id > ? ORDER BY id"
)


def read_window(
    path: str,
    *,
    agent: str,
    name: str,
    sketcher: Sketcher,
    not_before: float,
    kind: str | None = None,
) -> tuple[int, StreamIndex] | None:
    """A stream's id and its live items' index, read through a connection of its own.

    Blocking: run it on a worker thread. The reads share one snapshot, and the index's
    :attr:`~guards.validation.index.StreamIndex.behind` is the newest item id of that
    snapshot, from which a write catches up. None when the stream does not exist yet.
    ``kind``: the rows of another (older) kind than the sketcher's.
    """
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("BEGIN")
        row = conn.execute(_STREAM_ID, (agent, name)).fetchone()
        if row is None:
            return None
        index = StreamIndex(sketcher)
        index.behind = int(conn.execute(_NEWEST_ITEM).fetchone()[0] or 0)
        cur = conn.execute(_WINDOW, (row[0], kind or sketcher.kind, not_before))
        while rows := cur.fetchmany(LOAD_CHUNK):
            index.extend(rows)
            time.sleep(LOAD_PAUSE)  # not a clock read: it hands over the GIL
        index.commit()
        return int(row[0]), index
    finally:
        conn.close()


def catch_up(tx: Tx, key: IndexKey, index: StreamIndex, not_before: float) -> bool:
    """Add the stream's rows written since the index was read; True when any were added.

    Rows added here may be the current batch's, not committed yet.
    """
    through = index.behind or 0
    index.behind = None
    newest = int(tx.one(_NEWEST_ITEM)[0] or 0)
    if newest <= through:
        return False
    stream_id, kind = key
    if newest - through <= CATCH_UP_BY_ID:
        rows = tx.execute(_SINCE_BY_ID, (through, stream_id, kind, not_before))
    else:  # read ahead long ago (its batch was refused, say): walk the stream instead
        rows = tx.execute(_SINCE_IN_STREAM, (stream_id, kind, not_before, through))
    before = len(index)
    index.extend(rows)
    return len(index) > before
