-- A silence may be booked ahead, with a reason: `/agent silence acme 2h from sat 02:00
-- -- provider maintenance`. starts_at NULL (every silence before): active from
-- created_at, as before. started_at: when the tick silenced the open alerts a booked
-- silence matches at its start (NULL until then: each booked silence starts once,
-- across restarts). reason: as typed (escaped where it is shown).
ALTER TABLE silences ADD COLUMN starts_at REAL;
ALTER TABLE silences ADD COLUMN started_at REAL;
ALTER TABLE silences ADD COLUMN reason TEXT;
