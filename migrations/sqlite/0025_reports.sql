-- Reports (reports.Store, GET /api/v1/reports/{name}) count events in a
-- time range: cases closed, first responses, SLA breaches, reopen and
-- escalation entries, actions requested and decided, failed charges and
-- refunds. Each gets an index on its time, partial where only some rows
-- have one, so a 30-day report reads its month and not the history.
CREATE INDEX cases_closed_at_idx ON cases (closed_at) WHERE closed_at IS NOT NULL;
-- The backlog at a report's start: cases still open, by creation.
CREATE INDEX cases_open_created_idx ON cases (created_at) WHERE closed_at IS NULL;
CREATE INDEX cases_first_responded_idx ON cases (first_responded_at) WHERE first_responded_at IS NOT NULL;
CREATE INDEX cases_first_response_breached_idx ON cases (first_response_breached_at) WHERE first_response_breached_at IS NOT NULL;
CREATE INDEX cases_resolution_breached_idx ON cases (resolution_breached_at) WHERE resolution_breached_at IS NOT NULL;
-- Tagged cases by creation (root causes by tag).
CREATE INDEX cases_tagged_idx ON cases (created_at) WHERE tags <> '[]';
-- Reopen, escalation and SLA breach entries by time (a small slice of the timeline).
CREATE INDEX case_timeline_report_idx ON case_timeline (type, at) WHERE type IN ('reopened', 'escalated', 'sla_breached');
CREATE INDEX actions_created_idx ON actions (created_at);
CREATE INDEX actions_decided_idx ON actions (decided_at) WHERE decided_at IS NOT NULL;
CREATE INDEX billing_charges_failed_idx ON billing_charges (created) WHERE status = 'failed';
CREATE INDEX billing_refunds_created_idx ON billing_refunds (created);
