-- The audit log (postgres): entries chained by hash, signed checkpoints, and
-- the append-only guards. Versions from 1001: the owner's record tables
-- share sqlx's migration table (see exchange_service::db::Migrations).
-- Keep in step with ../sqlite/1001_audit_log.sql: one behaviour on both.

CREATE TABLE audit_log (
    seq           BIGINT PRIMARY KEY NOT NULL,
    at            BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    actor_agency  TEXT,
    survivor      TEXT,
    purpose       TEXT,
    decision      TEXT NOT NULL,
    break_glass   BIGINT NOT NULL,
    event         TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_log_by_survivor ON audit_log (survivor, seq);
CREATE INDEX audit_log_by_at ON audit_log (at, seq);

CREATE TABLE audit_checkpoints (
    seq         BIGINT PRIMARY KEY NOT NULL,
    checkpoint  TEXT NOT NULL
);

-- Append-only: the node never updates or deletes audit rows. Someone with
-- owner rights can drop these triggers; the hash chain and the signed
-- checkpoints are what make that detectable.
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
