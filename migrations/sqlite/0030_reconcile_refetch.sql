-- What each reconciliation run found reading stale objects. See the
-- PostgreSQL migration.
ALTER TABLE reconcile_runs ADD COLUMN stale_checked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reconcile_runs ADD COLUMN stale_changed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reconcile_runs ADD COLUMN stale_fixed   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reconcile_runs ADD COLUMN stale_failed  INTEGER NOT NULL DEFAULT 0;
