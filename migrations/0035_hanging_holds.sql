-- `alerts.hanging_after`: the open holds already raised as `hold_hanging`, each told once
-- (restarts and a changed hanging_after included). A row goes when its hold is no longer
-- open (settled, released, expired), so the table holds at most the open holds.
CREATE TABLE hanging_told (
    reservation_id  TEXT PRIMARY KEY,
    scope           TEXT NOT NULL,
    told_at         REAL NOT NULL
);
CREATE INDEX hanging_told_scope ON hanging_told (scope);
