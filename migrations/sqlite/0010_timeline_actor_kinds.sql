-- One actor vocabulary (auth.ActorKind): the timeline names a person `user`,
-- as the audit log does, and may name a command-line operator (`cli`).
-- SQLite cannot alter a CHECK constraint: the table is rebuilt, rewriting
-- `person` on the way (the append-only guards are recreated after).
CREATE TABLE case_timeline_next (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     TEXT        NOT NULL REFERENCES cases (id),
    at          DATETIME NOT NULL,
    actor       TEXT        NOT NULL,
    actor_type  TEXT        NOT NULL,
    type        TEXT        NOT NULL,
    summary     TEXT        NOT NULL,
    event_id    TEXT,
    occurred_at DATETIME,
    from_state  TEXT,
    to_state    TEXT,
    transition  TEXT,
    body        TEXT,
    CONSTRAINT case_timeline_actor_type_check CHECK (actor_type IN ('user', 'system', 'cli', 'stripe')),
    CONSTRAINT case_timeline_stripe_event_check CHECK (actor_type <> 'stripe' OR event_id IS NOT NULL)
);
INSERT INTO case_timeline_next (id, case_id, at, actor, actor_type, type, summary, event_id, occurred_at, from_state, to_state, transition, body)
SELECT id, case_id, at, actor, CASE actor_type WHEN 'person' THEN 'user' ELSE actor_type END,
       type, summary, event_id, occurred_at, from_state, to_state, transition, body
FROM case_timeline;
DROP TABLE case_timeline;
ALTER TABLE case_timeline_next RENAME TO case_timeline;
CREATE UNIQUE INDEX case_timeline_event_idx ON case_timeline (case_id, event_id, type) WHERE event_id IS NOT NULL;
CREATE INDEX case_timeline_case_idx ON case_timeline (case_id, at, id);
CREATE TRIGGER case_timeline_no_update BEFORE UPDATE ON case_timeline
BEGIN SELECT RAISE(ABORT, 'case_timeline is append-only'); END;
CREATE TRIGGER case_timeline_no_delete BEFORE DELETE ON case_timeline
BEGIN SELECT RAISE(ABORT, 'case_timeline is append-only'); END;
