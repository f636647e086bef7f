-- The calls refused on a day, by day (review28 R2 H1): `/agent status` lists an agent
-- known only by refused calls while it was refused in its namespace's day so far, and
-- reads those rows alone. refusals_daily is never pruned and keyed by scope first, so
-- without this index that read was a scan of every day ever counted. A refusal writes
-- to it only when it makes a new row (the first of its agent, day and reason); the
-- refusals after it change `calls`, which the index does not hold.
CREATE INDEX refusals_daily_day ON refusals_daily (day, scope);
