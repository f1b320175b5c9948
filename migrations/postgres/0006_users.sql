-- Users: the people behind API tokens. A user owns any number of tokens;
-- four eyes compares users, and deactivating a user revokes all their tokens.
CREATE TABLE users (
    id             BIGSERIAL PRIMARY KEY,
    email          TEXT,
    display_name   TEXT        NOT NULL,
    role           TEXT        NOT NULL,
    active         BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    deactivated_at TIMESTAMPTZ,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_role_check CHECK (role IN ('agent', 'analyst', 'supervisor', 'admin'))
);

-- Team memberships (the teams cases are routed to).
CREATE TABLE user_teams (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team    TEXT   NOT NULL,
    PRIMARY KEY (user_id, team)
);

-- Existing tokens named their holder only by the token's name: one user per
-- distinct name, with the highest role among that name's tokens (each token
-- keeps its own role, and a token never acts above its user's role). The
-- email is unknown (NULL) until an admin sets it.
INSERT INTO users (display_name, role, active, created_at, updated_at)
SELECT name,
       CASE MAX(CASE role WHEN 'agent' THEN 1 WHEN 'analyst' THEN 2 WHEN 'supervisor' THEN 3 ELSE 4 END)
           WHEN 1 THEN 'agent' WHEN 2 THEN 'analyst' WHEN 3 THEN 'supervisor' ELSE 'admin' END,
       TRUE, MIN(created_at), MIN(created_at)
FROM api_tokens
GROUP BY name
ORDER BY MIN(id);

ALTER TABLE api_tokens ADD COLUMN user_id BIGINT REFERENCES users (id);
UPDATE api_tokens SET user_id = (SELECT u.id FROM users u WHERE u.display_name = api_tokens.name);
ALTER TABLE api_tokens ALTER COLUMN user_id SET NOT NULL;
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- Actions name their requester and decider as users, so four eyes compares
-- people, not token names. Rows from before are matched by name.
ALTER TABLE actions ADD COLUMN requested_by_user_id BIGINT;
ALTER TABLE actions ADD COLUMN decided_by_user_id BIGINT;
UPDATE actions SET requested_by_user_id = (SELECT u.id FROM users u WHERE u.display_name = actions.requested_by);
UPDATE actions SET decided_by_user_id = (SELECT u.id FROM users u WHERE u.display_name = actions.decided_by)
WHERE decided_by IS NOT NULL;

-- The audit log says what kind of actor acted (user, system, cli, stripe)
-- and, for a user, which one. Older rows are classified once, here.
ALTER TABLE audit_log ADD COLUMN actor_kind TEXT NOT NULL DEFAULT 'user';
ALTER TABLE audit_log ADD COLUMN actor_user_id BIGINT;
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;
UPDATE audit_log SET actor_kind = 'system' WHERE actor = 'system';
UPDATE audit_log SET actor_kind = 'stripe' WHERE actor = 'stripe';
UPDATE audit_log SET actor_user_id = (SELECT u.id FROM users u WHERE u.display_name = audit_log.actor)
WHERE actor_kind = 'user';
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_kind_check CHECK (actor_kind IN ('user', 'system', 'cli', 'stripe'));
CREATE INDEX audit_log_actor_user_idx ON audit_log (actor_user_id, id);
