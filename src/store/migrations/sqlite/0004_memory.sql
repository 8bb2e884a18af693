-- Conversation memory for `ai_reply`: what each chat said and was told, and how many model
-- fallbacks a chat got in a row.

CREATE TABLE turns (
    id      INTEGER PRIMARY KEY,
    chat_id TEXT    NOT NULL,     -- the chat's memory key (see `ai::memory::key`)
    role    TEXT    NOT NULL,     -- user, bot, agent
    text    TEXT    NOT NULL,
    at      INTEGER NOT NULL      -- Unix milliseconds
);
CREATE INDEX turns_by_chat ON turns (chat_id, id);
CREATE INDEX turns_by_time ON turns (at);

CREATE TABLE ai_chats (
    chat_id   TEXT    PRIMARY KEY,
    fallbacks INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
