-- Reconciliation runs. See the PostgreSQL migration.
CREATE TABLE reconcile_runs (
    id          INTEGER  PRIMARY KEY AUTOINCREMENT,
    started_at  DATETIME NOT NULL,
    finished_at DATETIME NOT NULL,
    since       DATETIME NOT NULL,
    until       DATETIME NOT NULL,
    listed      INTEGER  NOT NULL DEFAULT 0,
    missing     INTEGER  NOT NULL DEFAULT 0,
    invalid     INTEGER  NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX reconcile_runs_until_idx ON reconcile_runs (until) WHERE error IS NULL;
