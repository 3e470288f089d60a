-- A survivor's case closed by the agency that holds the record, with its
-- coded reason, and opened again: one row per closing, never rewritten but
-- for its reopening. The case is closed while its newest row has no
-- reopened_at. Counted in the statistics (cases closed by reason); travels
-- with the record on a transfer. Keep in step with the other backend.
CREATE TABLE case_closures (
    id           TEXT PRIMARY KEY NOT NULL,
    survivor_id  TEXT NOT NULL REFERENCES survivors (id),
    closed_at    INTEGER NOT NULL,
    closed_by    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    reopened_at  INTEGER,
    reopened_by  TEXT
);
CREATE INDEX case_closures_by_survivor ON case_closures (survivor_id, closed_at);
CREATE INDEX case_closures_by_time ON case_closures (closed_at);
