-- A validation's idempotency key names one call of one token, as a reservation's does
-- (issue 2: idempotency per token + key; recheck24 M2): another token's batch under the
-- same key in the same stream was answered with the first token's replayed answer
-- ("ok, accepted"), though sent fresh the same items are duplicates. The table is
-- rebuilt with the token in its key; rows kept from before carry no token ('') and
-- match no call again (a retry across the upgrade is judged anew).
CREATE TABLE validation_calls_by_token (
    stream_id        INTEGER NOT NULL REFERENCES validation_streams(id),
    token_id         TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    answer           TEXT NOT NULL,
    at               REAL NOT NULL,
    PRIMARY KEY (stream_id, token_id, idempotency_key)
);
INSERT INTO validation_calls_by_token
    (stream_id, token_id, idempotency_key, request_hash, answer, at)
    SELECT stream_id, '', idempotency_key, request_hash, answer, at FROM validation_calls;
DROP TABLE validation_calls;
ALTER TABLE validation_calls_by_token RENAME TO validation_calls;
CREATE INDEX validation_calls_at ON validation_calls (at);
