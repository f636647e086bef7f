-- A breaker closed by a trial that passed is on probation for a while: tripping again
-- within it counts as a re-open (the cool-down keeps doubling) rather than a first trip.
-- NULL: not on probation (never closed by a trial, the probation over, or closed by hand).
ALTER TABLE breakers ADD COLUMN probation_until REAL;
