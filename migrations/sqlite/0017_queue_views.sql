-- Queues a desk works all day: the updated_at sort order and saved views.
-- See the PostgreSQL migration for what each part means.

CREATE INDEX cases_updated_idx ON cases (updated_at, id, status, kind, state, team, priority_rank, business_line, assignee, breached);

CREATE TABLE saved_views (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    owner_id   INTEGER  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    owner_name TEXT     NOT NULL,
    name       TEXT     NOT NULL,
    query      TEXT     NOT NULL,
    shared     BOOLEAN  NOT NULL DEFAULT FALSE,
    created_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX saved_views_owner_name_idx ON saved_views (owner_id, name);
CREATE INDEX saved_views_shared_idx ON saved_views (created_at) WHERE shared;

-- sla_due: see the PostgreSQL migration.
ALTER TABLE cases ADD COLUMN sla_due DATETIME;
UPDATE cases SET sla_due = CASE WHEN first_responded_at IS NULL AND first_response_due < resolution_due
    THEN first_response_due ELSE resolution_due END;
CREATE INDEX cases_sla_due_idx ON cases (sla_due, id, status, kind, state, team, priority_rank, business_line, assignee, breached);
DROP INDEX cases_sla_idx;
