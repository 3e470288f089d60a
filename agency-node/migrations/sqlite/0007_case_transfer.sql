-- Case transfers: a survivor's record moving from one node to another.
-- Keep in step with ../postgres/0007_case_transfer.sql.

-- Each transfer as this node saw it: OUT (this node sent the record) or IN
-- (it received it). An OUT transfer is PENDING while the record is handed
-- over (the record is read-only here meanwhile), then COMPLETED or
-- ABORTED; an IN transfer is RECEIVED. No survivor content here.
CREATE TABLE case_transfers (
    id              TEXT PRIMARY KEY NOT NULL,
    survivor_id     TEXT NOT NULL,
    direction       TEXT NOT NULL,
    peer_agency     TEXT NOT NULL,
    status          TEXT NOT NULL,
    consent_method  TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX case_transfers_by_survivor ON case_transfers (survivor_id, status);
-- At most one hand-over of a survivor at a time.
CREATE UNIQUE INDEX case_transfers_one_pending ON case_transfers (survivor_id)
    WHERE direction = 'OUT' AND status = 'PENDING';

-- Tombstones: an ID that moved, and the agency whose node holds it now.
-- Nothing else of the record stays.
CREATE TABLE moved_records (
    id         TEXT PRIMARY KEY NOT NULL,
    new_owner  TEXT NOT NULL,
    moved_at   INTEGER NOT NULL
);
