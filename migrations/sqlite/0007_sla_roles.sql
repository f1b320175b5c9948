-- SLA roles (cases/lifecycle.go): a state's clocks run, are paused (waiting
-- on the customer, the issuer or a partner team) or are stopped (closed).
-- sla_paused_at is when the clocks of a case stopped (NULL while they run);
-- sla_paused_total_us is the paused time, in microseconds, already added
-- back to its due times.
ALTER TABLE cases ADD COLUMN sla_paused_at DATETIME;
ALTER TABLE cases ADD COLUMN sla_paused_total_us BIGINT NOT NULL DEFAULT 0;

-- Cases already waiting stop their clocks from their last change (the best
-- record of when they started waiting); closed cases from when they closed.
-- The states are the paused ones declared when this migration was written.
UPDATE cases SET sla_paused_at = updated_at
WHERE status = 'open' AND (
       (kind = 'dispute' AND state IN ('under_review', 'warning_under_review'))
    OR (kind IN ('payment_failure', 'trial_conversion') AND state = 'awaiting_customer')
    OR (kind = 'cancellation' AND state = 'retention_offered')
    OR (kind IN ('refund_request', 'billing_inquiry') AND state = 'waiting_on_customer'));
UPDATE cases SET sla_paused_at = COALESCE(closed_at, updated_at) WHERE status = 'closed';
