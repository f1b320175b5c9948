-- The worker claims the first due events in (next_attempt_at, id) order.
-- The due index gains id so that order is the index's own: the claim walks
-- it and stops after a batch (webhooks.Inbox.ClaimShard), instead of reading
-- and sorting every pending row, which with a backlog of 70,000 events took
-- 0.2–0.8 s a claim. Only pending rows are in it, so building it reads the
-- inbox once but writes little.
DROP INDEX webhook_events_due_idx;
CREATE INDEX webhook_events_due_idx ON webhook_events (next_attempt_at, id) WHERE status = 'pending';
