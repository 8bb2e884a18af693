-- One engine may serve several WhatsApp numbers (channels). A job names the channel it goes
-- out through; NULL is the default channel, as for every job written before channels existed.
ALTER TABLE jobs ADD COLUMN channel TEXT;

-- Each channel's health as Whapi.Cloud last reported it (`channel` and `users` events).
CREATE TABLE channel_health (
    name   TEXT    PRIMARY KEY,
    status TEXT    NOT NULL,
    detail TEXT,
    at     INTEGER NOT NULL
);
