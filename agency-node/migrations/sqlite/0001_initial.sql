-- The agency node's records (SQLite). Times are Unix milliseconds (UTC).
-- Keep in step with ../postgres/0001_initial.sql: one behaviour on both.

CREATE TABLE survivors (
    id            TEXT PRIMARY KEY NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    identity      TEXT,
    contact       TEXT,
    case_details  TEXT,
    health        TEXT,
    legal         TEXT
);
CREATE INDEX survivors_by_created ON survivors (created_at, id);

CREATE TABLE consent_grants (
    id                 TEXT PRIMARY KEY NOT NULL,
    survivor_id        TEXT NOT NULL REFERENCES survivors (id),
    grantee            TEXT NOT NULL,
    categories         TEXT NOT NULL,
    purposes           TEXT NOT NULL,
    valid_from         INTEGER NOT NULL,
    valid_until        INTEGER,
    method             TEXT NOT NULL,
    recorded_by        TEXT NOT NULL,
    witness            TEXT,
    created_at         INTEGER NOT NULL,
    revoked_at         INTEGER,
    revoked_by         TEXT,
    revocation_reason  TEXT
);
CREATE INDEX consent_grants_by_survivor ON consent_grants (survivor_id, created_at);

CREATE TABLE referrals (
    id           TEXT PRIMARY KEY NOT NULL,
    survivor_id  TEXT NOT NULL REFERENCES survivors (id),
    from_agency  TEXT NOT NULL,
    to_agency    TEXT NOT NULL,
    service      TEXT NOT NULL,
    urgency      TEXT NOT NULL,
    status       TEXT NOT NULL,
    notes        TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL
);
CREATE INDEX referrals_by_to ON referrals (to_agency, created_at, id);
CREATE INDEX referrals_by_from ON referrals (from_agency, created_at, id);
CREATE INDEX referrals_by_survivor ON referrals (survivor_id);

CREATE TABLE referral_events (
    referral_id  TEXT NOT NULL REFERENCES referrals (id),
    position     INTEGER NOT NULL,
    status       TEXT NOT NULL,
    at           INTEGER NOT NULL,
    by_agency    TEXT NOT NULL,
    by_user      TEXT NOT NULL,
    note         TEXT,
    PRIMARY KEY (referral_id, position)
);

CREATE TABLE break_glass_openings (
    id             TEXT PRIMARY KEY NOT NULL,
    survivor_id    TEXT NOT NULL REFERENCES survivors (id),
    agency         TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    justification  TEXT NOT NULL,
    opened_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX break_glass_by_survivor ON break_glass_openings (survivor_id, agency, user_id);
