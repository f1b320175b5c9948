-- One-time password links: an admin (or an operator at the command line)
-- makes a link that lets one user set their console password once.
-- token_hash is the SHA-256 (hex) of the random token in the link; the
-- token itself is never stored. A link is spent when used_at is set and
-- dead after expires_at.
CREATE TABLE password_links (
    id                 BIGSERIAL   PRIMARY KEY,
    token_hash         TEXT        NOT NULL UNIQUE,
    user_id            BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by         TEXT        NOT NULL,
    created_by_user_id BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    expires_at         TIMESTAMPTZ NOT NULL,
    used_at            TIMESTAMPTZ
);
CREATE INDEX password_links_user_idx ON password_links (user_id);
