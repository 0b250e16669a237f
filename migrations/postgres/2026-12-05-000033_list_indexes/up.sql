-- The pages list an enterprise's and an issuer's guarantees and applications newest
-- first, a page at a time: the count and the window come from these indexes instead of
-- a scan of every row.
CREATE INDEX guarantees_enterprise_issued ON guarantees(enterprise_id, issued_at);
CREATE INDEX guarantees_issuer_issued ON guarantees(issuer_id, issued_at);
CREATE INDEX applications_enterprise_created ON applications(enterprise_id, created_at);
CREATE INDEX applications_issuer_created ON applications(issuer_id, created_at);
