-- Where a CRL came from: NULL when the operator registered it, else the http URL of
-- the CRL distribution point the exchange fetched it from (at created_at).
ALTER TABLE crls ADD COLUMN source_url TEXT;
CREATE INDEX crls_source_url ON crls(source_url);
