-- The schema of a database several instances share. Times are Unix milliseconds (UTC), as in
-- the SQLite file, so both backends read and write the same values.

-- Every body answered with a 2xx. An instance claims unprocessed bodies for a lease
-- (`FOR UPDATE SKIP LOCKED`, never a cursor, so a body committed late is never skipped). A
-- body is claimed only once every earlier unprocessed body about one of its chats is done, so
-- a chat's events are processed, and answered, in order whichever instance takes them.
CREATE TABLE inbound (
    id           BIGSERIAL PRIMARY KEY,
    source       TEXT   NOT NULL,            -- 'webhook' or 'custom'
    name         TEXT   NOT NULL,            -- webhook path, or custom event name
    method       TEXT   NOT NULL,
    body         TEXT   NOT NULL,
    received_at  BIGINT NOT NULL,
    processed_at BIGINT,
    claimed_by   TEXT,
    lease_until  BIGINT
);
-- Small: only the work not done yet.
CREATE INDEX inbound_open ON inbound (id) WHERE processed_at IS NULL;

-- The chats of the bodies not processed yet (a row per body and chat, deleted when the body
-- is): "an earlier body about the same chat is still open" is two index lookups.
CREATE TABLE inbound_chats (
    chat       TEXT   NOT NULL,
    inbound_id BIGINT NOT NULL,
    PRIMARY KEY (chat, inbound_id)
);
CREATE INDEX inbound_chats_by_body ON inbound_chats (inbound_id);
CREATE INDEX inbound_done ON inbound (id) WHERE processed_at IS NOT NULL;

-- Events already processed; the unique key decides which completion took an event.
CREATE TABLE dedupe (
    key        TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE contacts (
    phone      TEXT   PRIMARY KEY,
    attrs      JSONB  NOT NULL DEFAULT '{}',
    updated_at BIGINT NOT NULL
);

CREATE TABLE contact_tags (
    phone    TEXT   NOT NULL,
    tag      TEXT   NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (phone, tag)
);
CREATE INDEX contact_tags_by_tag ON contact_tags (tag);

-- Work for later or for delivery. A lane (one chat on one channel) is served in id order.
CREATE TABLE jobs (
    id           BIGSERIAL PRIMARY KEY,
    lane         TEXT    NOT NULL,
    channel      TEXT,
    kind         TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    event        TEXT    NOT NULL,
    work         TEXT    NOT NULL,
    status       TEXT    NOT NULL,           -- pending, sending, done, dead, cancelled, skipped
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       BIGINT  NOT NULL,
    locked_until BIGINT,
    claimed_by   TEXT,
    key          TEXT,
    contact      TEXT,
    unless       TEXT,
    vars         TEXT,
    campaign_run BIGINT,
    last_error   TEXT,
    response     TEXT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE status IN ('pending', 'sending');
CREATE INDEX jobs_open_by_lane ON jobs (lane, id) WHERE status IN ('pending', 'sending');
CREATE INDEX jobs_pending_key ON jobs (key) WHERE status = 'pending' AND key IS NOT NULL;
CREATE INDEX jobs_by_run ON jobs (campaign_run) WHERE campaign_run IS NOT NULL;

-- What each event did, for /admin/events.
CREATE TABLE event_log (
    id     BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,
    record TEXT   NOT NULL
);

-- A chat's handoff, and its version: every change to the chat's state moves the version on,
-- and a completion checks the versions it read, holding the chats' rows while it writes.
CREATE TABLE chat_state (
    chat_id       TEXT   PRIMARY KEY,
    handoff_until BIGINT,
    resume_on     TEXT,
    handoff_rule  TEXT,
    handoff_since BIGINT,
    version       BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE rule_fires (
    rule     TEXT   NOT NULL,
    chat_id  TEXT   NOT NULL,
    fired_at BIGINT NOT NULL,
    PRIMARY KEY (rule, chat_id)
);

CREATE TABLE turns (
    id      BIGSERIAL PRIMARY KEY,
    chat_id TEXT   NOT NULL,
    role    TEXT   NOT NULL,
    text    TEXT   NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX turns_by_chat ON turns (chat_id, id);
CREATE INDEX turns_by_time ON turns (at);

CREATE TABLE ai_chats (
    chat_id   TEXT    PRIMARY KEY,
    fallbacks INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE campaign_state (
    name       TEXT   PRIMARY KEY,
    checked_at BIGINT NOT NULL
);

-- A run is unique per (campaign, fire time), whichever instance plans it.
CREATE TABLE campaign_runs (
    id             BIGSERIAL PRIMARY KEY,
    campaign       TEXT    NOT NULL,
    fire_at        BIGINT  NOT NULL,
    started_at     BIGINT  NOT NULL,
    trigger        TEXT    NOT NULL,
    planned        INTEGER NOT NULL,
    skipped        INTEGER NOT NULL,
    sent_pruned    INTEGER NOT NULL DEFAULT 0,
    skipped_pruned INTEGER NOT NULL DEFAULT 0,
    UNIQUE (campaign, fire_at)
);

CREATE TABLE verifications (
    run        TEXT   NOT NULL,
    phone      TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    wa_id      TEXT,
    checked_at BIGINT NOT NULL,
    PRIMARY KEY (run, phone)
);

CREATE TABLE channel_health (
    name   TEXT   PRIMARY KEY,
    status TEXT   NOT NULL,
    detail TEXT,
    at     BIGINT NOT NULL
);

-- Work one instance does for all (the campaign scheduler) is held under a lease, renewed
-- while its holder lives and taken over when it lapses: a row, not a session advisory lock,
-- which a connection pooler in front of the database would break.
CREATE TABLE leases (
    name   TEXT   PRIMARY KEY,
    holder TEXT   NOT NULL,
    until  BIGINT NOT NULL
);

-- Each instance says which rule set it serves, so a rollout can be seen converging.
CREATE TABLE instances (
    name          TEXT    PRIMARY KEY,
    rules_version TEXT    NOT NULL,
    rules         INTEGER NOT NULL,
    started_at    BIGINT  NOT NULL,
    seen_at       BIGINT  NOT NULL
);

-- The hot tables churn: vacuum them after a small share of changed rows, not the default 20 %.
ALTER TABLE inbound SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE inbound_chats SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE dedupe SET (autovacuum_vacuum_scale_factor = 0.05);
ALTER TABLE event_log SET (autovacuum_vacuum_scale_factor = 0.05);
