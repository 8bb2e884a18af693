-- Follow-ups, campaigns, handoffs and once_per.

ALTER TABLE jobs RENAME COLUMN request TO work;     -- JSON JobWork: a call or a local change
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'action';  -- action, follow_up, campaign
ALTER TABLE jobs ADD COLUMN key TEXT;               -- follow-up key, for cancel and replace
ALTER TABLE jobs ADD COLUMN contact TEXT;           -- phone the job is about (opt-out, unless)
ALTER TABLE jobs ADD COLUMN unless TEXT;            -- JSON conditions checked when due
ALTER TABLE jobs ADD COLUMN vars TEXT;              -- JSON event context kept for `unless.if`
ALTER TABLE jobs ADD COLUMN campaign_run INTEGER;
CREATE INDEX jobs_pending_key ON jobs (key) WHERE status = 'pending' AND key IS NOT NULL;
CREATE INDEX jobs_by_run ON jobs (campaign_run) WHERE campaign_run IS NOT NULL;

CREATE TABLE chat_state (
    chat_id       TEXT    PRIMARY KEY,
    handoff_until INTEGER,
    resume_on     TEXT,
    handoff_rule  TEXT,
    handoff_since INTEGER
) WITHOUT ROWID;

CREATE TABLE rule_fires (
    rule     TEXT    NOT NULL,
    chat_id  TEXT    NOT NULL,
    fired_at INTEGER NOT NULL,
    PRIMARY KEY (rule, chat_id)
) WITHOUT ROWID;

CREATE TABLE campaign_state (
    name       TEXT    PRIMARY KEY,
    checked_at INTEGER NOT NULL       -- fire times up to here have been handled
) WITHOUT ROWID;

CREATE TABLE campaign_runs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign   TEXT    NOT NULL,
    fire_at    INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    trigger    TEXT    NOT NULL,      -- schedule, catch_up, manual
    planned    INTEGER NOT NULL,
    skipped    INTEGER NOT NULL,      -- left out when planned (opted out, excluded, invalid)
    UNIQUE (campaign, fire_at)
);
