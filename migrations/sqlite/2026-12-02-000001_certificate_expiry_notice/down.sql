DROP INDEX issuer_certificates_not_after;
ALTER TABLE issuer_certificates DROP COLUMN expiry_notice_at;
