-- Sign-in attempts at the survivor portal, counted per client in fixed
-- windows so that every replica of a node holds a client to the same limit
-- (agency_node::portal::throttle). A client is kept only as a keyed digest
-- (HMAC-SHA-256 under a key derived from the node's signing key) of its
-- address, never the address; rows of ended windows are deleted as new
-- attempts come. Keep in step with the other backend.
CREATE TABLE portal_sign_in_attempts (
    client_digest  TEXT NOT NULL,
    window_start   BIGINT NOT NULL,
    attempts       BIGINT NOT NULL,
    PRIMARY KEY (client_digest, window_start)
);
CREATE INDEX portal_sign_in_attempts_by_window ON portal_sign_in_attempts (window_start);
