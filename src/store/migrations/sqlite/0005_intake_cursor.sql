-- Intake processes stored bodies strictly in id order, so "processed" is one number: the
-- highest id done. It replaces a flag on every row, which cost an index entry on every insert
-- and a second write of every body.

CREATE TABLE intake_cursor (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    processed_through INTEGER NOT NULL   -- every inbound row with id <= this is processed
);
INSERT INTO intake_cursor (id, processed_through) VALUES (1, COALESCE(
    (SELECT MIN(id) - 1 FROM inbound WHERE processed_at IS NULL),
    (SELECT MAX(id) FROM inbound),
    0));

DROP INDEX inbound_unprocessed;
ALTER TABLE inbound DROP COLUMN processed_at;
