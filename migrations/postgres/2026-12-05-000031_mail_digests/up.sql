-- A mail that collects what happens until it goes (an issuer's new applications) names
-- its digest here; the worker clears the key when it claims the mail, so what happens
-- afterwards starts the next one. At most one open digest per key.
ALTER TABLE mail_outbox ADD COLUMN digest_key TEXT;
CREATE UNIQUE INDEX mail_outbox_one_open_digest ON mail_outbox (digest_key);
