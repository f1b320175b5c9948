-- Queues a desk works all day: the updated_at sort order and saved views.

-- Keyset paging by updated_at (both directions walk this one index), built
-- like the other sort indexes in 0004: keyset columns first, then every
-- filter column, so any filter combination is checked on index entries.
CREATE INDEX cases_updated_idx ON cases (updated_at, id, status, kind, state, team, priority_rank, business_line, assignee, breached);

-- A saved view is a named filter of GET /cases (its query string, validated
-- exactly like the list's parameters), owned by one user and visible only
-- to that user unless shared, in which case everyone who may read cases sees
-- it (only its owner may delete it).
CREATE TABLE saved_views (
    id         BIGSERIAL   PRIMARY KEY,
    owner_id   BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    owner_name TEXT        NOT NULL,
    name       TEXT        NOT NULL,
    query      TEXT        NOT NULL,
    shared     BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX saved_views_owner_name_idx ON saved_views (owner_id, name);
CREATE INDEX saved_views_shared_idx ON saved_views (created_at) WHERE shared;

-- sort=sla orders by the deadline a case is working against now
-- (cases.SLA.NextDue: the first response while it is owed and earlier, else
-- the resolution), the same time the queue's countdown shows. The store
-- writes it with every insert and update; rows written before are filled
-- here. It replaces cases_sla_idx (resolution_due) as the sla sort index.
ALTER TABLE cases ADD COLUMN sla_due TIMESTAMPTZ;
UPDATE cases SET sla_due = CASE WHEN first_responded_at IS NULL AND first_response_due < resolution_due
    THEN first_response_due ELSE resolution_due END;
CREATE INDEX cases_sla_due_idx ON cases (sla_due, id, status, kind, state, team, priority_rank, business_line, assignee, breached);
DROP INDEX cases_sla_idx;
