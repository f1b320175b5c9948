-- Customer erasure (GDPR art. 17; docs/privacy.md). See the PostgreSQL
-- migration for what each table is for.
CREATE TABLE erased_customers (
    customer_id TEXT     PRIMARY KEY,
    erased_at   DATETIME NOT NULL
);

CREATE TABLE erasure_grants (
    id TEXT PRIMARY KEY
);

-- Inside an erasure (a row in erasure_grants) the audit log and case
-- timelines accept an UPDATE of their free text alone; never a DELETE.
DROP TRIGGER audit_log_no_update;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT EXISTS (SELECT 1 FROM erasure_grants)
  OR NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor
  OR NEW.actor_kind IS NOT OLD.actor_kind OR NEW.actor_user_id IS NOT OLD.actor_user_id
  OR NEW.role IS NOT OLD.role OR NEW.request_id IS NOT OLD.request_id OR NEW.action IS NOT OLD.action
  OR NEW.case_id IS NOT OLD.case_id OR NEW.object_type IS NOT OLD.object_type OR NEW.object_id IS NOT OLD.object_id
  OR NEW.provider_request_id IS NOT OLD.provider_request_id
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

DROP TRIGGER case_timeline_no_update;
CREATE TRIGGER case_timeline_no_update BEFORE UPDATE ON case_timeline
WHEN NOT EXISTS (SELECT 1 FROM erasure_grants)
  OR NEW.id IS NOT OLD.id OR NEW.case_id IS NOT OLD.case_id OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor
  OR NEW.actor_type IS NOT OLD.actor_type OR NEW.type IS NOT OLD.type OR NEW.event_id IS NOT OLD.event_id
  OR NEW.occurred_at IS NOT OLD.occurred_at OR NEW.from_state IS NOT OLD.from_state OR NEW.to_state IS NOT OLD.to_state
  OR NEW.transition IS NOT OLD.transition
BEGIN SELECT RAISE(ABORT, 'case_timeline is append-only'); END;

-- What an erasure looks up: the customer's objects, cases by subject, and
-- the audit entries, events and notifications about them.
CREATE INDEX billing_refunds_customer_idx ON billing_refunds (customer_id);
CREATE INDEX billing_disputes_customer_idx ON billing_disputes (customer_id);
CREATE INDEX billing_fraud_warnings_customer_idx ON billing_fraud_warnings (customer_id);
CREATE INDEX cases_subject_id_idx ON cases (subject_id) WHERE subject_id IS NOT NULL;
CREATE INDEX audit_log_object_idx ON audit_log (object_id, id);
CREATE INDEX events_subject_idx ON events (subject, id);
CREATE INDEX notification_deliveries_subject_idx ON notification_deliveries (subject);

-- Payload retention (webhooks.Retention) looks for applied events that
-- still have a payload, oldest first; once emptied a row leaves this index,
-- so it covers only the last RECOURSE_RETENTION_PAYLOAD_DAYS of events and
-- each run skips nothing it emptied before.
CREATE INDEX webhook_events_payload_kept_idx ON webhook_events (created) WHERE status IN ('processed', 'ignored') AND length(payload) > 0;
