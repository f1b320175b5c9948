-- Webhook inbox: every verified Stripe event, stored before it is acknowledged.
CREATE TABLE webhook_events (
    id              BIGSERIAL PRIMARY KEY,
    event_id        TEXT        NOT NULL,
    provider        TEXT        NOT NULL DEFAULT 'stripe',
    type            TEXT        NOT NULL,
    created         TIMESTAMPTZ NOT NULL,
    livemode        BOOLEAN     NOT NULL DEFAULT FALSE,
    account         TEXT,
    api_version     TEXT,
    object_type     TEXT,
    object_id       TEXT,
    payload         BYTEA       NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending',
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    received_at     TIMESTAMPTZ NOT NULL,
    processed_at    TIMESTAMPTZ,
    CONSTRAINT webhook_events_event_id_key UNIQUE (event_id),
    CONSTRAINT webhook_events_status_check CHECK (status IN ('pending', 'processed', 'ignored', 'dead'))
);
-- The worker's claim query scans only due pending rows.
CREATE INDEX webhook_events_due_idx ON webhook_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_events_pending_age_idx ON webhook_events (received_at) WHERE status = 'pending';
CREATE INDEX webhook_events_status_idx ON webhook_events (status, id);
CREATE INDEX webhook_events_type_idx ON webhook_events (type, id);
CREATE INDEX webhook_events_object_idx ON webhook_events (object_id);

-- API tokens: only a SHA-256 of the token is kept; the token is shown once.
CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT        NOT NULL,
    role         TEXT        NOT NULL,
    token_hash   TEXT        NOT NULL,
    prefix       TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_role_check CHECK (role IN ('agent', 'analyst', 'supervisor', 'admin'))
);
