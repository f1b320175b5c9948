-- Cases: one row per unit of work, with its FSM state, routing, links to
-- provider objects, SLA clocks and a version for optimistic locking.
CREATE TABLE cases (
    id                         TEXT PRIMARY KEY,
    kind                       TEXT        NOT NULL,
    state                      TEXT        NOT NULL,
    status                     TEXT        NOT NULL,
    resolution                 TEXT,
    priority                   TEXT        NOT NULL,
    priority_rank              INTEGER     NOT NULL,
    assignee                   TEXT,
    team                       TEXT        NOT NULL,
    business_line              TEXT,
    channel                    TEXT        NOT NULL,
    tags                       TEXT        NOT NULL DEFAULT '[]',
    title                      TEXT        NOT NULL DEFAULT '',
    description                TEXT        NOT NULL DEFAULT '',
    inquiry                    BOOLEAN     NOT NULL DEFAULT 0,
    subject_id                 TEXT,
    customer_id                TEXT,
    subscription_id            TEXT,
    invoice_id                 TEXT,
    charge_id                  TEXT,
    dispute_id                 TEXT,
    refund_id                  TEXT,
    fraud_warning_id           TEXT,
    amount                     INTEGER,
    currency                   TEXT,
    evidence_due_by            DATETIME,
    first_response_due         DATETIME NOT NULL,
    resolution_due             DATETIME NOT NULL,
    first_responded_at         DATETIME,
    first_response_breached_at DATETIME,
    resolution_breached_at     DATETIME,
    breached                   BOOLEAN     NOT NULL DEFAULT 0,
    escalated_at               DATETIME,
    version                    INTEGER     NOT NULL,
    created_at                 DATETIME NOT NULL,
    updated_at                 DATETIME NOT NULL,
    closed_at                  DATETIME,
    CONSTRAINT cases_status_check CHECK (status IN ('open', 'closed')),
    CONSTRAINT cases_priority_check CHECK (priority IN ('low', 'normal', 'high', 'urgent') AND priority_rank BETWEEN 1 AND 4),
    CONSTRAINT cases_kind_check CHECK (kind IN ('dispute', 'fraud_warning', 'payment_failure', 'trial_conversion',
        'cancellation', 'refund_failure', 'refund_request', 'billing_inquiry')),
    CONSTRAINT cases_channel_check CHECK (channel IN ('stripe', 'chat', 'email', 'in_app', 'phone', 'internal')),
    CONSTRAINT cases_version_check CHECK (version >= 1)
);

-- Within one kind and provider object there is at most one open case, however
-- events arrive and however many workers race.
CREATE UNIQUE INDEX cases_one_open_idx ON cases (kind, subject_id) WHERE status = 'open';
-- Kinds that are about one provider object for life have one case per object, open or closed.
CREATE UNIQUE INDEX cases_one_per_object_idx ON cases (kind, subject_id)
    WHERE kind IN ('dispute', 'fraud_warning', 'payment_failure', 'refund_failure', 'trial_conversion');
CREATE INDEX cases_subject_idx ON cases (kind, subject_id, created_at);

-- List queries. Each sort order has one wide index: its keyset columns first,
-- then every filter column, so that a list with ANY combination of filters walks
-- that index in order, checks the filters on the index entries (btree scan keys
-- on non-leading columns) and visits the table only for matching rows. Even a
-- combination that matches nothing costs one pass over an index, never a pass
-- over the table with a lookup per row.
CREATE INDEX cases_created_idx ON cases (created_at, id, status, kind, state, team, priority_rank, business_line, assignee, breached);
CREATE INDEX cases_priority_sort_idx ON cases (priority_rank DESC, created_at, id, status, kind, state, team, business_line, assignee, breached);
CREATE INDEX cases_sla_idx ON cases (resolution_due, id, status, kind, state, team, priority_rank, business_line, assignee, breached);
-- The common queues (a kind, a team, a person, a state) go straight to their rows.
CREATE INDEX cases_status_kind_idx ON cases (status, kind, created_at, id);
CREATE INDEX cases_kind_state_idx ON cases (kind, state, created_at, id);
CREATE INDEX cases_team_idx ON cases (team, status, created_at, id);
CREATE INDEX cases_assignee_idx ON cases (assignee, status, created_at, id);
CREATE INDEX cases_breached_idx ON cases (created_at, id) WHERE breached = TRUE;
-- Unassigned queues (assignee=none): a btree cannot order by created_at after an IS NULL.
CREATE INDEX cases_unassigned_idx ON cases (created_at, id, status, team, kind) WHERE assignee IS NULL;
-- The SLA sweeper: open cases whose clocks have not been marked yet.
CREATE INDEX cases_sweep_first_response_idx ON cases (first_response_due)
    WHERE status = 'open' AND first_responded_at IS NULL AND first_response_breached_at IS NULL;
CREATE INDEX cases_sweep_resolution_idx ON cases (resolution_due) WHERE status = 'open' AND resolution_breached_at IS NULL;
-- Links: subject=… and customer=… filters, and finding the cases of an object.
CREATE INDEX cases_customer_idx ON cases (customer_id, created_at) WHERE customer_id IS NOT NULL;
CREATE INDEX cases_subscription_idx ON cases (subscription_id, kind) WHERE subscription_id IS NOT NULL;
CREATE INDEX cases_invoice_idx ON cases (invoice_id) WHERE invoice_id IS NOT NULL;
CREATE INDEX cases_charge_idx ON cases (charge_id, kind) WHERE charge_id IS NOT NULL;
CREATE INDEX cases_dispute_idx ON cases (dispute_id) WHERE dispute_id IS NOT NULL;
CREATE INDEX cases_refund_idx ON cases (refund_id) WHERE refund_id IS NOT NULL;
CREATE INDEX cases_fraud_warning_idx ON cases (fraud_warning_id) WHERE fraud_warning_id IS NOT NULL;

-- The append-only case timeline. Each writer's entry for a provider event lands
-- on a case once (cases and actions may each record the same event).
CREATE TABLE case_timeline (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     TEXT        NOT NULL REFERENCES cases (id),
    at          DATETIME NOT NULL,
    actor       TEXT        NOT NULL,
    actor_type  TEXT        NOT NULL,
    type        TEXT        NOT NULL,
    summary     TEXT        NOT NULL,
    event_id    TEXT,
    occurred_at DATETIME,
    from_state  TEXT,
    to_state    TEXT,
    transition  TEXT,
    body        TEXT,
    CONSTRAINT case_timeline_actor_type_check CHECK (actor_type IN ('person', 'system', 'stripe')),
    CONSTRAINT case_timeline_stripe_event_check CHECK (actor_type <> 'stripe' OR event_id IS NOT NULL)
);
CREATE UNIQUE INDEX case_timeline_event_idx ON case_timeline (case_id, event_id, type) WHERE event_id IS NOT NULL;
CREATE INDEX case_timeline_case_idx ON case_timeline (case_id, at, id);

CREATE TRIGGER case_timeline_no_update BEFORE UPDATE ON case_timeline
BEGIN SELECT RAISE(ABORT, 'case_timeline is append-only'); END;
CREATE TRIGGER case_timeline_no_delete BEFORE DELETE ON case_timeline
BEGIN SELECT RAISE(ABORT, 'case_timeline is append-only'); END;
