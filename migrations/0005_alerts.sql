-- Alerts: groups of firings by fingerprint (kind:scope), silences, escalation steps,
-- on-call overrides and agent heartbeats. Every timer (escalation, throttled update,
-- silence expiry, heartbeat watchdog) is derived from these rows.

-- One row per alert group. A group is open while resolved_at IS NULL; at most one
-- open group per fingerprint. esc_step/esc_at: the next step of the escalation chain
-- (flattened over repeats: round * steps + step) and when it is due.
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY,
    fingerprint     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    scope           TEXT NOT NULL,
    tier            TEXT NOT NULL CHECK (tier IN ('P0', 'P1', 'P2')),
    count           INTEGER NOT NULL DEFAULT 1,
    first_event_id  INTEGER,
    last_event_id   INTEGER,
    first_at        REAL NOT NULL,
    last_at         REAL NOT NULL,
    facts           TEXT NOT NULL,
    silence_id      INTEGER,
    was_silenced    INTEGER NOT NULL DEFAULT 0,
    channel         TEXT,
    posted_at       REAL,
    updated_at      REAL,
    updates         INTEGER NOT NULL DEFAULT 0,
    dirty           INTEGER NOT NULL DEFAULT 0,
    oncall_user     TEXT,
    esc_step        INTEGER,
    esc_at          REAL,
    acked_at        REAL,
    acked_by        TEXT,
    resolved_at     REAL,
    resolved_by     TEXT,
    resolve_reason  TEXT
);
CREATE UNIQUE INDEX alerts_open_fingerprint ON alerts (fingerprint) WHERE resolved_at IS NULL;
CREATE INDEX alerts_first_at ON alerts (first_at);
CREATE INDEX alerts_open_kind ON alerts (kind) WHERE resolved_at IS NULL;
CREATE INDEX alerts_escalation_due ON alerts (esc_at) WHERE esc_at IS NOT NULL;
CREATE INDEX alerts_dirty ON alerts (updated_at) WHERE dirty = 1;

-- A silence matches one fingerprint, or every alert at or below a scope, until it expires
-- (or is lifted: ended_at). It holds across resolve/re-fire cycles.
CREATE TABLE silences (
    id           INTEGER PRIMARY KEY,
    fingerprint  TEXT,
    scope        TEXT,
    alert_id     INTEGER,
    created_by   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL,
    ended_at     REAL,
    ended_by     TEXT,
    CHECK ((fingerprint IS NULL) <> (scope IS NULL))
);
CREATE INDEX silences_active ON silences (expires_at) WHERE ended_at IS NULL;

-- Every escalation step taken: who was notified, when, and who pressed Escalate now.
CREATE TABLE escalations (
    id         INTEGER PRIMARY KEY,
    alert_id   INTEGER NOT NULL REFERENCES alerts(id),
    step       INTEGER NOT NULL,
    notify     TEXT NOT NULL,
    target     TEXT,
    at         REAL NOT NULL,
    manual_by  TEXT
);
CREATE INDEX escalations_alert ON escalations (alert_id);

-- "/agent oncall override @user 4h": the user takes the rotation until ends_at.
CREATE TABLE oncall_overrides (
    id          INTEGER PRIMARY KEY,
    rotation    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    starts_at   REAL NOT NULL,
    ends_at     REAL NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX oncall_overrides_rotation ON oncall_overrides (rotation, ends_at);

-- The last heartbeat per agent; missed_at is set while a missed-heartbeat alert is raised.
CREATE TABLE heartbeats (
    scope       TEXT PRIMARY KEY,
    last_seen   REAL NOT NULL,
    status      TEXT,
    detail      TEXT,
    first_seen  REAL NOT NULL,
    beats       INTEGER NOT NULL DEFAULT 1,
    missed_at   REAL
) WITHOUT ROWID;

-- Outages: from when an agent's heartbeat was first overdue until it came back (for uptime).
CREATE TABLE heartbeat_gaps (
    id          INTEGER PRIMARY KEY,
    scope       TEXT NOT NULL,
    down_from   REAL NOT NULL,
    down_until  REAL
);
CREATE INDEX heartbeat_gaps_scope ON heartbeat_gaps (scope, down_from);

-- Events recorded before alerting existed are history, not news: do not page for them.
UPDATE events SET dispatched_at = at WHERE dispatched_at IS NULL;
