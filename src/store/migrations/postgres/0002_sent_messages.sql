-- Messages Riposte sent, by the id Whapi.Cloud gave them: how far each got (the statuses
-- Whapi.Cloud reports) and, for a campaign's, whether the recipient wrote back within a day.
CREATE TABLE sent_messages (
    message_id   TEXT    PRIMARY KEY,
    channel      TEXT,
    chat         TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    campaign     TEXT,
    campaign_run BIGINT,
    text         TEXT,
    kind         TEXT    NOT NULL,
    sent_at      BIGINT  NOT NULL,
    status       TEXT    NOT NULL,
    status_at    BIGINT,
    replied_at   BIGINT,
    options      TEXT
) WITH (autovacuum_vacuum_scale_factor = 0.05);
CREATE INDEX sent_messages_run ON sent_messages (campaign_run) WHERE campaign_run IS NOT NULL;
CREATE INDEX sent_messages_awaiting_reply ON sent_messages (chat, sent_at)
    WHERE campaign_run IS NOT NULL AND replied_at IS NULL;
CREATE INDEX sent_messages_age ON sent_messages (sent_at);
