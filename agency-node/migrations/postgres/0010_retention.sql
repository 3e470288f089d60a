-- Retention and erasure (agency_node::retention). No survivor content in
-- clear: a hold's reason is sealed like the rest of the record.
-- Keep in step with ../sqlite/0010_retention.sql.

-- What of a survivor's record was erased (its part's data key destroyed),
-- when, and under which rule (a retention rule's name, or REQUEST).
CREATE TABLE erasures (
    survivor_id  TEXT NOT NULL,
    part         TEXT NOT NULL,
    erased_at    BIGINT NOT NULL,
    rule         TEXT NOT NULL,
    PRIMARY KEY (survivor_id, part)
);

-- Legal holds: while one is in force (not lifted), no retention rule and
-- no request erases the record.
CREATE TABLE legal_holds (
    id           TEXT PRIMARY KEY NOT NULL,
    survivor_id  TEXT NOT NULL REFERENCES survivors (id),
    reason       TEXT NOT NULL,
    placed_at    BIGINT NOT NULL,
    placed_by    TEXT NOT NULL,
    lifted_at    BIGINT,
    lifted_by    TEXT
);
CREATE INDEX legal_holds_by_survivor ON legal_holds (survivor_id, lifted_at);
