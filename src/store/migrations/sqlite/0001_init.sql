-- Times are Unix milliseconds (UTC).

-- Every body answered with a 2xx, kept until processed (and a while after, for inspection).
CREATE TABLE inbound (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT    NOT NULL,            -- 'webhook' or 'custom'
    name         TEXT    NOT NULL,            -- webhook path, or custom event name
    method       TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    processed_at INTEGER
);
CREATE INDEX inbound_unprocessed ON inbound (id) WHERE processed_at IS NULL;

-- Events already processed: (channel, kind, item id) so a retry never fires twice.
CREATE TABLE dedupe (
    key        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE contacts (
    phone      TEXT    PRIMARY KEY,
    attrs      TEXT    NOT NULL DEFAULT '{}', -- JSON object of strings
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE contact_tags (
    phone    TEXT    NOT NULL,
    tag      TEXT    NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (phone, tag)
) WITHOUT ROWID;
CREATE INDEX contact_tags_by_tag ON contact_tags (tag);

-- Outbound calls. A lane (one chat) is served in id order.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    lane         TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    event        TEXT    NOT NULL,
    request      TEXT    NOT NULL,            -- JSON OutboundRequest
    status       TEXT    NOT NULL,            -- pending, sending, done, dead, cancelled
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,
    locked_until INTEGER,
    last_error   TEXT,
    response     TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, run_at);
CREATE INDEX jobs_open_by_lane ON jobs (lane, id) WHERE status IN ('pending', 'sending');

-- What each event did, for /admin/events.
CREATE TABLE event_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    record TEXT    NOT NULL
);
