-- Append-only audit log of every mutation through the API and every provider call.
CREATE TABLE audit_log (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    at                  DATETIME NOT NULL,
    actor               TEXT     NOT NULL,
    role                TEXT     NOT NULL,
    request_id          TEXT,
    action              TEXT     NOT NULL,
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
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
