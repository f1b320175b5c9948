-- Team and business-line scoping (issue 12, README "Scoping"): a user may
-- be limited to some teams and/or business lines. No row of a dimension
-- means that dimension is unrestricted; no row at all is today's
-- behaviour. Scope is separate from user_teams (queue membership): it is
-- what a user may see and touch at all, read on every request.
CREATE TABLE user_scopes (
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    dimension TEXT   NOT NULL CHECK (dimension IN ('team', 'business_line')),
    value     TEXT   NOT NULL,
    PRIMARY KEY (user_id, dimension, value)
);
