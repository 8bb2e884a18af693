-- Messages Riposte sent, by the id Whapi.Cloud gave them: how far each got (the statuses
-- Whapi.Cloud reports) and, for a campaign's, whether the recipient wrote back within a day.
CREATE TABLE sent_messages (
    message_id   TEXT    PRIMARY KEY,
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
) WITHOUT ROWID;
CREATE INDEX sent_messages_run ON sent_messages (campaign_run) WHERE campaign_run IS NOT NULL;
-- Small: only campaign messages nobody has answered yet.
CREATE INDEX sent_messages_awaiting_reply ON sent_messages (chat, sent_at)
    WHERE campaign_run IS NOT NULL AND replied_at IS NULL;
CREATE INDEX sent_messages_age ON sent_messages (sent_at);
