-- Number checks of `riposte contacts verify`, kept so an interrupted run resumes.
CREATE TABLE verifications (
    run        TEXT    NOT NULL,      -- hash of the input list
    phone      TEXT    NOT NULL,
    status     TEXT    NOT NULL,      -- valid, invalid
    wa_id      TEXT,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (run, phone)
) WITHOUT ROWID;
