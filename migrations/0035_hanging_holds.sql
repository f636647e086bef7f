-- `alerts.hanging_after`: how far the sweep of hanging holds has told. Every hold taken
-- at or before `horizon` and still open was raised as `hold_hanging` once; the next sweep
-- raises those taken after it (each hold is told once, restarts included). One row.
CREATE TABLE hanging_sweep (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    horizon  REAL NOT NULL
);
