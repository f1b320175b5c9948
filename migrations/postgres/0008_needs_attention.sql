-- A case flagged for a person: the provider reported something Recourse
-- cannot act on by itself (a status it does not know yet). GET /cases
-- filters on it (needs_attention=true), so it is indexed where set.
ALTER TABLE cases ADD COLUMN needs_attention BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX cases_needs_attention ON cases (created_at) WHERE needs_attention;
