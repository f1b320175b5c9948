-- Dispute operations: the events outbox, deadline reminders, subscription
-- rules applied after a dispute, and the monthly rollup of successful
-- charges that the dispute-monitoring ratio divides by. See the PostgreSQL
-- migration for what each table means.

CREATE TABLE events (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    type       TEXT     NOT NULL,
    key        TEXT     NOT NULL,
    subject    TEXT     NOT NULL DEFAULT '',
    at         DATETIME NOT NULL,
    data       TEXT     NOT NULL DEFAULT '{}',
    CONSTRAINT events_key_key UNIQUE (key)
);
CREATE INDEX events_type_idx ON events (type, id);

CREATE TABLE dispute_deadline_marks (
    case_id    TEXT     NOT NULL REFERENCES cases (id),
    mark       TEXT     NOT NULL,
    dispute_id TEXT     NOT NULL DEFAULT '',
    due_by     DATETIME NOT NULL,
    at         DATETIME NOT NULL,
    PRIMARY KEY (case_id, mark)
);
CREATE INDEX dispute_deadline_marks_missed_idx ON dispute_deadline_marks (dispute_id) WHERE mark = 'missed';

CREATE TABLE dispute_rule_triggers (
    case_id         TEXT     NOT NULL REFERENCES cases (id),
    trigger         TEXT     NOT NULL,
    rule            TEXT     NOT NULL DEFAULT '',
    outcome         TEXT     NOT NULL DEFAULT '',
    subscription_id TEXT     NOT NULL DEFAULT '',
    action_id       TEXT     NOT NULL DEFAULT '',
    detail          TEXT     NOT NULL DEFAULT '',
    at              DATETIME NOT NULL,
    PRIMARY KEY (case_id, trigger)
);

CREATE TABLE billing_charge_months (
    month           TEXT    NOT NULL,
    brand           TEXT    NOT NULL,
    currency        TEXT    NOT NULL,
    succeeded_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, brand, currency)
);
CREATE TABLE billing_charge_counted (
    charge_id TEXT NOT NULL PRIMARY KEY,
    month     TEXT NOT NULL,
    brand     TEXT NOT NULL
);
INSERT INTO billing_charge_counted (charge_id, month, brand)
SELECT id, substr(created, 1, 7), card_brand FROM billing_charges WHERE status = 'succeeded';
INSERT INTO billing_charge_months (month, brand, currency, succeeded_count)
SELECT substr(created, 1, 7), card_brand, currency, count(*)
FROM billing_charges WHERE status = 'succeeded'
GROUP BY 1, 2, 3;

CREATE INDEX billing_disputes_created_idx ON billing_disputes (created);
CREATE INDEX case_timeline_inquiry_opened_idx ON case_timeline (case_id) WHERE to_state = 'warning_needs_response';

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
    n             INTEGER NOT NULL,
    amount        INTEGER NOT NULL
);
CREATE INDEX dispute_stats_months_month_idx ON dispute_stats_months (month);
CREATE TABLE dispute_stats_refresh (
    id        INTEGER  PRIMARY KEY,
    watermark DATETIME,
    full_at   DATETIME
);
INSERT INTO dispute_stats_refresh (id) VALUES (1);
CREATE INDEX billing_disputes_updated_idx ON billing_disputes (updated_at);
