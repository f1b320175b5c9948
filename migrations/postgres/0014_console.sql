-- The agent console: password sign-in, server-side sessions and the record
-- of failed sign-ins that rate limiting counts.

-- A bcrypt hash; NULL means the user cannot sign in to the console.
ALTER TABLE users ADD COLUMN password_hash TEXT;

-- One row per signed-in browser. id is the SHA-256 (hex) of the random
-- token in the recourse_session cookie; the token itself is never stored.
-- A session ends at expires_at (absolute) or when last_seen_at is older
-- than the idle timeout, whichever comes first.
CREATE TABLE console_sessions (
    id           TEXT        PRIMARY KEY,
    user_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf         TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    ip           TEXT        NOT NULL DEFAULT '',
    user_agent   TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);

-- Failed sign-ins, counted per account (the email as typed, lower-cased)
-- and per client IP over a sliding window.
CREATE TABLE login_attempts (
    id    BIGSERIAL   PRIMARY KEY,
    email TEXT        NOT NULL,
    ip    TEXT        NOT NULL,
    at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_attempts_email_idx ON login_attempts (email, at);
CREATE INDEX login_attempts_ip_idx ON login_attempts (ip, at);
