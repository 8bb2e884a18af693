-- Finished jobs are pruned a week after they finish; a campaign run keeps the counts of the
-- ones already gone, so its sent and skipped figures do not fall as its jobs are pruned.

ALTER TABLE campaign_runs ADD COLUMN sent_pruned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaign_runs ADD COLUMN skipped_pruned INTEGER NOT NULL DEFAULT 0;
