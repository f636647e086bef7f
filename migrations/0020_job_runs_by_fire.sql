-- After the clock goes back, a job's schedule goes on from the new time: a fire it
-- already ran is looked up by (job, scheduled_for) so that it is not run again.
CREATE INDEX job_runs_job_fire ON job_runs (job, scheduled_for);
