-- API tokens expire: when a token stops working. Tokens made before this migration
-- get a year from when they were made (the default lifetime).
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:00';
UPDATE api_tokens SET expires_at = datetime(created_at, '+365 days');
