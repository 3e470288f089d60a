-- The survivor's requests to correct or erase their record, asked in the
-- portal and answered by the agency's staff (agency_node::rights).
-- The survivor's words and the agency's answer are sealed under the
-- record's key like the rest of its content; kinds, parts, times and
-- statuses stay in clear so that staff can list what is due.
-- Keep in step with ../postgres/0011_rights_requests.sql.
CREATE TABLE rights_requests (
    id             TEXT PRIMARY KEY NOT NULL,
    survivor_id    TEXT NOT NULL REFERENCES survivors (id),
    -- CORRECTION or ERASURE.
    kind           TEXT NOT NULL,
    -- The parts concerned (RecordPart names, comma-separated).
    parts          TEXT NOT NULL,
    -- What the survivor wrote (sealed; may be absent for an erasure).
    details        TEXT,
    asked_at       INTEGER NOT NULL,
    -- The agency's deadline to answer ([retention] answer_requests_within_days).
    answer_due_at  INTEGER NOT NULL,
    -- OPEN, DONE or REFUSED.
    status         TEXT NOT NULL,
    -- The agency's answer (sealed; absent when the whole record was erased).
    answer         TEXT,
    answered_at    INTEGER,
    answered_by    TEXT
);
CREATE INDEX rights_requests_by_status ON rights_requests (status, answer_due_at);
CREATE INDEX rights_requests_by_survivor ON rights_requests (survivor_id, asked_at);
