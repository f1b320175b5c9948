-- Read-only views for BI tools (Metabase, Tableau, Looker, psql): one row per
-- case, action, dispute and webhook event, with the joins and derived columns
-- analysts otherwise rewrite in every question (docs/sql.md). They hold no
-- secrets, token or password hashes, raw payloads, provider results, free
-- text (titles, descriptions, reasons, notes) or customer names and emails:
-- ids, states, amounts, times and flags only. Grant a reporting role SELECT
-- on the bi_* views alone.
--
-- The views read columns by name. A later migration that drops or retypes a
-- column they read must DROP VIEW and CREATE it again (PostgreSQL refuses
-- otherwise), and a SQLite migration that rebuilds one of their tables
-- (CREATE t_next … DROP t … RENAME) must drop them first and create them
-- after: SQLite checks every view when a table is renamed.
--
-- Durations are seconds (floating point); booleans are 0 and 1 (SQLite has no boolean type).

CREATE VIEW bi_cases AS
SELECT c.id                                        AS case_id,
       c.kind,
       c.state,
       c.status,
       c.resolution,
       c.priority,
       c.priority_rank,
       c.team,
       c.business_line,
       c.channel,
       c.assignee,
       (SELECT u.email FROM users u WHERE u.display_name = c.assignee
        ORDER BY u.active DESC, u.id LIMIT 1)      AS assignee_email,
       c.customer_id,
       c.subscription_id,
       c.invoice_id,
       c.charge_id,
       c.dispute_id,
       c.amount,
       c.currency,
       c.inquiry,
       c.needs_attention,
       c.created_at                                AS opened_at,
       c.closed_at,
       c.status = 'closed'                         AS is_closed,
       (julianday(c.closed_at) - julianday(c.created_at)) * 86400.0 AS resolution_seconds,
       c.first_response_due,
       c.first_responded_at,
       (julianday(c.first_responded_at) - julianday(c.created_at)) * 86400.0 AS first_response_seconds,
       c.first_response_breached_at IS NOT NULL    AS first_response_breached,
       c.first_response_breached_at,
       c.resolution_due,
       c.resolution_breached_at IS NOT NULL        AS resolution_breached,
       c.resolution_breached_at,
       c.sla_due,
       c.breached,
       c.sla_paused_at IS NOT NULL                 AS sla_paused,
       c.sla_paused_total_us / 1000000.0 AS sla_paused_seconds,
       c.escalated_at,
       c.escalated_at IS NOT NULL                  AS escalated,
       c.evidence_due_by,
       c.updated_at
FROM cases c;

CREATE VIEW bi_actions AS
SELECT a.id                                        AS action_id,
       a.case_id,
       c.kind                                      AS case_kind,
       c.team,
       c.business_line,
       c.customer_id,
       a.type,
       a.status,
       a.subject_id,
       a.amount,
       a.currency,
       a.requested_by,
       a.requested_by_user_id,
       a.requested_role,
       COALESCE(a.approval_reasons, '') NOT IN ('', '[]', 'null') AS needed_approval,
       a.decided_by,
       a.decided_by_user_id,
       a.decided_at,
       a.provider_object_id,
       a.provider_status,
       a.error_code,
       a.attempts,
       a.created_at                                AS requested_at,
       a.executed_at,
       (julianday(a.decided_at) - julianday(a.created_at)) * 86400.0  AS decision_seconds,
       (julianday(a.executed_at) - julianday(a.created_at)) * 86400.0 AS completion_seconds,
       a.updated_at
FROM actions a
LEFT JOIN cases c ON c.id = a.case_id;

CREATE VIEW bi_disputes AS
SELECT d.id                                        AS dispute_id,
       d.charge_id,
       d.payment_intent_id,
       d.customer_id,
       d.amount,
       d.currency,
       d.status,
       substr(d.status, 1, 8) = 'warning_'       AS is_inquiry,
       d.status IN ('won', 'lost', 'warning_closed', 'prevented', 'charge_refunded') AS is_final,
       d.status = 'won'                            AS won,
       d.status = 'lost'                           AS lost,
       d.reason,
       d.network_reason_code,
       d.card_brand,
       d.evidence_due_by,
       d.has_evidence,
       d.past_due,
       d.submission_count,
       d.is_charge_refundable,
       d.funds_withdrawn,
       d.funds_reinstated,
       d.created,
       c.id                                        AS case_id,
       c.state                                     AS case_state,
       c.status                                    AS case_status,
       c.resolution                                AS case_resolution,
       c.team,
       c.business_line,
       c.assignee,
       e.status                                    AS evidence_status,
       e.staged_at                                 AS evidence_staged_at,
       e.submitted_at                              AS evidence_submitted_at,
       EXISTS (SELECT 1 FROM dispute_deadline_marks m WHERE m.case_id = c.id AND m.mark = 'missed') AS deadline_missed,
       d.updated_at
FROM billing_disputes d
LEFT JOIN cases c ON c.id = (SELECT k.id FROM cases k WHERE k.kind = 'dispute' AND k.dispute_id = d.id
                             ORDER BY k.created_at, k.id LIMIT 1)
LEFT JOIN dispute_evidence_drafts e ON e.case_id = c.id;

CREATE VIEW bi_webhook_events AS
SELECT w.id,
       w.event_id,
       w.provider,
       w.type,
       w.created,
       w.livemode,
       w.account,
       w.api_version,
       w.object_type,
       w.object_id,
       w.status,
       w.attempts,
       w.last_error,
       w.received_at,
       w.processed_at,
       (julianday(w.processed_at) - julianday(w.received_at)) * 86400.0 AS processing_seconds,
       (julianday(w.received_at) - julianday(w.created)) * 86400.0      AS delivery_delay_seconds
FROM webhook_events w;
