-- Reconciliation runs: each lists the provider's events created in
-- [since, until) and feeds those the inbox lacked to it. The latest
-- successful run's `until` is where the next run starts.
CREATE TABLE reconcile_runs (
    id          BIGSERIAL   PRIMARY KEY,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    since       TIMESTAMPTZ NOT NULL,
    until       TIMESTAMPTZ NOT NULL,
    listed      INTEGER     NOT NULL DEFAULT 0,
    missing     INTEGER     NOT NULL DEFAULT 0,
    invalid     INTEGER     NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX reconcile_runs_until_idx ON reconcile_runs (until) WHERE error IS NULL;
