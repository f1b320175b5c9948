-- Reports (reports.Store, GET /api/v1/reports/{name}) count events in a
-- time range: cases opened, closed and first responded to, SLA breach,
-- reopen and escalation entries, actions requested and decided, failed
-- charges and refunds. Each event time gets an index, partial where only
-- some rows have one, so a 30-day report reads its month and not the
-- history. The case indexes carry the columns the reports group by (kind,
-- channel, team, business_line, assignee) and measure with (creation, due
-- and breach times), so PostgreSQL answers from the index alone
-- (index-only scans) without visiting a row per case.
CREATE INDEX cases_report_created_idx ON cases (created_at, kind, channel, team, business_line, assignee);
CREATE INDEX cases_report_closed_idx ON cases (closed_at, created_at, resolution_due, resolution_breached_at, kind, channel, team, business_line, assignee)
    WHERE closed_at IS NOT NULL;
CREATE INDEX cases_report_responded_idx ON cases (first_responded_at, created_at, first_response_due, first_response_breached_at, kind, channel, team, business_line, assignee)
    WHERE first_responded_at IS NOT NULL;
-- The backlog at a report's start: cases still open, by creation.
CREATE INDEX cases_report_open_idx ON cases (created_at, kind, channel, team, business_line, assignee) WHERE closed_at IS NULL;
-- Recovery: payment failures, trial conversions and cancellations closed,
-- with their outcome and amount; and which cases had a retention offer.
CREATE INDEX cases_report_outcomes_idx ON cases (closed_at, kind, state, currency, amount, id)
    WHERE kind IN ('payment_failure', 'trial_conversion', 'cancellation') AND closed_at IS NOT NULL;
CREATE INDEX case_timeline_retention_offered_idx ON case_timeline (case_id) WHERE to_state = 'retention_offered';
-- Tagged cases by creation (root causes by tag).
CREATE INDEX cases_tagged_idx ON cases (created_at) WHERE tags <> '[]';
-- Reopen, escalation and SLA breach entries by time (a small slice of the timeline).
CREATE INDEX case_timeline_report_idx ON case_timeline (type, at) WHERE type IN ('reopened', 'escalated', 'sla_breached');
CREATE INDEX actions_created_idx ON actions (created_at);
CREATE INDEX actions_decided_idx ON actions (decided_at) WHERE decided_at IS NOT NULL;
CREATE INDEX billing_charges_failed_idx ON billing_charges (created) WHERE status = 'failed';
CREATE INDEX billing_refunds_created_idx ON billing_refunds (created);
