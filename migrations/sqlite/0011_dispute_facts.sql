-- Evidence facts: what only the merchant's product knows about a customer
-- (sign-ups, logins, usage, consent, notices, communications, delivery),
-- sent through POST /api/v1/customers/{id}/facts or `recourse facts import`.
-- The id is the sender's, unique per customer: a resend is absorbed by the
-- primary key (INSERT … ON CONFLICT DO NOTHING). customer_id is the
-- provider's customer id and deliberately not a foreign key: facts may
-- arrive before the mirror has seen the customer. Text columns use '' for
-- "none"; data is a JSON object as text ('{}' when none). Card numbers are
-- masked before anything is written.
CREATE TABLE dispute_facts (
    customer_id        TEXT     NOT NULL,
    id                 TEXT     NOT NULL,
    kind               TEXT     NOT NULL,
    occurred_at        DATETIME NOT NULL,
    ip                 TEXT     NOT NULL DEFAULT '',
    device_id          TEXT     NOT NULL DEFAULT '',
    device_fingerprint TEXT     NOT NULL DEFAULT '',
    account_id         TEXT     NOT NULL DEFAULT '',
    user_agent         TEXT     NOT NULL DEFAULT '',
    policy_key         TEXT     NOT NULL DEFAULT '',
    policy_version     TEXT     NOT NULL DEFAULT '',
    channel            TEXT     NOT NULL DEFAULT '',
    template           TEXT     NOT NULL DEFAULT '',
    data               TEXT     NOT NULL DEFAULT '{}',
    received_at        DATETIME NOT NULL,
    PRIMARY KEY (customer_id, id),
    CONSTRAINT dispute_facts_kind_check CHECK (kind IN ('signup', 'login', 'usage', 'consent', 'notice', 'communication', 'delivery'))
);
CREATE INDEX dispute_facts_customer_occurred ON dispute_facts (customer_id, occurred_at);

-- Versioned merchant policies (terms, cancellation, refund) that consent
-- facts cite by key + version. A version, once written, never changes.
CREATE TABLE dispute_policy_documents (
    key          TEXT     NOT NULL,
    version      TEXT     NOT NULL,
    title        TEXT     NOT NULL,
    body         TEXT     NOT NULL,
    effective_at DATETIME NOT NULL,
    created_by   TEXT     NOT NULL,
    created_at   DATETIME NOT NULL,
    PRIMARY KEY (key, version)
);
