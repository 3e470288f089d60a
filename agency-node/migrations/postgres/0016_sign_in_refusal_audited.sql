-- Whether a refusal of this client's window is in the audit log yet
-- (agency_node::portal::throttle). Set only once the entry is durable, so a
-- refusal whose entry could not be written leaves the next one to be
-- audited. Keep in step with the other backend.
ALTER TABLE portal_sign_in_attempts ADD COLUMN refusal_audited BIGINT NOT NULL DEFAULT 0;
