-- Customer search. See the PostgreSQL migration; SQLite compares text byte
-- by byte (BINARY) already, so the expressions carry no collation.
CREATE INDEX billing_customers_email_search_idx ON billing_customers (lower(email), id);
CREATE INDEX billing_customers_name_search_idx ON billing_customers (lower(name), id);
CREATE INDEX billing_charges_card_search_idx ON billing_charges (card_last4, customer_id) WHERE card_last4 <> '';

CREATE INDEX cases_customer_open_idx ON cases (customer_id) WHERE status = 'open';
