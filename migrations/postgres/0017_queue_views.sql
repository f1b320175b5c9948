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
