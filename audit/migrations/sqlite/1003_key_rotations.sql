-- The log's signing-key handovers (SIGNING_KEY_ROTATED entries), found
-- without scanning the log: a writer checks, at start and whenever another
-- process appended, that no handover has retired its key. Partial, so that
-- no other entry pays for it.
CREATE INDEX audit_log_key_rotations ON audit_log (seq) WHERE kind = 'SIGNING_KEY_ROTATED';
