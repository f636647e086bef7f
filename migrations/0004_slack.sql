-- The Slack outbox: every outgoing Slack call is a row written in the same transaction
-- as the change that caused it, then delivered by one worker (bot/outbox.py).
--
-- `channel` is the pacing and ordering key (a channel id, a user id for a DM, ...).
-- `created_at` comes from the engine's clock; `due_at`, `first_try_at` and
-- `finished_at` from the delivery clock (the wall clock: Slack's rate limits are real time).

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    ref             TEXT UNIQUE,
    method          TEXT NOT NULL,
    channel         TEXT NOT NULL,
    args            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          REAL NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    first_try_at    REAL,
    finished_at     REAL,
    result_channel  TEXT,
    result_ts       TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (channel, id) WHERE state = 'pending';
CREATE INDEX outbox_failed ON outbox (id) WHERE state = 'failed';
