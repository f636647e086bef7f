-- When the first refusal of each agent, day and reason came (recheck27 Kd L2): refusals
-- are counted per day, so a namespace whose first sign was a refused call was dated from
-- the start of that day ("began today at 00:00" for a call refused at 15:38). Written
-- with the row, in the same one statement, and kept by every later refusal of the row; in
-- whole seconds. NULL on the rows counted before this migration: the time is not known.
ALTER TABLE refusals_daily ADD COLUMN first_at REAL;
