-- One actor vocabulary (auth.ActorKind): the timeline names a person `user`,
-- as the audit log does, and may name a command-line operator (`cli`).
-- The rewrite of `person` is the one sanctioned change to the append-only
-- timeline, made with its guard off inside this migration's transaction.
ALTER TABLE case_timeline DROP CONSTRAINT case_timeline_actor_type_check;
ALTER TABLE case_timeline DISABLE TRIGGER case_timeline_no_update;
UPDATE case_timeline SET actor_type = 'user' WHERE actor_type = 'person';
ALTER TABLE case_timeline ENABLE TRIGGER case_timeline_no_update;
ALTER TABLE case_timeline ADD CONSTRAINT case_timeline_actor_type_check
    CHECK (actor_type IN ('user', 'system', 'cli', 'stripe'));
