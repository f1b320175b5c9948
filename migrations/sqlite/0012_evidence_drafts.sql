-- A dispute case's evidence draft, built by the analyst's workbench
-- (disputes.Workbench): the Stripe evidence text fields, which of them the
-- analyst edited (a re-assembly keeps those), and the rebuttal packet PDF
-- exactly as it will be uploaded (stored, not regenerated, so what was
-- checked is what is sent). version moves on every change.
CREATE TABLE dispute_evidence_drafts (
    case_id        TEXT PRIMARY KEY,
    dispute_id     TEXT        NOT NULL,
    card_brand     TEXT        NOT NULL DEFAULT '',
    version        INTEGER     NOT NULL,
    status         TEXT        NOT NULL,
    fields         TEXT        NOT NULL,
    edited_fields  TEXT        NOT NULL,
    packet         BLOB,
    packet_pages   INTEGER     NOT NULL DEFAULT 0,
    assembled_at   DATETIME,
    assembled_by   TEXT,
    updated_at     DATETIME NOT NULL,
    updated_by     TEXT        NOT NULL,
    sent_action_id TEXT,
    file_ids       TEXT,
    staged_at      DATETIME,
    submitted_at   DATETIME,
    CONSTRAINT dispute_evidence_drafts_status_check CHECK (status IN ('draft', 'staged', 'submitted'))
);
CREATE INDEX dispute_evidence_drafts_dispute_idx ON dispute_evidence_drafts (dispute_id);
