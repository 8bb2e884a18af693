-- A campaign paused from the console or the admin API: its fire times pass without a run until
-- it is resumed (NULL: running).
ALTER TABLE campaign_state ADD COLUMN paused_at BIGINT;
