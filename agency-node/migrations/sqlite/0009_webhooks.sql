-- Delivery of notifications to agencies' webhooks: one row per
-- notification being delivered. PENDING until the endpoint answers 2xx
-- (DELIVERED) or the attempts run out (DEAD, a dead letter an agency's
-- supervisor can list and send again). Keep in step with
-- ../postgres/0009_webhooks.sql.
CREATE TABLE webhook_deliveries (
    seq              INTEGER PRIMARY KEY NOT NULL,
    recipient        TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_recipient ON webhook_deliveries (recipient, status, seq);
