-- Append-only audit log of every mutation through the API and every provider call.
CREATE TABLE audit_log (
    id                  BIGSERIAL PRIMARY KEY,
    at                  TIMESTAMPTZ NOT NULL,
    actor               TEXT        NOT NULL,
    role                TEXT        NOT NULL,
    request_id          TEXT,
    action              TEXT        NOT NULL,
    case_id             TEXT,
    object_type         TEXT,
    object_id           TEXT,
    before              TEXT,
    after               TEXT,
    provider_request_id TEXT,
    detail              TEXT
);
CREATE INDEX audit_log_case_idx ON audit_log (case_id, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_at_idx ON audit_log (at, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
