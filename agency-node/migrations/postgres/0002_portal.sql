-- The survivor consent portal (postgres). Keep in step with the other backend.

-- One consent code per survivor (a new code replaces the old one). The code
-- is stored only as an argon2 hash; `locator` is its first, non-secret
-- group, which finds the row. The PIN the survivor chose at first sign-in
-- is stored only as an argon2 hash too.
CREATE TABLE portal_credentials (
    survivor_id      TEXT PRIMARY KEY NOT NULL REFERENCES survivors (id),
    locator          TEXT NOT NULL UNIQUE,
    code_hash        TEXT NOT NULL,
    pin_hash         TEXT,
    failed_attempts  BIGINT NOT NULL DEFAULT 0,
    locked_until     BIGINT,
    issued_at        BIGINT NOT NULL,
    issued_by        TEXT NOT NULL
);

-- Signed consent receipts, one per grant and per revocation, kept so the
-- survivor can download them again.
CREATE TABLE consent_receipts (
    id           TEXT PRIMARY KEY NOT NULL,
    survivor_id  TEXT NOT NULL REFERENCES survivors (id),
    grant_id     TEXT NOT NULL REFERENCES consent_grants (id),
    event        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    receipt      TEXT NOT NULL
);
CREATE INDEX consent_receipts_by_survivor ON consent_receipts (survivor_id, created_at);
