-- An approved (or resumed) action that policy refuses when re-checked right
-- before the provider call ends `refused`, with the rule's code and message.
-- SQLite cannot alter a CHECK constraint: the table is rebuilt.
CREATE TABLE actions_next (
    id                  TEXT PRIMARY KEY,
    case_id             TEXT        NOT NULL,
    type                TEXT        NOT NULL,
    params              TEXT        NOT NULL,
    reason              TEXT        NOT NULL DEFAULT '',
    status              TEXT        NOT NULL,
    requested_by        TEXT        NOT NULL,
    requested_role      TEXT        NOT NULL,
    client_key          TEXT        NOT NULL,
    request_hash        TEXT        NOT NULL,
    provider_key        TEXT        NOT NULL,
    approval_reasons    TEXT,
    decided_by          TEXT,
    decided_at          DATETIME,
    decision_note       TEXT,
    subject_id          TEXT,
    amount              INTEGER,
    currency            TEXT,
    provider_object_id  TEXT,
    provider_request_id TEXT,
    provider_status     TEXT,
    result              TEXT,
    error_code          TEXT,
    error_message       TEXT,
    attempts            INTEGER     NOT NULL DEFAULT 0,
    lease_until         DATETIME,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    executed_at         DATETIME,
    requested_by_user_id INTEGER,
    decided_by_user_id  INTEGER,
    CONSTRAINT actions_client_key UNIQUE (requested_by, client_key),
    CONSTRAINT actions_provider_key UNIQUE (provider_key),
    CONSTRAINT actions_status_check CHECK (status IN ('pending_approval', 'executing', 'succeeded', 'failed', 'rejected', 'refused'))
);
-- Columns named: the table has grown since 0005 (0006 added the user ids).
INSERT INTO actions_next (id, case_id, type, params, reason, status, requested_by, requested_role, client_key, request_hash, provider_key, approval_reasons, decided_by, decided_at, decision_note, subject_id, amount, currency, provider_object_id, provider_request_id, provider_status, result, error_code, error_message, attempts, lease_until, created_at, updated_at, executed_at, requested_by_user_id, decided_by_user_id)
SELECT id, case_id, type, params, reason, status, requested_by, requested_role, client_key, request_hash, provider_key, approval_reasons, decided_by, decided_at, decision_note, subject_id, amount, currency, provider_object_id, provider_request_id, provider_status, result, error_code, error_message, attempts, lease_until, created_at, updated_at, executed_at, requested_by_user_id, decided_by_user_id FROM actions;
DROP TABLE actions;
ALTER TABLE actions_next RENAME TO actions;
CREATE INDEX actions_case_idx ON actions (case_id, created_at);
CREATE INDEX actions_subject_idx ON actions (subject_id, type, status);
CREATE INDEX actions_executing_idx ON actions (updated_at) WHERE status = 'executing';
