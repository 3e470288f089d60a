-- Console sessions shared by the console's replicas (`[session]
-- database_url`). A row is found by the SHA-256 of the session's cookie
-- token, never the token; the session itself (CSRF token, sign-in in
-- progress, the caseworker's tokens) is sealed with AES-256-GCM under the
-- `[session] key_file` key, bound to its row by the token's digest. The
-- user's digest lets a revocation end all their sessions; expires_at lets
-- ended sessions be purged.
CREATE TABLE console_sessions (
    token_digest  TEXT PRIMARY KEY NOT NULL,
    user_digest   TEXT,
    sealed        TEXT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_user ON console_sessions (user_digest);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
