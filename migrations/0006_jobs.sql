-- Scheduled agent jobs and the daily digest (bot/jobs, bot/digest).
--
-- The schedule is derived from these rows: job_schedule holds the last fire time each
-- job has dealt with (run or skipped), so after a restart the runner knows which fires
-- it missed. Times are POSIX seconds (UTC) from the engine's clock.

CREATE TABLE job_schedule (
    job                 TEXT PRIMARY KEY,
    last_scheduled_for  REAL NOT NULL,
    updated_at          REAL NOT NULL
) WITHOUT ROWID;

-- The kill switch: a row per paused job, or job = '*' for all of them.
CREATE TABLE job_pauses (
    job        TEXT PRIMARY KEY,
    paused_by  TEXT NOT NULL,
    paused_at  REAL NOT NULL
) WITHOUT ROWID;

-- Every fire: a run (running, then succeeded / failed / timeout / abandoned) or a skip
-- with its reason (paused, overlap, run_cap, breaker_open, budget_spent, missed).
CREATE TABLE job_runs (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    job            TEXT NOT NULL,
    scope          TEXT NOT NULL,
    scheduled_for  REAL NOT NULL,
    decided_at     REAL NOT NULL,
    state          TEXT NOT NULL CHECK (state IN
                       ('running', 'succeeded', 'failed', 'timeout', 'abandoned', 'skipped')),
    reason         TEXT,
    detail         TEXT,
    http_status    INTEGER,
    finished_at    REAL,
    duration_ms    INTEGER
);
CREATE INDEX job_runs_job_time ON job_runs (job, decided_at);
CREATE INDEX job_runs_time ON job_runs (decided_at);
CREATE INDEX job_runs_running ON job_runs (job) WHERE state = 'running';

-- The secrets of jobs without a `secret:` in the policy are derived from:
-- HMAC-SHA256(key, job name), hex. One random key per database.
CREATE TABLE job_secret_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    key         BLOB NOT NULL,
    created_at  REAL NOT NULL
);

-- Digests posted, one per namespace and local day: catch-up posts each day once.
CREATE TABLE digests (
    namespace  TEXT NOT NULL,
    day        TEXT NOT NULL,
    posted_at  REAL NOT NULL,
    channel    TEXT NOT NULL,
    text       TEXT NOT NULL,
    blocks     TEXT NOT NULL,
    chart      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, day)
) WITHOUT ROWID;

-- The digest's charges per namespace, local day (the hold's day, as budgets count it)
-- and model, added to by a ledger gate at every settle (bot/digest/rollup.py), so the
-- digest reads a few rows however many charges a day holds. model '' = none named.
CREATE TABLE digest_model_daily (
    namespace       TEXT NOT NULL,
    day             TEXT NOT NULL,
    model           TEXT NOT NULL,
    calls           INTEGER NOT NULL,
    charged_micros  INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    overruns        INTEGER NOT NULL,
    overrun_micros  INTEGER NOT NULL,
    PRIMARY KEY (namespace, day, model)
) WITHOUT ROWID;

-- Charges settled before this migration.
INSERT INTO digest_model_daily
    (namespace, day, model, calls, charged_micros, failed, overruns, overrun_micros)
SELECT substr(scope, 1, instr(scope, '/') - 1), period_day, COALESCE(model, ''), COUNT(*),
       SUM(charged_micros), SUM(outcome != 'success'), SUM(overrun_micros > 0),
       SUM(overrun_micros)
FROM reservations WHERE state = 'settled' GROUP BY 1, 2, 3;
