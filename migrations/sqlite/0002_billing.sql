-- Billing mirror: the provider's objects as last seen, keyed by provider id.
-- Every row records the event that last wrote it (event_id, event_created;
-- prev_status is the status that event's previous_attributes said it left):
-- the store compares an incoming event against it and never lets an older
-- event overwrite newer state. Times are written from Go in UTC. Nothing
-- that could hold a full card number, CVC or bank account number is kept:
-- cards are brand, last four and fingerprint only. Text columns use '' for
-- "none" so they compare the same on both dialects.

CREATE TABLE billing_customers (
    id                         TEXT PRIMARY KEY,
    email                      TEXT NOT NULL DEFAULT '',
    name                       TEXT NOT NULL DEFAULT '',
    livemode                   BOOLEAN NOT NULL DEFAULT 0,
    has_default_payment_method BOOLEAN NOT NULL DEFAULT 0,
    deleted                    BOOLEAN NOT NULL DEFAULT 0,
    created                    DATETIME NOT NULL,
    event_id                   TEXT NOT NULL,
    event_created              DATETIME NOT NULL,
    created_at                 DATETIME NOT NULL,
    updated_at                 DATETIME NOT NULL
);

-- has_default_payment_method is the subscription's own default_payment_method
-- or default_source; readers OR in the customer's default.
CREATE TABLE billing_subscriptions (
    id                         TEXT PRIMARY KEY,
    customer_id                TEXT NOT NULL DEFAULT '',
    status                     TEXT NOT NULL DEFAULT '',
    trial_start                DATETIME,
    trial_end                  DATETIME,
    current_period_start       DATETIME,
    current_period_end         DATETIME,
    cancel_at_period_end       BOOLEAN NOT NULL DEFAULT 0,
    cancel_at                  DATETIME,
    canceled_at                DATETIME,
    ended_at                   DATETIME,
    cancellation_reason        TEXT NOT NULL DEFAULT '',
    cancellation_feedback      TEXT NOT NULL DEFAULT '',
    cancellation_comment       TEXT NOT NULL DEFAULT '',
    pause_collection           TEXT NOT NULL DEFAULT '',
    pause_resumes_at           DATETIME,
    price_id                   TEXT NOT NULL DEFAULT '',
    product_id                 TEXT NOT NULL DEFAULT '',
    amount                     INTEGER NOT NULL DEFAULT 0,
    currency                   TEXT NOT NULL DEFAULT '',
    "interval"                 TEXT NOT NULL DEFAULT '',
    has_default_payment_method BOOLEAN NOT NULL DEFAULT 0,
    latest_invoice_id          TEXT NOT NULL DEFAULT '',
    created                    DATETIME NOT NULL,
    prev_status                TEXT NOT NULL DEFAULT '',
    event_id                   TEXT NOT NULL,
    event_created              DATETIME NOT NULL,
    created_at                 DATETIME NOT NULL,
    updated_at                 DATETIME NOT NULL
);
CREATE INDEX billing_subscriptions_customer_idx ON billing_subscriptions (customer_id, created);

CREATE TABLE billing_invoices (
    id                   TEXT PRIMARY KEY,
    customer_id          TEXT NOT NULL DEFAULT '',
    subscription_id      TEXT NOT NULL DEFAULT '',
    charge_id            TEXT NOT NULL DEFAULT '',
    payment_intent_id    TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL DEFAULT '',
    billing_reason       TEXT NOT NULL DEFAULT '',
    attempt_count        INTEGER NOT NULL DEFAULT 0,
    next_payment_attempt DATETIME,
    amount_due           INTEGER NOT NULL DEFAULT 0,
    amount_paid          INTEGER NOT NULL DEFAULT 0,
    amount_remaining     INTEGER NOT NULL DEFAULT 0,
    currency             TEXT NOT NULL DEFAULT '',
    last_failure_code    TEXT NOT NULL DEFAULT '',
    hosted_invoice_url   TEXT NOT NULL DEFAULT '',
    created              DATETIME NOT NULL,
    prev_status          TEXT NOT NULL DEFAULT '',
    event_id             TEXT NOT NULL,
    event_created        DATETIME NOT NULL,
    created_at           DATETIME NOT NULL,
    updated_at           DATETIME NOT NULL
);
CREATE INDEX billing_invoices_subscription_idx ON billing_invoices (subscription_id, created);
CREATE INDEX billing_invoices_customer_idx ON billing_invoices (customer_id, created);

CREATE TABLE billing_charges (
    id                TEXT PRIMARY KEY,
    customer_id       TEXT NOT NULL DEFAULT '',
    invoice_id        TEXT NOT NULL DEFAULT '',
    payment_intent_id TEXT NOT NULL DEFAULT '',
    amount            INTEGER NOT NULL DEFAULT 0,
    amount_refunded   INTEGER NOT NULL DEFAULT 0,
    currency          TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT '',
    paid              BOOLEAN NOT NULL DEFAULT 0,
    disputed          BOOLEAN NOT NULL DEFAULT 0,
    refunded          BOOLEAN NOT NULL DEFAULT 0,
    failure_code      TEXT NOT NULL DEFAULT '',
    failure_message   TEXT NOT NULL DEFAULT '',
    card_brand        TEXT NOT NULL DEFAULT '',
    card_last4        TEXT NOT NULL DEFAULT '',
    card_fingerprint  TEXT NOT NULL DEFAULT '',
    created           DATETIME NOT NULL,
    prev_status       TEXT NOT NULL DEFAULT '',
    event_id          TEXT NOT NULL,
    event_created     DATETIME NOT NULL,
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL,
    CONSTRAINT billing_charges_last4_check CHECK (length(card_last4) <= 4)
);
CREATE INDEX billing_charges_customer_idx ON billing_charges (customer_id, created);
CREATE INDEX billing_charges_invoice_idx ON billing_charges (invoice_id);
CREATE INDEX billing_charges_payment_intent_idx ON billing_charges (payment_intent_id);

CREATE TABLE billing_refunds (
    id                TEXT PRIMARY KEY,
    charge_id         TEXT NOT NULL DEFAULT '',
    payment_intent_id TEXT NOT NULL DEFAULT '',
    customer_id       TEXT NOT NULL DEFAULT '',
    amount            INTEGER NOT NULL DEFAULT 0,
    currency          TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT '',
    reason            TEXT NOT NULL DEFAULT '',
    failure_reason    TEXT NOT NULL DEFAULT '',
    created           DATETIME NOT NULL,
    prev_status       TEXT NOT NULL DEFAULT '',
    event_id          TEXT NOT NULL,
    event_created     DATETIME NOT NULL,
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL
);
CREATE INDEX billing_refunds_charge_idx ON billing_refunds (charge_id, created);

CREATE TABLE billing_disputes (
    id                   TEXT PRIMARY KEY,
    charge_id            TEXT NOT NULL DEFAULT '',
    payment_intent_id    TEXT NOT NULL DEFAULT '',
    customer_id          TEXT NOT NULL DEFAULT '',
    amount               INTEGER NOT NULL DEFAULT 0,
    currency             TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL DEFAULT '',
    reason               TEXT NOT NULL DEFAULT '',
    network_reason_code  TEXT NOT NULL DEFAULT '',
    card_brand           TEXT NOT NULL DEFAULT '',
    evidence_due_by      DATETIME,
    has_evidence         BOOLEAN NOT NULL DEFAULT 0,
    past_due             BOOLEAN NOT NULL DEFAULT 0,
    submission_count     INTEGER NOT NULL DEFAULT 0,
    is_charge_refundable BOOLEAN NOT NULL DEFAULT 0,
    funds_withdrawn      BOOLEAN NOT NULL DEFAULT 0,
    funds_reinstated     BOOLEAN NOT NULL DEFAULT 0,
    created              DATETIME NOT NULL,
    prev_status          TEXT NOT NULL DEFAULT '',
    event_id             TEXT NOT NULL,
    event_created        DATETIME NOT NULL,
    created_at           DATETIME NOT NULL,
    updated_at           DATETIME NOT NULL
);
CREATE INDEX billing_disputes_charge_idx ON billing_disputes (charge_id, created);
CREATE INDEX billing_disputes_status_due_idx ON billing_disputes (status, evidence_due_by);

CREATE TABLE billing_fraud_warnings (
    id                TEXT PRIMARY KEY,
    charge_id         TEXT NOT NULL DEFAULT '',
    payment_intent_id TEXT NOT NULL DEFAULT '',
    customer_id       TEXT NOT NULL DEFAULT '',
    fraud_type        TEXT NOT NULL DEFAULT '',
    actionable        BOOLEAN NOT NULL DEFAULT 0,
    created           DATETIME NOT NULL,
    event_id          TEXT NOT NULL,
    event_created     DATETIME NOT NULL,
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL
);
CREATE INDEX billing_fraud_warnings_charge_idx ON billing_fraud_warnings (charge_id, created);

-- One fact per provider event on the customer's billing timeline; at is when
-- it happened at the provider. customer_id is '' until known: facts about a
-- charge's refunds, disputes and fraud warnings carry charge_id and are
-- attached to the customer once the charge is mirrored.
CREATE TABLE billing_timeline (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL DEFAULT '',
    at          DATETIME NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    object      TEXT NOT NULL,
    object_id   TEXT NOT NULL DEFAULT '',
    charge_id   TEXT NOT NULL DEFAULT '',
    summary     TEXT NOT NULL,
    severity    TEXT NOT NULL,
    created_at  DATETIME NOT NULL,
    CONSTRAINT billing_timeline_event_id_key UNIQUE (event_id),
    CONSTRAINT billing_timeline_severity_check CHECK (severity IN ('info', 'warning', 'critical'))
);
CREATE INDEX billing_timeline_customer_idx ON billing_timeline (customer_id, at, id);
CREATE INDEX billing_timeline_charge_idx ON billing_timeline (charge_id) WHERE customer_id = '' AND charge_id <> '';
CREATE INDEX billing_timeline_object_idx ON billing_timeline (object_id);
