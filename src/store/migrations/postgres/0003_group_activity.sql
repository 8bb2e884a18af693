-- When each member of a group last posted in it and when they joined, as Riposte saw it, for
-- campaigns that tidy up inactive members. The row with an empty phone holds when Riposte
-- first saw the group: before that, nobody's activity is known.
CREATE TABLE group_activity (
    group_id  TEXT   NOT NULL,
    phone     TEXT   NOT NULL,
    posted_at BIGINT,
    joined_at BIGINT,
    PRIMARY KEY (group_id, phone)
);
