-- `oncall.notify_shift_start`: the DM each person gets when their shift of a rotation
-- starts (a hand-off, or an override beginning), said once per shift, restarts included.
-- `starts_at` is the shift's (or the override's) start, `ends_at` its planned end: a row
-- is kept a day past it, then pruned by the tick that writes them.
CREATE TABLE oncall_shift_notices (
    rotation   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    starts_at  REAL NOT NULL,
    ends_at    REAL NOT NULL,
    said_at    REAL NOT NULL,
    PRIMARY KEY (rotation, user_id, starts_at)
);
