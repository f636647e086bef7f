-- The heartbeat watchdog forgives agents the time Nightshift was down (their beats were
-- lost, not missed), and only that: the last instant a run was alive is kept, and each
-- start records the gap since as a downtime. A crash loop then forgives its few seconds
-- of downtime, not a whole detection window per restart (bot/alerts/heartbeats.py).
CREATE TABLE watchdog_alive (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    alive_at REAL NOT NULL
);
CREATE TABLE watchdog_downtime (
    id INTEGER PRIMARY KEY,
    down_from REAL NOT NULL,
    down_until REAL NOT NULL
);
CREATE INDEX watchdog_downtime_until ON watchdog_downtime (down_until);
