-- Validation calls by idempotency key (review of audit G, finding 1): a batch sent
-- again with its key (a retry after a timeout) gets the answer the first one got,
-- and nothing is stored or counted twice. Kept for the stream's window.
CREATE TABLE validation_calls (
    stream_id        INTEGER NOT NULL REFERENCES validation_streams(id),
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    answer           TEXT NOT NULL,
    at               REAL NOT NULL,
    PRIMARY KEY (stream_id, idempotency_key)
);
CREATE INDEX validation_calls_at ON validation_calls (at);
