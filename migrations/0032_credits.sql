-- Credits: a charge taken back (`/agent credit`, audit27 parity #9). A correcting entry,
-- as TigerBeetle's correcting transfer: nothing is edited, the credit lowers the spent
-- counters of every level above the reservation's scope in the periods its charge was
-- booked in (the reservation's period_day, period_week, period_month, and total).
-- A table of its own rather than a new kind in the journal: the journal's CHECK on kind
-- would take a rebuild of the largest table at upgrade. Append-only, as the journal is;
-- `ledger verify` adds it to the journal's sums, and checks that a reservation's credits
-- never exceed its charge.
CREATE TABLE credits (
    id              INTEGER PRIMARY KEY,
    at              REAL NOT NULL,
    reservation_id  TEXT NOT NULL REFERENCES reservations(id),
    amount_micros   INTEGER NOT NULL CHECK (amount_micros > 0),
    actor           TEXT NOT NULL,
    reason          TEXT NOT NULL CHECK (length(reason) > 0)
);
CREATE INDEX credits_reservation ON credits (reservation_id);
CREATE TRIGGER credits_no_update BEFORE UPDATE ON credits
BEGIN SELECT RAISE(ABORT, 'credits are append-only'); END;
CREATE TRIGGER credits_no_delete BEFORE DELETE ON credits
BEGIN SELECT RAISE(ABORT, 'credits are append-only'); END;
