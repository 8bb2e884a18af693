-- Only open jobs are ever looked up by due time. Finished ones (done, dead, skipped, cancelled)
-- made the due index grow with every job ever run, and moving a finished job into it was a
-- second index write on every job's finish.

DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (status, run_at) WHERE status IN ('pending', 'sending');
