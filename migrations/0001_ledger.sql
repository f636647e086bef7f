-- The ledger: scopes, tokens, reservations (two-phase holds), daily usage counters,
-- the append-only journal they are recomputed from, events and the audit log.

CREATE TABLE scopes (
    path        TEXT PRIMARY KEY,
    parent      TEXT REFERENCES scopes(path),
    depth       INTEGER NOT NULL CHECK (depth BETWEEN 1 AND 4),
    created_at  REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    scope       TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    label       TEXT,
    created_at  REAL NOT NULL,
    revoked_at  REAL
);

-- Limits set at run time (/agent budget set); they override the policy file.
CREATE TABLE budget_limits (
    scope         TEXT NOT NULL,
    window        TEXT NOT NULL CHECK (window IN ('day', 'week', 'month', 'total')),
    limit_micros  INTEGER NOT NULL CHECK (limit_micros >= 0),
    set_by        TEXT NOT NULL,
    set_at        REAL NOT NULL,
    PRIMARY KEY (scope, window)
) WITHOUT ROWID;

CREATE TABLE reservations (
    id               TEXT PRIMARY KEY,
    token_id         TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    scope            TEXT NOT NULL,
    task_id          TEXT,
    model            TEXT,
    state            TEXT NOT NULL CHECK (state IN ('held', 'settled', 'released', 'expired')),
    held_micros      INTEGER NOT NULL CHECK (held_micros > 0),
    charged_micros   INTEGER NOT NULL DEFAULT 0 CHECK (charged_micros >= 0),
    released_micros  INTEGER NOT NULL DEFAULT 0 CHECK (released_micros >= 0),
    overrun_micros   INTEGER NOT NULL DEFAULT 0 CHECK (overrun_micros >= 0),
    outcome          TEXT,
    error            TEXT,
    settle_hash      TEXT,
    route_id         TEXT,
    period_day       TEXT NOT NULL,
    period_week      TEXT NOT NULL,
    period_month     TEXT NOT NULL,
    created_at       REAL NOT NULL,
    expires_at       REAL NOT NULL,
    finished_at      REAL,
    expired_at       REAL,
    UNIQUE (token_id, idempotency_key)
);
CREATE INDEX reservations_due ON reservations (expires_at) WHERE state = 'held';
CREATE INDEX reservations_scope_time ON reservations (scope, created_at);

-- spent and held per scope and local day (the namespace's time zone). Week, month and
-- total windows are sums of days; the writer keeps those sums in memory.
CREATE TABLE usage_daily (
    scope         TEXT NOT NULL,
    day           TEXT NOT NULL,
    spent_micros  INTEGER NOT NULL DEFAULT 0,
    held_micros   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, day)
) WITHOUT ROWID;

-- Append-only: every change of held or spent money, by reservation.
CREATE TABLE journal (
    id              INTEGER PRIMARY KEY,
    at              REAL NOT NULL,
    reservation_id  TEXT NOT NULL REFERENCES reservations(id),
    kind            TEXT NOT NULL CHECK (kind IN ('hold', 'settle', 'release', 'expire')),
    held_delta      INTEGER NOT NULL,
    spent_delta     INTEGER NOT NULL
);
CREATE INDEX journal_reservation ON journal (reservation_id);
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    at             REAL NOT NULL,
    kind           TEXT NOT NULL,
    scope          TEXT NOT NULL,
    payload        TEXT NOT NULL,
    dispatched_at  REAL
);
CREATE INDEX events_pending ON events (id) WHERE dispatched_at IS NULL;
CREATE INDEX events_kind_time ON events (kind, at);

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    before  TEXT,
    after   TEXT,
    detail  TEXT
);
