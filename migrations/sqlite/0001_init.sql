-- Webhook inbox: every verified Stripe event, stored before it is acknowledged.
CREATE TABLE webhook_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT     NOT NULL,
    provider        TEXT     NOT NULL DEFAULT 'stripe',
    type            TEXT     NOT NULL,
    created         DATETIME NOT NULL,
    livemode        BOOLEAN  NOT NULL DEFAULT 0,
    account         TEXT,
    api_version     TEXT,
    object_type     TEXT,
    object_id       TEXT,
    payload         BLOB     NOT NULL,
    status          TEXT     NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'ignored', 'dead')),
    attempts        INTEGER  NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    last_error      TEXT,
    lease_owner     TEXT,
    lease_until     DATETIME,
    received_at     DATETIME NOT NULL,
    processed_at    DATETIME,
    CONSTRAINT webhook_events_event_id_key UNIQUE (event_id)
);
CREATE INDEX webhook_events_due_idx ON webhook_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_events_pending_age_idx ON webhook_events (received_at) WHERE status = 'pending';
CREATE INDEX webhook_events_status_idx ON webhook_events (status, id);
CREATE INDEX webhook_events_type_idx ON webhook_events (type, id);
CREATE INDEX webhook_events_object_idx ON webhook_events (object_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT     NOT NULL,
    role         TEXT     NOT NULL CHECK (role IN ('agent', 'analyst', 'supervisor', 'admin')),
    token_hash   TEXT     NOT NULL,
    prefix       TEXT     NOT NULL,
    created_at   DATETIME NOT NULL,
    last_used_at DATETIME,
    revoked_at   DATETIME,
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash)
);
