-- The newest signed head of the audit log, rewritten in the transaction of
-- every group of entries (and of every change), so that each entry a client
-- was answered on is covered by a signature before the answer leaves. The
-- periodic checkpoints in audit_checkpoints stay the log's history; this row
-- only ever moves forward.
CREATE TABLE audit_head (
    id          INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq         INTEGER NOT NULL,
    checkpoint  TEXT NOT NULL
);
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
WHEN NEW.seq < OLD.seq
BEGIN SELECT RAISE(ABORT, 'the signed audit head only moves forward'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'the signed audit head is never deleted'); END;

-- One row the node rewrites to learn whether its storage takes durable
-- writes right now (/readyz).
CREATE TABLE storage_probe (
    id  INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    at  INTEGER NOT NULL
);
INSERT INTO storage_probe (id, at) VALUES (1, 0);

-- Every signature over the log: its history of checkpoints and, when it is
-- newer, the signed head. Exports and checkpoint collection read this, so
-- what an auditor collects always reaches the newest acknowledged entry.
CREATE VIEW audit_signatures AS
SELECT seq, checkpoint FROM audit_checkpoints
UNION ALL
SELECT seq, checkpoint FROM audit_head
WHERE seq NOT IN (SELECT seq FROM audit_checkpoints);
