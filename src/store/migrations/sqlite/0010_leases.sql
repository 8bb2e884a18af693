-- Work one instance does for all (the campaign scheduler) is held under a lease in the
-- database, renewed while its holder lives and taken over when it lapses.
CREATE TABLE leases (
    name   TEXT    PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
);

-- Each instance says which rule set it serves, so a rollout can be seen converging.
CREATE TABLE instances (
    name          TEXT    PRIMARY KEY,
    rules_version TEXT    NOT NULL,
    rules         INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    seen_at       INTEGER NOT NULL
);
