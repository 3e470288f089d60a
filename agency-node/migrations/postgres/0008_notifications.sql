-- The node's outbox of notifications: written in the same transaction as
-- the change they tell of, read by the recipient agency's subscribers
-- (through the gateway) in order. Kinds and global IDs only.
-- Keep in step with ../sqlite/0008_notifications.sql.
CREATE TABLE notifications (
    seq BIGSERIAL PRIMARY KEY,
    recipient    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    survivor_id  TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX notifications_by_recipient ON notifications (recipient, seq);

-- When a follow-up's FOLLOW_UP_DUE notification was queued (once).
ALTER TABLE follow_ups ADD COLUMN due_notified_at BIGINT;
