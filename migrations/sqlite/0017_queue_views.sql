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
