-- When the issuer was told that this certificate runs out (once, 30 days ahead).
ALTER TABLE issuer_certificates ADD COLUMN expiry_notice_at TIMESTAMP;
CREATE INDEX issuer_certificates_not_after ON issuer_certificates(not_after);
