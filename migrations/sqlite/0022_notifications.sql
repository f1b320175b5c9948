-- Outbound notifications. See the PostgreSQL migration for what each table
-- means.
CREATE TABLE notification_deliveries (
    id              TEXT     NOT NULL PRIMARY KEY,
    event_id        INTEGER  NOT NULL,
    event_type      TEXT     NOT NULL,
    subject         TEXT     NOT NULL DEFAULT '',
    destination     TEXT     NOT NULL,
    dest_type       TEXT     NOT NULL,
    status          TEXT     NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER  NOT NULL DEFAULT 0,
    last_error      TEXT     NOT NULL DEFAULT '',
    next_attempt_at DATETIME NOT NULL,
    lease_until     DATETIME,
    sent_at         DATETIME,
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    CONSTRAINT notification_deliveries_event_destination_key UNIQUE (event_id, destination)
);
CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_status_idx ON notification_deliveries (status, id);

CREATE TABLE notification_cursor (
    id            INTEGER NOT NULL PRIMARY KEY,
    last_event_id INTEGER NOT NULL
);
INSERT INTO notification_cursor (id, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;
