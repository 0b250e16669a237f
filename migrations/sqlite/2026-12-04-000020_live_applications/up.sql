-- One live application per enterprise and section, held by the database: an
-- application is live from submission until it is declined or withdrawn, or until the
-- guarantee issued on it ends (released, paid, cancelled, revoked, expired). The flag is
-- cleared in the same transaction as the change that ends the application, and a
-- partial unique index lets at most one live row exist per enterprise and section.
ALTER TABLE applications ADD COLUMN live BOOLEAN NOT NULL DEFAULT 1;
UPDATE applications SET live = 0
WHERE status IN ('declined', 'withdrawn')
   OR id IN (
       SELECT application_id FROM guarantees
       WHERE status IN ('released', 'paid', 'cancelled', 'revoked', 'expired')
   );
-- Before this rule, parallel applications could leave an enterprise with two live
-- applications for one section, which the index below would refuse. One stays live: the
-- one furthest along (issued, paid, approved, submitted), then the newest; the others
-- keep their state but no longer count.
UPDATE applications SET live = 0
WHERE live AND EXISTS (
    SELECT 1 FROM applications AS other
    WHERE other.live
      AND other.enterprise_id = applications.enterprise_id
      AND other.section_id = applications.section_id
      AND other.id <> applications.id
      AND (CASE other.status WHEN 'issued' THEN 3 WHEN 'paid' THEN 2 WHEN 'approved' THEN 1 ELSE 0 END > CASE applications.status WHEN 'issued' THEN 3 WHEN 'paid' THEN 2 WHEN 'approved' THEN 1 ELSE 0 END
           OR (CASE other.status WHEN 'issued' THEN 3 WHEN 'paid' THEN 2 WHEN 'approved' THEN 1 ELSE 0 END = CASE applications.status WHEN 'issued' THEN 3 WHEN 'paid' THEN 2 WHEN 'approved' THEN 1 ELSE 0 END
               AND (other.created_at > applications.created_at
                    OR (other.created_at = applications.created_at
                        AND other.id > applications.id))))
);
CREATE UNIQUE INDEX applications_one_live_per_section
    ON applications (enterprise_id, section_id) WHERE live;
