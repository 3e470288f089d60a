-- Delivery of notifications to agencies' webhooks: one row per
-- notification being delivered. PENDING until the endpoint answers 2xx
-- (DELIVERED) or the attempts run out (DEAD, a dead letter an agency's
-- supervisor can list and send again). Keep in step with
-- ../sqlite/0009_webhooks.sql.
CREATE TABLE webhook_deliveries (
    seq              BIGINT PRIMARY KEY NOT NULL,
    recipient        TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_recipient ON webhook_deliveries (recipient, status, seq);
