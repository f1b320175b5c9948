-- The worker's ordering key: which of the worker loops applies an event. The
-- intake hashes the event's customer (else its charge, else its object) into
-- it, so every event of one customer is applied by one loop, in order, and
-- two loops' batches do not wait on each other's rows (docs/benchmarks.md).
-- Rows stored before this migration keep 0: one loop applies them.
ALTER TABLE webhook_events ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
