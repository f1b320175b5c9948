-- Team and business-line scoping; see the PostgreSQL migration.
CREATE TABLE user_scopes (
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    dimension TEXT    NOT NULL CHECK (dimension IN ('team', 'business_line')),
    value     TEXT    NOT NULL,
    PRIMARY KEY (user_id, dimension, value)
);
