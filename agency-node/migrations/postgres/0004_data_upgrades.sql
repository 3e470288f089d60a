-- Data upgrades done at start-up (both backends; keep in step).
--
-- A data upgrade rewrites stored records in Rust (for example the coded
-- intake: free-text gender, nationality, languages and exploitation types
-- mapped onto the federation's vocabularies, agency_node::store::coded_intake).
-- Each record it changes is rewritten with its own audit entry in one
-- transaction; once every record is done, its row here says so, and later
-- starts skip it. An upgrade interrupted half-way simply runs again: it
-- leaves a record already in the new form unchanged.
CREATE TABLE data_upgrades (
    name     TEXT PRIMARY KEY,
    done_at  BIGINT NOT NULL
);
