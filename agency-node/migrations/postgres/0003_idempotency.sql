-- Idempotency keys of mutations (postgres). Keep in step with the other backend.

-- One row per mutation root field committed under a key, written in the
-- same transaction as the change itself: a committed change always has its
-- row, a failed one never has. Keys are scoped per caller (agency and user
-- subject), so no one can replay, or even probe, another caller's key.
-- `fingerprint` is the SHA-256 (hex) of the request's canonical operation
-- text, variables, operation name and declared purpose. `outcome` is what
-- the change made (the ID of the record it created or changed; see
-- agency_node::idempotency), never a stored copy of the answer, so no
-- survivor data is kept here. Rows are deleted once `expires_at` passes.
CREATE TABLE idempotency_keys (
    agency       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    field        TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (agency, user_id, idem_key, field)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
