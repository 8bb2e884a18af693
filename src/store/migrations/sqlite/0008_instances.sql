-- Several instances may share a database: claims name the instance that holds them, and a
-- chat's state carries a version that a completion checks, so no instance acts on a chat as
-- it was before another one changed it.

-- The instance holding a job being sent (NULL for jobs claimed before instances were named:
-- any instance releases those at start, as every start did before).
ALTER TABLE jobs ADD COLUMN claimed_by TEXT;

-- Stored bodies an instance is processing: a range of ids, held until the lease ends. A range
-- completed ahead of an earlier one still held waits here, done, until the cursor reaches it.
CREATE TABLE inbound_claims (
    first_id    INTEGER PRIMARY KEY,
    last_id     INTEGER NOT NULL,
    instance    TEXT    NOT NULL,
    lease_until INTEGER NOT NULL,
    done        INTEGER NOT NULL DEFAULT 0
);

-- Chat state has a generation that moves on with every change to any chat's handoff or
-- `once_per` memory; a chat's version is the generation of its last change. So "no chat
-- changed since generation G" is one read, and only when one did are the chats looked at.
CREATE TABLE chat_generation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO chat_generation (id, value) VALUES (1, 0);
ALTER TABLE chat_state ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
