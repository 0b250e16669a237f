-- API tokens expire: when a token stops working. Tokens made before this migration
-- get a year from when they were made (the default lifetime).
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMP;
UPDATE api_tokens SET expires_at = created_at + INTERVAL '365 days';
ALTER TABLE api_tokens ALTER COLUMN expires_at SET NOT NULL;
