-- Messages Riposte sent, by the id Whapi.Cloud gave them: how far each got (the statuses
-- Whapi.Cloud reports) and, for a campaign's, whether the recipient wrote back within a day.
-- Rows are appended in the order sent (a rowid table): a send costs the append and one small
-- entry in the id index, and pruning takes the oldest by rowid.
CREATE TABLE sent_messages (
    id           INTEGER PRIMARY KEY,
    message_id   TEXT    NOT NULL UNIQUE,
    channel      TEXT,
    chat         TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    campaign     TEXT,
    campaign_run INTEGER,
    text         TEXT,
    kind         TEXT    NOT NULL,
    sent_at      INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    status_at    INTEGER,
    replied_at   INTEGER,
    options      TEXT                 -- a poll's options, as a JSON list
);
CREATE INDEX sent_messages_run ON sent_messages (campaign_run) WHERE campaign_run IS NOT NULL;
-- Small: only campaign messages nobody has answered yet.
CREATE INDEX sent_messages_awaiting_reply ON sent_messages (chat, sent_at)
    WHERE campaign_run IS NOT NULL AND replied_at IS NULL;
