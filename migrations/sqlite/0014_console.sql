-- The agent console: password sign-in, server-side sessions and the record
-- of failed sign-ins that rate limiting counts. See the PostgreSQL
-- migration for what each table means.

ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE console_sessions (
    id           TEXT     PRIMARY KEY,
    user_id      INTEGER  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf         TEXT     NOT NULL,
    created_at   DATETIME NOT NULL,
    last_seen_at DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL,
    ip           TEXT     NOT NULL DEFAULT '',
    user_agent   TEXT     NOT NULL DEFAULT ''
);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);

CREATE TABLE login_attempts (
    id    INTEGER  PRIMARY KEY AUTOINCREMENT,
    email TEXT     NOT NULL,
    ip    TEXT     NOT NULL,
    at    DATETIME NOT NULL
);
CREATE INDEX login_attempts_email_idx ON login_attempts (email, at);
CREATE INDEX login_attempts_ip_idx ON login_attempts (ip, at);
