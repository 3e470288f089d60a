-- The audit log (sqlite): entries chained by hash, signed checkpoints, and
-- the append-only guards. Versions from 1001: the owner's record tables
-- share sqlx's migration table (see exchange_service::db::Migrations).
-- Keep in step with ../postgres/1001_audit_log.sql: one behaviour on both.

CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY NOT NULL,
    at            INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    actor_agency  TEXT,
    survivor      TEXT,
    purpose       TEXT,
    decision      TEXT NOT NULL,
    break_glass   INTEGER NOT NULL,
    event         TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_log_by_survivor ON audit_log (survivor, seq);
CREATE INDEX audit_log_by_at ON audit_log (at, seq);

CREATE TABLE audit_checkpoints (
    seq         INTEGER PRIMARY KEY NOT NULL,
    checkpoint  TEXT NOT NULL
);

-- Append-only: the node never updates or deletes audit rows. Someone with
-- write access to the file can drop these triggers; the hash chain and the
-- signed checkpoints are what make that detectable.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
