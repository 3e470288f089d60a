-- Case management at the owner node: case notes, services, follow-ups and
-- the caseworkers assigned to a case. Times are Unix milliseconds (UTC).
-- Keep in step with ../sqlite/0005_case.sql: one behaviour on both.

-- Append-only: no statement of the node updates or deletes a note. A
-- correction is a new note naming the one it supersedes, in the same
-- category; a note is superseded at most once (the unique index).
CREATE TABLE case_notes (
    id             TEXT PRIMARY KEY NOT NULL,
    survivor_id    TEXT NOT NULL REFERENCES survivors (id),
    category       TEXT NOT NULL,
    body           TEXT NOT NULL,
    author_agency  TEXT NOT NULL,
    author_user    TEXT NOT NULL,
    author_role    TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    supersedes     TEXT REFERENCES case_notes (id)
);
CREATE INDEX case_notes_by_survivor ON case_notes (survivor_id, created_at, id);
CREATE UNIQUE INDEX case_notes_superseded_once ON case_notes (supersedes);

-- A service planned for or delivered to a survivor (category CASE).
CREATE TABLE services (
    id               TEXT PRIMARY KEY NOT NULL,
    survivor_id      TEXT NOT NULL REFERENCES survivors (id),
    kind             TEXT NOT NULL,
    provider_agency  TEXT NOT NULL,
    status           TEXT NOT NULL,
    planned_for      BIGINT,
    started_at       BIGINT,
    delivered_at     BIGINT,
    outcome          TEXT,
    created_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX services_by_survivor ON services (survivor_id, created_at, id);

-- A follow-up: coded kind, due time, the agency (and user) it is assigned
-- to. No free text: what was said goes in a case note.
CREATE TABLE follow_ups (
    id               TEXT PRIMARY KEY NOT NULL,
    survivor_id      TEXT NOT NULL REFERENCES survivors (id),
    kind             TEXT NOT NULL,
    due_at           BIGINT NOT NULL,
    assigned_agency  TEXT NOT NULL,
    assigned_user    TEXT,
    service_id       TEXT REFERENCES services (id),
    status           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    closed_at        BIGINT,
    closed_by        TEXT
);
-- "My agency's follow-ups due before ...": one range of this index.
CREATE INDEX follow_ups_due ON follow_ups (assigned_agency, status, due_at, id);
CREATE INDEX follow_ups_by_survivor ON follow_ups (survivor_id, due_at, id);

-- The owner's caseworkers assigned to a case.
CREATE TABLE case_assignments (
    survivor_id  TEXT NOT NULL REFERENCES survivors (id),
    user_id      TEXT NOT NULL,
    assigned_at  BIGINT NOT NULL,
    assigned_by  TEXT NOT NULL,
    PRIMARY KEY (survivor_id, user_id)
);
CREATE INDEX case_assignments_by_user ON case_assignments (user_id);

-- A survivor's care plan, one row per version (category CASE). A version
-- is never rewritten: a change is a new version. Only its agreement (set
-- once), a change the survivor asked for, and its actions' progress are
-- recorded on it.
CREATE TABLE care_plans (
    survivor_id          TEXT NOT NULL REFERENCES survivors (id),
    version              BIGINT NOT NULL,
    goals                TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    created_by           TEXT NOT NULL,
    agreed_at            BIGINT,
    agreement_method     TEXT,
    agreement_by         TEXT,
    witness              TEXT,
    change_requested_at  BIGINT,
    change_request       TEXT,
    PRIMARY KEY (survivor_id, version)
);

-- The actions of a plan version, each with the agency responsible.
CREATE TABLE care_plan_actions (
    survivor_id         TEXT NOT NULL,
    version             BIGINT NOT NULL,
    position            BIGINT NOT NULL,
    description         TEXT NOT NULL,
    responsible_agency  TEXT NOT NULL,
    due_at              BIGINT,
    status              TEXT NOT NULL,
    updated_at          BIGINT NOT NULL,
    updated_by          TEXT NOT NULL,
    PRIMARY KEY (survivor_id, version, position),
    FOREIGN KEY (survivor_id, version) REFERENCES care_plans (survivor_id, version)
);
