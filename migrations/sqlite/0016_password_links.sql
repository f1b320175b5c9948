-- One-time password links. See the PostgreSQL migration for what each
-- column means.
CREATE TABLE password_links (
    id                 INTEGER  PRIMARY KEY AUTOINCREMENT,
    token_hash         TEXT     NOT NULL UNIQUE,
    user_id            INTEGER  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by         TEXT     NOT NULL,
    created_by_user_id INTEGER  REFERENCES users (id) ON DELETE SET NULL,
    created_at         DATETIME NOT NULL,
    expires_at         DATETIME NOT NULL,
    used_at            DATETIME
);
CREATE INDEX password_links_user_idx ON password_links (user_id);
