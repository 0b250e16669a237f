DROP INDEX mail_outbox_one_open_digest;
ALTER TABLE mail_outbox DROP COLUMN digest_key;
