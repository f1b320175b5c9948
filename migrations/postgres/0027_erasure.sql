-- Customer erasure (GDPR art. 17; docs/privacy.md).
--
-- erased_customers: the provider's customer ids whose personal data was
-- erased. The billing mirror checks it when it applies an event, so the
-- provider's later events (Stripe keeps sending them) bring no personal
-- data back. Not a foreign key: an erased customer need not be mirrored.
CREATE TABLE erased_customers (
    customer_id TEXT        PRIMARY KEY,
    erased_at   TIMESTAMPTZ NOT NULL
);

-- erasure_grants holds a row only inside an erasure's own transaction (it
-- is inserted first and deleted before commit, so no other transaction
-- ever sees it). While it is there, the append-only audit log and case
-- timelines accept an UPDATE of their free text alone — who, what, when,
-- which case and which object never change — and never a DELETE.
CREATE TABLE erasure_grants (
    id TEXT PRIMARY KEY
);

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM erasure_grants)
       AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.actor = OLD.actor
       AND NEW.actor_kind = OLD.actor_kind AND NEW.actor_user_id IS NOT DISTINCT FROM OLD.actor_user_id
       AND NEW.role = OLD.role AND NEW.request_id IS NOT DISTINCT FROM OLD.request_id AND NEW.action = OLD.action
       AND NEW.case_id IS NOT DISTINCT FROM OLD.case_id AND NEW.object_type IS NOT DISTINCT FROM OLD.object_type
       AND NEW.object_id IS NOT DISTINCT FROM OLD.object_id
       AND NEW.provider_request_id IS NOT DISTINCT FROM OLD.provider_request_id THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION case_timeline_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM erasure_grants)
       AND NEW.id = OLD.id AND NEW.case_id = OLD.case_id AND NEW.at = OLD.at AND NEW.actor = OLD.actor
       AND NEW.actor_type = OLD.actor_type AND NEW.type = OLD.type
       AND NEW.event_id IS NOT DISTINCT FROM OLD.event_id AND NEW.occurred_at IS NOT DISTINCT FROM OLD.occurred_at
       AND NEW.from_state IS NOT DISTINCT FROM OLD.from_state AND NEW.to_state IS NOT DISTINCT FROM OLD.to_state
       AND NEW.transition IS NOT DISTINCT FROM OLD.transition THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'case_timeline is append-only';
END;
$$ LANGUAGE plpgsql;

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
