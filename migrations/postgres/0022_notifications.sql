-- Outbound notifications (Slack, signed webhooks). The events outbox is the
-- source of truth; a dispatcher reads it after notification_cursor and writes
-- one delivery per (event, destination) the policy's rules route it to —
-- the unique key is what makes a notification happen once however many
-- replicas dispatch. A sender leases due rows (FOR UPDATE SKIP LOCKED),
-- posts them and records the outcome; failures retry with backoff until
-- max attempts, then stay failed until an operator replays them.
CREATE TABLE notification_deliveries (
    id              TEXT        NOT NULL PRIMARY KEY,
    event_id        BIGINT      NOT NULL,
    event_type      TEXT        NOT NULL,
    subject         TEXT        NOT NULL DEFAULT '',
    destination     TEXT        NOT NULL,
    dest_type       TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    last_error      TEXT        NOT NULL DEFAULT '',
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    sent_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT notification_deliveries_event_destination_key UNIQUE (event_id, destination)
);
CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_status_idx ON notification_deliveries (status, id);

-- The last event id the dispatcher has routed. It starts at the newest
-- event when this migration runs, so installing notifications does not
-- announce the past.
CREATE TABLE notification_cursor (
    id            INTEGER NOT NULL PRIMARY KEY,
    last_event_id BIGINT  NOT NULL
);
INSERT INTO notification_cursor (id, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;
