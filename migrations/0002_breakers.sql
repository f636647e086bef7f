-- Circuit breakers: one row per breaker (agent, user or namespace path, or model:<name>),
-- every transition as an append-only row, attempts per task, and an index to rebuild
-- the spend-rate windows from recent charges after a restart.

CREATE TABLE breakers (
    key                   TEXT PRIMARY KEY,
    kind                  TEXT NOT NULL CHECK (kind IN ('namespace', 'user', 'agent', 'model')),
    state                 TEXT NOT NULL CHECK (state IN
                              ('closed', 'open', 'half_open_pending', 'half_open', 'forced_open')),
    reason                TEXT NOT NULL DEFAULT '',
    trip                  TEXT,
    origin                TEXT,
    figures               TEXT NOT NULL DEFAULT '{}',
    since                 REAL NOT NULL,
    -- an open breaker's cool-down ends at opened_at + cooldown_seconds (derived, never a timer)
    opened_at             REAL,
    cooldown_seconds      INTEGER NOT NULL DEFAULT 0,
    reopens               INTEGER NOT NULL DEFAULT 0,
    trial_calls           INTEGER NOT NULL DEFAULT 0,
    trial_budget_micros   INTEGER NOT NULL DEFAULT 0,
    trial_holds           TEXT NOT NULL DEFAULT '{}',
    trial_charged_micros  INTEGER NOT NULL DEFAULT 0,
    trial_succeeded       INTEGER NOT NULL DEFAULT 0,
    -- the failure window: a JSON list, null for a success, the failing agent for a failure
    recent                TEXT NOT NULL DEFAULT '[]',
    consecutive           INTEGER NOT NULL DEFAULT 0,
    spend_reset_at        REAL,
    updated_at            REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX breakers_state ON breakers (state);

CREATE TABLE breaker_transitions (
    id          INTEGER PRIMARY KEY,
    scope       TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    trip        TEXT,
    figures     TEXT NOT NULL DEFAULT '{}',
    actor       TEXT NOT NULL,
    at          REAL NOT NULL
);
CREATE INDEX breaker_transitions_scope ON breaker_transitions (scope, at);
CREATE TRIGGER breaker_transitions_no_update BEFORE UPDATE ON breaker_transitions
BEGIN SELECT RAISE(ABORT, 'breaker transitions are append-only'); END;
CREATE TRIGGER breaker_transitions_no_delete BEFORE DELETE ON breaker_transitions
BEGIN SELECT RAISE(ABORT, 'breaker transitions are append-only'); END;

-- Granted reservations (attempts) per task of an agent, and the refusals past the limit.
CREATE TABLE breaker_attempts (
    agent     TEXT NOT NULL,
    task_id   TEXT NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0,
    refused   INTEGER NOT NULL DEFAULT 0,
    first_at  REAL NOT NULL,
    last_at   REAL NOT NULL,
    PRIMARY KEY (agent, task_id)
) WITHOUT ROWID;

-- Recent charges, to rebuild the in-memory spend-rate windows after a restart.
CREATE INDEX breaker_recent_charges ON reservations (finished_at) WHERE state = 'settled';
