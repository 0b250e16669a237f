DROP INDEX crls_source_url;
ALTER TABLE crls DROP COLUMN source_url;
