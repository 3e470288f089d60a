-- Portal sessions in the database, so that every replica of a node answers
-- a survivor's browser as one (agency_node::portal::session). The cookie's
-- token is kept only as its SHA-256 digest (hex). Expired sessions are
-- deleted as new ones are made. Keep in step with the other backend.
CREATE TABLE portal_sessions (
    token_hash      TEXT PRIMARY KEY NOT NULL,
    csrf_token      TEXT NOT NULL,
    lang            TEXT,
    survivor_id     TEXT,
    code_issued_at  BIGINT,
    pin_chosen      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL
);
CREATE INDEX portal_sessions_by_survivor ON portal_sessions (survivor_id);
CREATE INDEX portal_sessions_by_last_seen ON portal_sessions (last_seen_at);
