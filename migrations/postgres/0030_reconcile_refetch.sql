-- What each reconciliation run found when it read the stale objects behind
-- open cases at the provider (RECOURSE_RECONCILE_STALE_AFTER): objects
-- read, whose state had changed, whose change reached a case, and that
-- could not be read or applied.
ALTER TABLE reconcile_runs ADD COLUMN stale_checked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reconcile_runs ADD COLUMN stale_changed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reconcile_runs ADD COLUMN stale_fixed   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reconcile_runs ADD COLUMN stale_failed  INTEGER NOT NULL DEFAULT 0;
