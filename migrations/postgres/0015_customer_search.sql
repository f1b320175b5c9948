-- Customer search (GET /api/v1/customers?q=, the console's header search).
-- Every kind of search is one btree range scan, without extensions:
--
--   email / name prefix  lower(column) in byte order (COLLATE "C"), so a
--                        prefix is the range [p, p || U+10FFFF) whatever
--                        the database's collation, and the index also
--                        gives the result order (then id, for the cursor);
--   card                 last four (then the customer) on the charges;
--   provider ids         primary keys that already exist.
CREATE INDEX billing_customers_email_search_idx ON billing_customers ((lower(email) COLLATE "C"), id);
CREATE INDEX billing_customers_name_search_idx ON billing_customers ((lower(name) COLLATE "C"), id);
CREATE INDEX billing_charges_card_search_idx ON billing_charges (card_last4, customer_id) WHERE card_last4 <> '';

-- Open cases per customer, counted for each search result.
CREATE INDEX cases_customer_open_idx ON cases (customer_id) WHERE status = 'open';
