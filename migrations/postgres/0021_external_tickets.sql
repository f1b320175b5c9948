-- Inbound escalations: the ticket in another system (Zendesk, an in-app
-- escalation tool, a chat or email desk) that a case was opened from or
-- linked to. (system, ticket_id) is unique: a ticket delivered twice, or
-- by two deliveries at once, opens one case.
CREATE TABLE case_external_tickets (
    system     TEXT        NOT NULL,
    ticket_id  TEXT        NOT NULL,
    case_id    TEXT        NOT NULL REFERENCES cases (id),
    url        TEXT        NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- SHA-256 of the last subject + description applied, so a redelivered
    -- update adds nothing to the timeline.
    last_hash  TEXT        NOT NULL DEFAULT '',
    PRIMARY KEY (system, ticket_id)
);
CREATE INDEX case_external_tickets_case_idx ON case_external_tickets (case_id);
CREATE INDEX case_external_tickets_ticket_idx ON case_external_tickets (ticket_id);
