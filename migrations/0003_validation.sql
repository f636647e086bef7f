-- Post-execution validation: streams of agent output, the items remembered in
-- them (fingerprints only, never the text), and every rejection with a preview.

-- A stream is an agent scope plus a name the agent picks ("posts", "replies").
-- in_burst/last_duplicate_at drive DuplicateBurst: one event per burst.
CREATE TABLE validation_streams (
    id                 INTEGER PRIMARY KEY,
    agent              TEXT NOT NULL,
    name               TEXT NOT NULL,
    created_at         REAL NOT NULL,
    last_duplicate_at  REAL,
    in_burst           INTEGER NOT NULL DEFAULT 0 CHECK (in_burst IN (0, 1)),
    UNIQUE (agent, name)
);

-- Accepted items: the exact fingerprint (64-bit hash of the normalised text) and
-- the near-duplicate sketch of the method named by kind. AUTOINCREMENT: ids never
-- come back after a prune, so a rejection's matched_item_id names one item forever.
CREATE TABLE validation_items (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id  INTEGER NOT NULL REFERENCES validation_streams(id),
    at         REAL NOT NULL,
    exact      INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    sketch     BLOB NOT NULL,
    ref        TEXT
);
CREATE INDEX validation_items_exact ON validation_items (stream_id, exact);
CREATE INDEX validation_items_at ON validation_items (at);

-- One row per rejected item; a runaway batch is one row (item_index NULL) that
-- covers batch_size items.
CREATE TABLE validation_rejections (
    id               INTEGER PRIMARY KEY,
    at               REAL NOT NULL,
    stream_id        INTEGER NOT NULL REFERENCES validation_streams(id),
    scope            TEXT NOT NULL,
    stream           TEXT NOT NULL,
    reason           TEXT NOT NULL
        CHECK (reason IN ('duplicate', 'near_duplicate', 'runaway', 'empty', 'too_large')),
    item_index       INTEGER,
    item_ref         TEXT,
    preview          TEXT NOT NULL CHECK (length(preview) <= 200),
    matched_item_id  INTEGER,
    matched_ref      TEXT,
    matched_at       REAL,
    similarity       REAL,
    batch_size       INTEGER NOT NULL,
    expected_count   INTEGER
);
CREATE INDEX validation_rejections_scope ON validation_rejections (scope, at);
CREATE INDEX validation_rejections_stream ON validation_rejections (stream_id, at);
CREATE INDEX validation_rejections_at ON validation_rejections (at);
