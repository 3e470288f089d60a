-- The node's key store: data keys per survivor and part of the record,
-- each wrapped by the node's key-encryption key (agency_node::vault). It
-- lives in a database of its own (keys.db beside node.db by default), so
-- that a copy or a backup of the records holds no key. Keep in step with
-- ../keys-sqlite.
--
-- The parts: IDENTITY, CONTACT, CASE, HEALTH, LEGAL (a category each, so
-- that a retention period can erase one category) and RECORD (what belongs
-- to the record as a whole: consent texts, referral notes, receipts).
-- A destroyed key keeps its row with `wrapped` cleared: the part can never
-- be given a new key, and the store says when its key went.
CREATE TABLE survivor_keys (
    survivor_id   TEXT NOT NULL,
    part          TEXT NOT NULL,
    kek_id        TEXT NOT NULL,
    wrapped       TEXT,
    created_at    BIGINT NOT NULL,
    destroyed_at  BIGINT,
    PRIMARY KEY (survivor_id, part)
);
