-- The webhook inbox, partitioned by month of the event's created time, so
-- retention drops a month's partition instead of deleting its rows one by
-- one (webhooks.Retention; docs/privacy.md, "Monthly partitions").
--
-- A partitioned table's unique keys must carry the partition key:
-- UNIQUE (event_id) becomes UNIQUE (event_id, created), the primary key
-- (id, created). For dedupe that is as strong as the event id alone,
-- because created is part of the signed event: every redelivery, and every
-- listing by reconciliation, carries the same created. Every lookup by
-- event id still finds one row, through each partition's
-- (event_id, created) index.
--
-- The rows are copied over in this migration's transaction: the inbox is
-- locked meanwhile (Stripe retries what it could not deliver).

-- webhook_events_add_month(m) makes the partition for the UTC calendar month
-- holding m, named webhook_events_pYYYY_MM, unless it exists. Rows of that
-- month already in the DEFAULT partition (an event older than the first
-- month, or one that arrived before its month was made) move into it in the
-- same transaction: a partition cannot be attached over rows the default
-- holds. The table is made apart and attached, which needs only a SHARE
-- UPDATE EXCLUSIVE lock on the inbox (CREATE TABLE … PARTITION OF would
-- stop it: ACCESS EXCLUSIVE); the DEFAULT partition alone is locked while
-- its rows move. Returns
-- whether it made one. Called here, at startup and by the retention job.
CREATE FUNCTION webhook_events_add_month(m timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamptz := date_trunc('month', m AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi   timestamptz := (date_trunc('month', m AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    part text := 'webhook_events_p' || to_char(m AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- The inbox first, then its partitions, as every statement on it
    -- locks them (and as retention's DETACH does): no deadlock.
    LOCK TABLE ONLY webhook_events IN SHARE UPDATE EXCLUSIVE MODE;
    LOCK TABLE webhook_events_default IN ACCESS EXCLUSIVE MODE;
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN -- made while we waited
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE webhook_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM webhook_events_default WHERE created >= $1 AND created < $2 RETURNING *)
                    INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
    EXECUTE format('ALTER TABLE webhook_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    RETURN true;
END
$$;

DROP VIEW bi_webhook_events;
ALTER TABLE webhook_events RENAME TO webhook_events_unpartitioned;
ALTER TABLE webhook_events_unpartitioned ALTER COLUMN id DROP DEFAULT;
ALTER SEQUENCE webhook_events_id_seq OWNED BY NONE;

CREATE TABLE webhook_events (
    id              BIGINT      NOT NULL DEFAULT nextval('webhook_events_id_seq'),
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
    CONSTRAINT webhook_events_status_check CHECK (status IN ('pending', 'processed', 'ignored', 'dead'))
) PARTITION BY RANGE (created);
ALTER SEQUENCE webhook_events_id_seq OWNED BY webhook_events.id;
-- No insert can fail for want of a month.
CREATE TABLE webhook_events_default PARTITION OF webhook_events DEFAULT;

-- Every month the existing rows fall in, this one and the next two.
SELECT webhook_events_add_month(m) FROM (
    SELECT DISTINCT date_trunc('month', created AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m FROM webhook_events_unpartitioned
    UNION SELECT now() + n * interval '1 month' FROM generate_series(0, 2) n
) months ORDER BY m;

INSERT INTO webhook_events (id, event_id, provider, type, created, livemode, account, api_version, object_type, object_id,
                            payload, status, attempts, next_attempt_at, last_error, lease_owner, lease_until, received_at, processed_at)
SELECT id, event_id, provider, type, created, livemode, account, api_version, object_type, object_id,
       payload, status, attempts, next_attempt_at, last_error, lease_owner, lease_until, received_at, processed_at
FROM webhook_events_unpartitioned;
DROP TABLE webhook_events_unpartitioned;

-- Keys and indexes after the copy: one sort per partition instead of an
-- insert into every index per row.
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_pkey PRIMARY KEY (id, created);
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_event_id_key UNIQUE (event_id, created);
CREATE INDEX webhook_events_due_idx ON webhook_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_events_pending_age_idx ON webhook_events (received_at) WHERE status = 'pending';
CREATE INDEX webhook_events_status_idx ON webhook_events (status, id);
CREATE INDEX webhook_events_type_idx ON webhook_events (type, id);
CREATE INDEX webhook_events_object_idx ON webhook_events (object_id);
CREATE INDEX webhook_events_payload_kept_idx ON webhook_events (created) WHERE status IN ('processed', 'ignored') AND length(payload) > 0;
ANALYZE webhook_events;

CREATE VIEW bi_webhook_events AS
SELECT w.id,
       w.event_id,
       w.provider,
       w.type,
       w.created,
       w.livemode,
       w.account,
       w.api_version,
       w.object_type,
       w.object_id,
       w.status,
       w.attempts,
       w.last_error,
       w.received_at,
       w.processed_at,
       CAST(extract(epoch FROM w.processed_at - w.received_at) AS double precision) AS processing_seconds,
       CAST(extract(epoch FROM w.received_at - w.created) AS double precision)      AS delivery_delay_seconds
FROM webhook_events w;
