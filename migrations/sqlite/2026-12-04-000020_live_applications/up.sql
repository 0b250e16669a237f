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
CREATE UNIQUE INDEX applications_one_live_per_section
    ON applications (enterprise_id, section_id) WHERE live;
