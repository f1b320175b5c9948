-- Dispute operations: the events outbox, deadline reminders, subscription
-- rules applied after a dispute, and the monthly rollup of successful
-- charges that the dispute-monitoring ratio divides by.

-- events is a durable, append-only outbox other parts subscribe to
-- (GET /api/v1/events?after=<id>). key makes each event happen once however
-- many replicas try (INSERT … ON CONFLICT (key) DO NOTHING).
CREATE TABLE events (
    id         BIGSERIAL   PRIMARY KEY,
    type       TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    subject    TEXT        NOT NULL DEFAULT '',
    at         TIMESTAMPTZ NOT NULL,
    data       TEXT        NOT NULL DEFAULT '{}',
    CONSTRAINT events_key_key UNIQUE (key)
);
CREATE INDEX events_type_idx ON events (type, id);

-- One row per deadline mark on a dispute case: a reminder at a lead time
-- (mark 'reminder:<lead>') or the deadline missed (mark 'missed'). The
-- primary key is what makes each mark happen once.
CREATE TABLE dispute_deadline_marks (
    case_id    TEXT        NOT NULL REFERENCES cases (id),
    mark       TEXT        NOT NULL,
    dispute_id TEXT        NOT NULL DEFAULT '',
    due_by     TIMESTAMPTZ NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (case_id, mark)
);
CREATE INDEX dispute_deadline_marks_missed_idx ON dispute_deadline_marks (dispute_id) WHERE mark = 'missed';

-- One row per (dispute case, trigger) whose subscription rule was applied:
-- trigger is opened, lost or won; outcome the rule's answer; action_id the
-- action requested ('' for leave or nothing to act on).
CREATE TABLE dispute_rule_triggers (
    case_id         TEXT        NOT NULL REFERENCES cases (id),
    trigger         TEXT        NOT NULL,
    rule            TEXT        NOT NULL DEFAULT '',
    outcome         TEXT        NOT NULL DEFAULT '',
    subscription_id TEXT        NOT NULL DEFAULT '',
    action_id       TEXT        NOT NULL DEFAULT '',
    detail          TEXT        NOT NULL DEFAULT '',
    at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (case_id, trigger)
);

-- Successful charges per month (of the charge's creation, UTC, 'YYYY-MM'),
-- card brand and currency, kept by the billing mirror as charges become
-- succeeded. billing_charge_counted holds each counted charge once, so a
-- replayed or out-of-order event never counts a charge twice.
CREATE TABLE billing_charge_months (
    month           TEXT   NOT NULL,
    brand           TEXT   NOT NULL,
    currency        TEXT   NOT NULL,
    succeeded_count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (month, brand, currency)
);
CREATE TABLE billing_charge_counted (
    charge_id TEXT NOT NULL PRIMARY KEY,
    month     TEXT NOT NULL,
    brand     TEXT NOT NULL
);
INSERT INTO billing_charge_counted (charge_id, month, brand)
SELECT id, to_char(created AT TIME ZONE 'UTC', 'YYYY-MM'), card_brand FROM billing_charges WHERE status = 'succeeded';
INSERT INTO billing_charge_months (month, brand, currency, succeeded_count)
SELECT to_char(created AT TIME ZONE 'UTC', 'YYYY-MM'), card_brand, currency, count(*)
FROM billing_charges WHERE status = 'succeeded'
GROUP BY 1, 2, 3;

-- Dispute analytics read disputes by creation time.
CREATE INDEX billing_disputes_created_idx ON billing_disputes (created);
-- Which dispute cases opened as an inquiry (for inquiry → chargeback
-- conversion): a small partial index over the opening entries.
CREATE INDEX case_timeline_inquiry_opened_idx ON case_timeline (case_id) WHERE to_state = 'warning_needs_response';

-- Dispute analytics read whole months from this rollup, refreshed by a
-- sweep (StatsReader.Refresh): one row per month (of the dispute's
-- creation, UTC) and combination of the dimensions the stats group and
-- count by, with the number of disputes and their amount. Partial months at
-- the edges of a range are read from billing_disputes directly.
CREATE TABLE dispute_stats_months (
    month         TEXT    NOT NULL,
    brand         TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    network_code  TEXT    NOT NULL,
    currency      TEXT    NOT NULL,
    business_line TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    countered     BOOLEAN NOT NULL,
    missed        BOOLEAN NOT NULL,
    was_inquiry   BOOLEAN NOT NULL,
    n             BIGINT  NOT NULL,
    amount        BIGINT  NOT NULL
);
CREATE INDEX dispute_stats_months_month_idx ON dispute_stats_months (month);
-- The refresh's state: one row; watermark is when the last refresh read the
-- mirror, full_at when the rollup was last rebuilt whole.
CREATE TABLE dispute_stats_refresh (
    id        INTEGER     PRIMARY KEY,
    watermark TIMESTAMPTZ,
    full_at   TIMESTAMPTZ
);
INSERT INTO dispute_stats_refresh (id) VALUES (1);
CREATE INDEX billing_disputes_updated_idx ON billing_disputes (updated_at);
