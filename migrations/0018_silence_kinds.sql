-- A silence may name an alert kind, as `/agent alerts <filter>` reads one: a kind or a
-- family of kinds (`breaker_opened`) on every scope (`silence heartbeat_missed 1h`), or
-- on a scope and everything below it (`silence heartbeat_missed:acme 1h`). Before,
-- a silence held one fingerprint or one whole scope, and `kind:scope` was read as the
-- exact fingerprint. Those rows keep their meaning: kind is NULL for them.
--
-- The CHECK changes, which SQLite cannot alter: the table is rebuilt with the same ids
-- (alerts.silence_id names them; nothing references the table with a foreign key).
CREATE TABLE silences_0018 (
    id           INTEGER PRIMARY KEY,
    fingerprint  TEXT,
    scope        TEXT,
    alert_id     INTEGER,
    created_by   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL,
    ended_at     REAL,
    ended_by     TEXT,
    kind         TEXT,
    -- one fingerprint alone; or a scope, a kind, or both
    CHECK (CASE WHEN fingerprint IS NOT NULL THEN scope IS NULL AND kind IS NULL
                ELSE scope IS NOT NULL OR kind IS NOT NULL END)
);
INSERT INTO silences_0018 (id, fingerprint, scope, alert_id, created_by, created_at,
                           expires_at, ended_at, ended_by)
    SELECT id, fingerprint, scope, alert_id, created_by, created_at, expires_at, ended_at,
           ended_by
    FROM silences;
DROP TABLE silences;
ALTER TABLE silences_0018 RENAME TO silences;
CREATE INDEX silences_active ON silences (expires_at) WHERE ended_at IS NULL;
