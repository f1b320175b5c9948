-- PostgreSQL partitions webhook_events by month here (retention drops a
-- month instead of deleting its rows). SQLite keeps the plain table: it has
-- no partitions, and a deployment on SQLite is small enough for row deletes.
-- Its unique event_id is at least as strict as PostgreSQL's
-- (event_id, created), and the intake's ON CONFLICT DO NOTHING absorbs a
-- duplicate under either. This file keeps the numbering of both sets equal.
SELECT 1;
