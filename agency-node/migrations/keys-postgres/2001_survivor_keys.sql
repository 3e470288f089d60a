-- The node's key store: one data key per survivor, wrapped by the node's
-- key-encryption key (agency_node::vault). It lives in a database of its
-- own (keys.db beside node.db by default), so that a copy or a backup of
-- the records holds no key. Keep in step with ../keys-sqlite.
--
-- A destroyed key keeps its row, with `wrapped` cleared: the ID can never
-- be given a new key, and the store says when the key went.
CREATE TABLE survivor_keys (
    survivor_id   TEXT PRIMARY KEY NOT NULL,
    kek_id        TEXT NOT NULL,
    wrapped       TEXT,
    created_at    BIGINT NOT NULL,
    destroyed_at  BIGINT
);
