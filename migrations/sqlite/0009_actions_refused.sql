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
    CONSTRAINT actions_client_key UNIQUE (requested_by, client_key),
    CONSTRAINT actions_provider_key UNIQUE (provider_key),
    CONSTRAINT actions_status_check CHECK (status IN ('pending_approval', 'executing', 'succeeded', 'failed', 'rejected', 'refused'))
);
INSERT INTO actions_next SELECT * FROM actions;
DROP TABLE actions;
ALTER TABLE actions_next RENAME TO actions;
CREATE INDEX actions_case_idx ON actions (case_id, created_at);
CREATE INDEX actions_subject_idx ON actions (subject_id, type, status);
CREATE INDEX actions_executing_idx ON actions (updated_at) WHERE status = 'executing';
